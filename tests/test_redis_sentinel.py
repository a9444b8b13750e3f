"""Redis Sentinel settings and the one client factory (issue 20, points 1, 2, 4 and 8).

- A malformed REDIS_SENTINELS or an empty REDIS_SENTINEL_MASTER stops start-up with one line
  naming the setting (exit 2, also in ``check-settings``); REDIS_URL alone works as before.
- Every client comes from voicecall.store.connection: with sentinels, the store, the asyncio
  store and Dramatiq's broker all write to the primary the sentinels name, follow it through
  a ``kill -9`` without a restart, and the process exports what it uses.
- Intake answers only once the job is on REDIS_WAIT_REPLICAS replicas; a WAIT that times out
  is a 503 with Retry-After (and counted), and the retry with the same key is safe.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import redis
import structlog
from prometheus_client import REGISTRY

from tests.fixtures.sentinel import Topology
from voicecall.config.settings import Settings, load_settings
from voicecall.errors import SettingsError
from voicecall.store.connection import UNAVAILABLE, async_redis_client, redis_client
from voicecall.store.failover import ReplicationTimeout
from voicecall.store.job_store import AsyncJobStore, JobStore


def _load_healthcheck() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "deploy" / "docker" / "healthcheck.py"
    spec = importlib.util.spec_from_file_location("voicecall_healthcheck", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HEALTHCHECK = _load_healthcheck()


def _voicecall(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    prefixes = ("ESMS_", "REDIS_", "API_", "CALLBACK_", "PUBLIC_", "BROKER_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return subprocess.run(
        [sys.executable, "-m", "voicecall.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _check_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return _voicecall("check-settings", "producer", env=env)


def test_check_settings_names_a_malformed_sentinel_address_and_exits_2() -> None:
    """`voicecall check-settings` stops on a sentinel address without a port: exit 2, one
    line naming REDIS_SENTINELS and its rule."""
    done = _check_settings(REDIS_SENTINELS="10.0.0.1:26379,sentinel-b", REDIS_SENTINEL_MASTER="m")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "invalid setting: REDIS_SENTINELS: must be comma-separated host:port" in done.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"redis_sentinels": "a:0"}, "REDIS_SENTINELS"),
        ({"redis_sentinels": "a:70000"}, "REDIS_SENTINELS"),
        ({"redis_sentinels": ":26379"}, "REDIS_SENTINELS"),
        ({"redis_sentinels": "a b:1"}, "REDIS_SENTINELS"),
        ({"redis_sentinels": "a:1"}, "REDIS_SENTINEL_MASTER"),
        ({"redis_sentinels": "a:1", "redis_sentinel_master": "  "}, "REDIS_SENTINEL_MASTER"),
        ({"redis_sentinels": "a:1", "redis_sentinel_master": "m", "redis_url": "unix:///r.sock"},
         "REDIS_URL"),
        ({"redis_failover_deadline_s": "0"}, "REDIS_FAILOVER_DEADLINE_S"),
        ({"redis_wait_replicas": "-1"}, "REDIS_WAIT_REPLICAS"),
    ],
)  # fmt: skip
def test_bad_sentinel_settings_are_refused_naming_the_setting(
    env: dict[str, str], named: str
) -> None:
    """Each malformed value is refused in one line that starts with the setting's name."""
    with pytest.raises(SettingsError) as refused:
        load_settings(**env)
    assert str(refused.value).startswith(f"{named}: ")
    assert "\n" not in str(refused.value)


def test_sentinel_settings_are_read_and_wait_defaults_to_one_replica() -> None:
    """Addresses are parsed (IPv6 in brackets); WAIT defaults to 1 replica with sentinels,
    0 with REDIS_URL alone (as before)."""
    settings = load_settings(
        redis_sentinels="s1:26379, [::1]:26380",
        redis_sentinel_master="vc",
        redis_url="redis://:pw@x/3",
    )
    assert settings.redis_sentinels == (("s1", 26379), ("::1", 26380))
    assert settings.wait_replicas == 1
    assert settings.redis_failover_deadline_s == 30
    assert load_settings().wait_replicas == 0  # REDIS_URL alone: as before, no WAIT


