"""The system under test as real processes, outside pytest.

One private redis-server (AOF on, ``noeviction``, as production must run it), one eSMS
simulator, one API process, and Dramatiq workers started and stopped per measurement, wired
by environment variables exactly as in production. It reuses the test fixtures' plain
classes (:class:`RedisServer`, :class:`EsmsSim`, :class:`Service`), never their pytest
fixtures. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.fixtures.redis import RedisServer, free_port
from tests.fixtures.sim import EsmsSim
from tests.fixtures.stack import Service

REPO_ROOT = Path(__file__).resolve().parents[1]
API_TOKEN = "bench-token-0123456789abcdef"
CALLBACK_SECRET = "bench-callback-secret-0123456789"
WEBHOOK_SECRET = "whsec_dm9pY2VjYWxsLWJlbmNoLXdlYmhvb2stc2VjcmV0LTE="
FINAL = ("completed", "failed", "rejected", "expired", "cancelled")
BENCH_WORKER_IDLE_POLL_MS = 100  # voicecall's WORKER_IDLE_POLL_MS default, for the bare worker too

# Production defaults, except what would make the benchmark measure a policy, not capacity:
# the global send rate (default 20/s, eSMS's TPS), the per-phone limit and quiet hours.
BENCH_SETTINGS: dict[str, object] = {
    "quiet_hours": "off",
    "global_send_rate_per_s": 0,  # 0: off
    "phone_limit_calls": 0,
    "webhook_allow_private": True,  # figure 9b's receivers listen on loopback
    "shutdown_timeout_s": 5,
    "log_level": "INFO",
    "log_format": "json",
}
# Simulated calls last ~50 s of real time, so no callback or poll lands inside a
# throughput measurement; figure 4 speeds time up at run time (PATCH /_sim/config).
SIM_KNOBS: dict[str, object] = {
    "time_scale": 1.0,
    "status_not_ready_s": 1.0,
    "callback_retry_delay_s": 30,
    "balance": 10**13,
    "log_level": "warning",
    "seed": 1,
}


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Call ``predicate`` until it returns something truthy (returned); TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (httpx.HTTPError, redis.ConnectionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 10_000:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of ``pids`` so far (processes that are gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def thread_count(pid: int) -> int:
    """Threads of one process, 0 if it is gone."""
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:
        return 0


class BenchStack:
    """Redis, simulator and API for the whole run; workers per measurement."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="voicecall-bench-"))
        (self.directory / "redis").mkdir(exist_ok=True)
        self.redis = RedisServer(free_port(), self.directory / "redis")
        self.sim = EsmsSim(SIM_KNOBS, self.directory)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.services: list[Service] = []
        self._client: Any = None
        self._redis: redis.Redis | None = None
        self._store: Any = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start Redis, the simulator and the API; return when all answer."""
        self.redis.start()
        self.sim.start()
        self._start_api(self.api_port, self.env())

    def start_api(self, **settings: object) -> tuple[Service, str]:
        """Another API process with ``settings`` (e.g. another CALLBACK_CONFIRM), on its own
        port; returns it and its base URL (give it to workers as ``public_base_url``)."""
        port = free_port()
        return self._start_api(port, self.env(**settings)), f"http://127.0.0.1:{port}"

    def _start_api(self, port: int, env: Mapping[str, str]) -> Service:
        api = self._service("api", ["-m", "voicecall.cli", "api", "--host", "127.0.0.1",
                                    "--port", str(port)], env)  # fmt: skip
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
            30,
            what=f"the API (log: {api.log_path})",
        )
        return api

    def close(self, keep_logs: bool = False) -> None:
        """Stop every process started; remove the directory unless ``keep_logs``."""
        for service in reversed(self.services):
            service.stop(timeout=10)
        if self._redis is not None:
            self._redis.close()
        self.sim.close()
        self.redis.stop()
        if not keep_logs:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def r(self) -> redis.Redis:
        """A client on the private Redis (strings decoded)."""
        if self._redis is None:
            self._redis = self.redis.client()
        return self._redis

    def client(self) -> Any:
        """The Python API (``VoiceCallClient``) on this Redis, as another system imports it."""
        if self._client is None:
            from producer import VoiceCallClient

            self._client = VoiceCallClient.from_env(redis_url=self.redis.url, **BENCH_SETTINGS)
        return self._client

    def reset(self, **sim_knobs: object) -> None:
        """Empty Redis, forget the simulator's calls, then apply ``sim_knobs`` (run time)."""
        self.r.flushall()
        self.sim.reset()
        if sim_knobs:
            self.sim.configure(**sim_knobs)

    # --- processes -----------------------------------------------------------------------

    def env(self, **settings: object) -> dict[str, str]:
        """The environment of a voicecall process, with ``settings`` by field name."""
        merged = {**BENCH_SETTINGS, **settings}
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("ESMS_", "REDIS_", "API_"))
        }
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return {
            **base,
            "REDIS_URL": self.redis.url,
            "ESMS_API_KEY": self.sim.api_key,
            "ESMS_SECRET_KEY": self.sim.secret_key,
            "ESMS_REST_URL": self.sim.rest_url,
            "ESMS_VOICE_URL": self.sim.voice_url,
            "PUBLIC_BASE_URL": self.api_url,
            "CALLBACK_SECRET": CALLBACK_SECRET,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "API_TOKENS": API_TOKEN,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), base.get("PYTHONPATH")])),
            **{name.upper(): str(value) for name, value in merged.items()},
        }

    def _service(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> Service:
        index = len(self.services)
        service = Service(
            name, [sys.executable, *args], env, self.directory / f"{index}-{name}.log"
        )
        self.services.append(service)
        service.start()
        return service

    def start_worker(self, processes: int, threads: int, **settings: object) -> Service:
        """``voicecall worker --processes P --threads T``; returns once every process heartbeats."""
        prom_dir = self.directory / f"prom-{len(self.services)}"
        env = {
            **self.env(**settings),
            "METRICS_PORT": str(free_port()),
            "dramatiq_prom_db": str(prom_dir),
        }
        args = ["-m", "voicecall.cli", "worker", "--processes", str(processes),
                "--threads", str(threads)]  # fmt: skip
        return self._start_dramatiq("worker", args, env, processes)

    def start_bare_worker(self, processes: int, threads: int) -> Service:
        """``dramatiq bench.bare_dramatiq`` with the same idle poll as voicecall's workers."""
        env = {
            **self.env(),
            "BENCH_REDIS_URL": self.redis.url,
            "BENCH_VOICE_URL": self.sim.voice_url,
            "BENCH_CALLBACK_BASE": self.api_url,
            "dramatiq_worker_timeout": str(BENCH_WORKER_IDLE_POLL_MS),
        }
        args = ["-m", "dramatiq", "bench.bare_dramatiq", "--processes", str(processes),
                "--threads", str(threads), "--skip-logging"]  # fmt: skip
        return self._start_dramatiq("bare", args, env, processes)

    def _start_dramatiq(
        self, name: str, args: Sequence[str], env: Mapping[str, str], processes: int
    ) -> Service:
        before = self._heartbeats()
        service = self._service(name, args, env)
        try:
            wait_until(
                lambda: len(self._heartbeats() - before) >= processes or not service.alive,
                60,
                what=f"{name} heartbeats",
            )
        except TimeoutError:
            service.stop(timeout=5)
            raise
        if not service.alive:
            raise RuntimeError(f"{name} exited at start:\n{service.log_text()[-3000:]}")
        return service

    def _heartbeats(self) -> set[str]:
        """Live worker processes: voicecall's beat into vc:workers, the bare actor's only into
        Dramatiq's heartbeats."""
        since = (time.time() - 5) * 1000
        beats = {str(m) for m in self.r.zrangebyscore("dramatiq:__heartbeats__", since, "+inf")}
        return beats | {str(m) for m in self.r.zrangebyscore("vc:workers", since, "+inf")}

    def stop(self, service: Service) -> None:
        """SIGTERM a worker (SIGKILL after 15 s) and forget it."""
        service.stop(timeout=15)
        if service in self.services:
            self.services.remove(service)

    def worker_rss(self, service: Service, min_threads: int = 2) -> list[tuple[int, int]]:
        """(pid, RSS) of each Dramatiq worker process of ``service``.

        Worker processes are the children with at least ``min_threads`` threads; the
        supervisor and Prometheus' exposition fork are left out.
        """
        if service.process is None:
            return []
        found = []
        for pid in process_tree(service.process.pid)[1:]:
            if thread_count(pid) >= min_threads and (rss := rss_bytes(pid)):
                found.append((pid, rss))
        return found

    # --- observation ---------------------------------------------------------------------

    def cpu(self, service: Service | None = None) -> dict[str, float]:
        """CPU seconds so far of each party: the workers of ``service``, Redis, the simulator,
        the API, and this process (the producer)."""

        def tree(process: Any) -> list[int]:
            return process_tree(process.pid) if process is not None else []

        usage = os.times()
        api = next((s for s in self.services if s.name == "api"), None)
        return {
            "workers": cpu_seconds(tree(service.process if service else None)),
            "redis": cpu_seconds(tree(self.redis.process)),
            "simulator": cpu_seconds(tree(self.sim.process)),
            "api": cpu_seconds(tree(api.process if api else None)),
            "producer": usage.user + usage.system,
        }

    def commands_processed(self) -> int:
        """Redis' count of commands processed so far."""
        return int(self.r.info("stats")["total_commands_processed"])

    def used_memory(self) -> int:
        """Redis ``used_memory`` in bytes, less what varies with connections and scripts, not
        with jobs: client buffers, the AOF buffer and the Lua VM (garbage-collected)."""
        info = self.r.info("memory")
        lua = info.get("used_memory_vm_eval", info.get("used_memory_lua", 0))
        buffers = int(info.get("mem_clients_normal", 0)) + int(info.get("mem_aof_buffer", 0))
        return int(info["used_memory"]) - buffers - int(lua)

    def sim_calls(self) -> int:
        """How many calls the simulator has accepted."""
        return int(self.sim.stats()["calls"])

    def field_of(self, ids: Iterable[str], field: str) -> list[str | None]:
        """One field of many jobs (read in batches), as text; None where absent."""
        ordered = list(ids)
        values: list[str | None] = []
        for start in range(0, len(ordered), 1000):
            for job in self.store.get_many(ordered[start : start + 1000]):
                value = getattr(job, field, None) if job is not None else None
                values.append(None if value is None else str(getattr(value, "value", value)))
        return values

    def count_in(self, states: Sequence[str]) -> int:
        """Jobs in any of ``states`` (from the store's state index)."""
        counts = self.store.state_counts()
        return sum(counts.get(state, 0) for state in states)

    @property
    def store(self) -> Any:
        """The job store on this Redis (reads only)."""
        if self._store is None:
            from voicecall.store.job_store import JobStore

            self._store = JobStore.from_url(self.redis.url)
        return self._store
