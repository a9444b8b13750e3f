"""The API's own request metrics, recorded by :mod:`producer.middleware` for every request.

``voicecall_api_requests_total{route, method, status}`` and
``voicecall_api_request_duration_seconds{route, method, status_class}``. Labels stay bounded
whatever clients send:

- ``route`` is the route's template (``/v1/calls/{job_id}``), never the raw path, so no job
  id, phone number or callback signature ever becomes a label; a path no route knows is
  :data:`UNMATCHED_ROUTE`. The router names the route in ``scope["route"]``; requests it never
  saw (a body refused by its Content-Length) or plain Starlette routes (``/openapi.json``)
  are matched against the app's route templates instead.
- ``method`` is one of :data:`METHODS`, else ``other``.
- ``status`` is the status code sent, ``0`` when none was (the client went away first);
  ``status_class`` is ``2xx`` ... ``5xx`` (``0xx`` for none), keeping the histogram small.

Cheap on the intake path: the labelled children are looked up once per label set and kept.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import Counter, Histogram

from voicecall.telemetry.metrics import API_LATENCY, API_REQUESTS

UNMATCHED_ROUTE = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER = re.compile(r"\{[^}]*\}")

_Children = tuple[Counter, Histogram]
_children: dict[tuple[str, str, int], _Children] = {}


def record(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and observe its duration."""
    key = (route, method, status)
    children = _children.get(key)
    if children is None:
        children = (
            API_REQUESTS.labels(route=route, method=method, status=str(status)),
            API_LATENCY.labels(route=route, method=method, status_class=f"{status // 100}xx"),
        )
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class RouteLabels:
    """The ``route`` label of a request (see the module docstring)."""

    def __init__(self) -> None:
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, scope: MutableMapping[str, Any]) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if self._table is None:
            self._table = route_table(scope.get("app"))
        request_path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and request_path.startswith(root):
            request_path = request_path[len(root) :]
        for pattern, template in self._table:
            if pattern.fullmatch(request_path):
                return template
        return UNMATCHED_ROUTE


def route_table(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """Every route template of ``app`` as a regex; literal templates before parameterised ones.

    Templates come from the app's routes and its OpenAPI document (routes included from an
    APIRouter are listed there whatever FastAPI's version keeps in ``app.routes``).
    """
    templates = {
        path
        for route in getattr(app, "routes", [])
        if isinstance(path := getattr(route, "path", None), str)
    }
    openapi = getattr(app, "openapi", None)
    if callable(openapi):
        templates |= set(openapi().get("paths", {}))
    ordered = sorted(templates, key=lambda t: (t.count("{"), -len(t), t))
    return [(_regex(template), template) for template in ordered]


def _regex(template: str) -> re.Pattern[str]:
    literal = _PARAMETER.split(template)
    return re.compile("[^/]+".join(re.escape(part) for part in literal))
