"""The standard ``OTEL_*`` variables that configure tracing (voicecall.telemetry.tracing),
checked at start-up with the other settings: a bad value stops it with one line naming the
variable. They are read from the process environment, as every OpenTelemetry SDK reads them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec

from voicecall.errors import SettingsError

EXPORTERS = ("otlp", "console", "none")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


@dataclass(frozen=True)
class TracingConfig:
    """What the ``OTEL_*`` variables ask for, checked."""

    exporter: str
    service_name: str | None


def check_environment(env: Mapping[str, str] | None = None) -> TracingConfig | None:
    """The tracing the environment asks for (None: off), or :class:`SettingsError` naming the
    first bad ``OTEL_*`` variable."""
    env = os.environ if env is None else env

    def get(name: str) -> str:
        return env.get(name, "").strip()

    exporter = get("OTEL_TRACES_EXPORTER").lower()
    if exporter and exporter not in EXPORTERS:
        raise SettingsError(f"OTEL_TRACES_EXPORTER: must be one of {', '.join(EXPORTERS)}")
    sampler = get("OTEL_TRACES_SAMPLER").lower()
    if sampler and sampler not in SAMPLERS:
        raise SettingsError(f"OTEL_TRACES_SAMPLER: must be one of {', '.join(SAMPLERS)}")
    _check_sampler_arg(get("OTEL_TRACES_SAMPLER_ARG"), sampler)
    endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT") or get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s]*)?", endpoint):
        raise SettingsError("OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL")
    _check_resource_attributes(get("OTEL_RESOURCE_ATTRIBUTES"))
    service = get("OTEL_SERVICE_NAME")
    if "OTEL_SERVICE_NAME" in env and not service:
        raise SettingsError("OTEL_SERVICE_NAME: must not be empty when set")
    if not exporter or exporter == "none" or get("OTEL_SDK_DISABLED").lower() == "true":
        return None
    if find_spec("opentelemetry.sdk") is None:
        raise SettingsError(
            "OTEL_TRACES_EXPORTER is set but OpenTelemetry is not installed: "
            "pip install 'voicecall[otel]'"
        )
    return TracingConfig(exporter=exporter, service_name=service or None)


def _check_sampler_arg(arg: str, sampler: str) -> None:
    if not arg:
        return
    try:
        ratio = float(arg)
    except ValueError:
        ratio = math.nan
    if sampler in _RATIO_SAMPLERS and not 0.0 <= ratio <= 1.0:  # NaN fails both
        raise SettingsError("OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1")


def _check_resource_attributes(text: str) -> None:
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, _value = pair.partition("=")
        if not sep or not key.strip() or any(ord(c) < 32 or ord(c) == 127 for c in pair):
            raise SettingsError(
                "OTEL_RESOURCE_ATTRIBUTES: must be key=value pairs, comma-separated"
            )