def _sentinel_settings(topology: Topology, **more: object) -> Settings:
    env = {k.lower(): v for k, v in topology.env().items()}
    return load_settings(**env, **more)


def _metric(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_every_client_follows_the_primary_through_a_kill(
    sentinel_topology: Callable[..., Topology],
) -> None:
    """The sync and asyncio stores and the broker's client write to the sentinels' primary;
    after ``kill -9`` of it they write to the new one, with no restart and no error seen."""
    topology = sentinel_topology()
    settings = _sentinel_settings(topology)
    store = JobStore.from_settings(settings)
    broker = redis_client(settings, decode=False)
    primary = topology.primary_port()
    assert store.ping() and broker.set("b", 1)
    assert topology.client(primary).get("b") == "1"  # the write went to the primary
    assert _metric("voicecall_redis_role", role="primary", address=f"127.0.0.1:{primary}") == 1
    changes = _metric("voicecall_redis_primary_changes_total") or 0

    killed = topology.kill_primary()
    assert broker.incr("b") == 2  # rides out the failover: no error reaches the caller
    new = topology.wait_new_primary(killed)
    assert topology.client(new).get("b") == "2"
    assert store.ping()

    async def on_the_loop() -> int:
        client = async_redis_client(settings)
        try:
            return int(await client.incr("b"))
        finally:
            await client.aclose()

    assert asyncio.run(on_the_loop()) == 3
    assert _metric("voicecall_redis_role", role="primary", address=f"127.0.0.1:{new}") == 1
    assert _metric("voicecall_redis_role", role="primary", address=f"127.0.0.1:{killed}") == 0
    assert (_metric("voicecall_redis_primary_changes_total") or 0) >= changes + 1
    store.close()
    broker.close()


def test_the_scheduler_healthcheck_asks_the_primary_the_sentinels_name(
    sentinel_topology: Callable[..., Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's HEALTHCHECK for ``voicecall scheduler`` finds Redis as the scheduler does:
    with REDIS_SENTINELS set it PINGs their primary (REDIS_URL's host, a dead port here, is
    not asked), and a master name no sentinel monitors is unhealthy, naming the error."""
    topology = sentinel_topology()
    for name in HEALTHCHECK.REDIS_SETTINGS:
        monkeypatch.delenv(name, raising=False)  # only the process's own environment counts
    environ = topology.env()
    assert HEALTHCHECK.check("scheduler", [], environ) is None
    unknown = {**environ, "REDIS_SENTINEL_MASTER": "nobody"}
    assert HEALTHCHECK.check("scheduler", [], unknown) == "redis: MasterNotFoundError"
    alone = {"REDIS_URL": environ["REDIS_URL"]}  # no sentinels: REDIS_URL's host, dead
    assert HEALTHCHECK.check("scheduler", [], alone) == "redis: ConnectionError"


def test_redis_failover_hands_over_and_demotes_the_old_primary_itself(
    sentinel_topology: Callable[..., Topology],
) -> None:
    """`voicecall redis-failover` asks the sentinels for a failover and, once they all name
    the new primary, makes the old one its replica itself: when the command returns the old
    primary is already a replica (Sentinel alone leaves it a primary for 8 s, and with
    min-replicas-to-write 2 the new one refuses writes meanwhile). Without REDIS_SENTINELS it
    exits 2 naming the setting."""
    topology = sentinel_topology(min_replicas_to_write=2)
    old = topology.primary_port()
    done = _voicecall("redis-failover", env=topology.env())
    assert done.returncode == 0, done.stdout + done.stderr
    new = topology.primary_port()
    assert new != old
    assert f"127.0.0.1:{old} -> 127.0.0.1:{new}" in done.stdout
    role = topology.client(old).role()
    assert role[0] == "slave", role  # at once, not 8 s later
    assert int(role[2]) == new
    topology.wait_replicas(2)
    assert topology.client(new).set("after", 1)  # both replicas back: writes go through

    alone = _voicecall("redis-failover", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert alone.returncode == 2
    assert alone.stderr.count("\n") == 1 and "REDIS_SENTINELS" in alone.stderr


def test_intake_waits_for_a_replica_and_refuses_when_none_acknowledges(
    sentinel_topology: Callable[..., Topology],
) -> None:
    """WAIT after the create step: with both replicas up the job is on them when intake
    answers; with the replicas paused, intake raises ReplicationTimeout (an UNAVAILABLE
    error: the API's 503 + Retry-After), counts it, and the retry with the key is safe."""
    from producer.intake import Intake
    from voicecall.job.contract import CallRequestAdapter, validation_context

    topology = sentinel_topology(min_replicas_to_write=0)
    settings = _sentinel_settings(topology, redis_wait_replicas=2, callback_secret="c" * 20)
    store = JobStore.from_settings(settings)
    intake = Intake(settings, store, AsyncJobStore.from_settings(settings))
    body = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1", "idempotency_key": "k1"}
    request = CallRequestAdapter.validate_python(body, context=validation_context(settings))
    first = intake.submit(request, client="t")
    replicas = topology.data_ports[1:]
    for port in replicas:  # acknowledged means: on the replicas already
        assert topology.client(port).exists(f"vc:job:{first.job.id}")

    timeouts = _metric("voicecall_redis_wait_timeouts_total") or 0
    for port in replicas:  # the replicas stop acknowledging
        topology.processes[port].send_signal(signal.SIGSTOP)
    body2 = {**body, "idempotency_key": "k2"}
    second = CallRequestAdapter.validate_python(body2, context=validation_context(settings))
    with pytest.raises(ReplicationTimeout) as refused:
        asyncio.run(intake.submit_async(second, client="t"))
    assert isinstance(refused.value, UNAVAILABLE)
    assert _metric("voicecall_redis_wait_timeouts_total") == timeouts + 1
    for port in replicas:
        topology.processes[port].send_signal(signal.SIGCONT)
    again = intake.submit(second, client="t")  # the client's retry with the same key
    assert again.replay and again.job.id.startswith("k")
    assert sum(store.state_counts().values()) == 2  # one job per key
    store.close()


def test_a_replica_answering_readonly_is_unavailable_not_an_error(
    sentinel_topology: Callable[..., Topology],
) -> None:
    """A client left on a demoted primary gets READONLY: past the deadline that is an
    UNAVAILABLE error (503 at the API), never a bare ResponseError (500)."""
    topology = sentinel_topology()
    replica = topology.data_ports[1]
    settings = load_settings(redis_url=f"redis://127.0.0.1:{replica}/0")
    client = redis_client(settings)
    with pytest.raises(UNAVAILABLE):
        client.set("x", 1)
    assert isinstance(redis.ReadOnlyError("x"), UNAVAILABLE)


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    """create_app configures logging: put the root logger and structlog back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_the_api_answers_503_with_retry_after_while_no_primary_answers(
    sentinel_topology: Callable[..., Topology],
) -> None:
    """Every data node down, the sentinels still naming the dead primary: POST /v1/calls
    rides out API_RIDE_OUT_S, then answers 503 + Retry-After (never 500)."""
    from producer.api import API_RIDE_OUT_S, create_app

    topology = sentinel_topology(min_replicas_to_write=0)
    settings = _sentinel_settings(topology, api_tokens="t" * 16, callback_secret="c" * 16)
    app = create_app(settings)
    for port in topology.data_ports:
        topology.processes[port].kill()
        topology.processes[port].wait(10)

    async def post() -> tuple[httpx.Response, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            started = time.monotonic()
            answer = await client.post(
                "/v1/calls",
                json={"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1"},
                headers={"Authorization": "Bearer " + "t" * 16, "Idempotency-Key": "k"},
            )
            return answer, time.monotonic() - started

    response, took = asyncio.run(post())
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"] == "redis_unavailable"
    assert took >= API_RIDE_OUT_S * 0.9  # it waited for a new primary first
