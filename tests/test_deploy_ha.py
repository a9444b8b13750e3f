"""Redis high availability in deploy/: docker-compose's `ha` profile (a primary, a replica and
three sentinels, and the voicecall services pointed at the sentinels by deploy/ha.env), and
the Kubernetes example's Sentinel-managed Redis from the Bitnami chart.

No Docker engine runs here, so the wiring is read from the YAML as Compose reads it (anchors,
merge keys, ``${VAR:-default}``; tests/test_compose_settings.py), and the profile's own Redis
command lines and sentinel start-up script then run as real ``redis-server`` processes on
loopback: the same flags, the same shell script writing the same sentinel.conf, with only
what Docker would give (host names, /data, the image's entrypoint) swapped for local ones.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.fixtures.deploy import COMPOSE, image_environment, interpolate, service_environment
from tests.fixtures.redis import free_port

HA_ENV = COMPOSE.parent / "ha.env"
K8S = COMPOSE.parent / "k8s"
RELEASE = "redis"  # the Helm release deploy/k8s/README.md installs
SENTINELS = ("redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3")
DATA_NODES = ("redis", "redis-replica")
VOICECALL_ROLES = ("api", "worker", "scheduler")


def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def ha_variables() -> dict[str, str]:
    """deploy/ha.env as Compose reads an env file: KEY=VALUE lines, # comments."""
    variables = {}
    for line in HA_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip()
    return variables


def command(name: str, variables: dict[str, str]) -> list[str]:
    return [interpolate(str(part), variables) for part in services()[name]["command"]]


def flag(args: list[str], name: str, count: int = 1) -> list[str]:
    """The ``count`` values after ``--name`` in a redis-server command line."""
    index = args.index(f"--{name}")
    return args[index + 1 : index + 1 + count]


def sentinel_conf(name: str, variables: dict[str, str]) -> list[list[str]]:
    """The sentinel.conf that service ``name``'s script writes, as Docker would run it."""
    service = services()[name]
    script = command(name, variables)[2]
    body = script.split("<<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    environment = service_environment(service, variables)
    body = body.replace("$(hostname)", service["hostname"])
    body = re.sub(r"\$(\w+)", lambda m: environment[m[1]], body)
    return [line.split() for line in body.splitlines()]


def test_ha_profile_is_a_primary_a_replica_and_three_sentinels() -> None:
    """The profile adds a replica of `redis` and three sentinels, each health-checked, with its own volume, restarted by Docker."""
    found = services()
    in_ha = {name for name, service in found.items() if "ha" in service.get("profiles", [])}
    assert in_ha == {"redis-replica", *SENTINELS}
    assert "profiles" not in found["redis"]  # the first primary is the stack's own Redis
    assert flag(command("redis-replica", {}), "replicaof", 2) == ["redis", "6379"]
    volumes = [found[name]["volumes"] for name in ("redis-replica", *SENTINELS)]
    assert all(len(v) == 1 and v[0].endswith(":/data") for v in volumes)
    assert len({v[0] for v in volumes}) == 4  # no two nodes share a volume
    for name in ("redis-replica", *SENTINELS):
        assert found[name]["restart"] == "unless-stopped", name
        assert found[name]["image"] == found["redis"]["image"], name
    for name in SENTINELS:
        assert found[name]["hostname"] == name
        assert found[name]["healthcheck"]["test"] == ["CMD", "redis-cli", "-p", "26379", "ping"]
        assert set(found[name]["depends_on"]) == set(DATA_NODES)


@pytest.mark.parametrize("variables", [{}, "ha.env"], ids=["defaults", "ha.env"])
def test_every_sentinel_watches_the_primary_with_a_one_second_down_after(
    variables: dict[str, str] | str,
) -> None:
    """Each sentinel monitors `redis:6379` under the name the voicecall services ask for, quorum 2 of 3, down after 1000 ms, announcing its own host name."""
    variables = ha_variables() if variables == "ha.env" else {}
    master = variables.get("REDIS_SENTINEL_MASTER", "voicecall")
    for name in SENTINELS:
        conf = sentinel_conf(name, variables)
        assert ["port", "26379"] in conf
        assert ["sentinel", "monitor", master, "redis", "6379", "2"] in conf
        assert ["sentinel", "down-after-milliseconds", master, "1000"] in conf
        assert ["sentinel", "resolve-hostnames", "yes"] in conf
        assert ["sentinel", "announce-ip", name] in conf


def test_ha_env_points_every_voicecall_service_at_the_three_sentinels() -> None:
    """With deploy/ha.env, api, worker and scheduler get REDIS_SENTINELS naming the profile's three sentinels on their port, the monitored name, and wait for the sentinels' health; without it, both are empty (no Sentinel)."""
    variables = ha_variables()
    found = services()
    sentinel_port = next(
        line[1] for line in sentinel_conf(SENTINELS[0], variables) if line[0] == "port"
    )
    for role in VOICECALL_ROLES:
        environment = service_environment(found[role], variables)
        assert environment["REDIS_SENTINELS"].split(",") == [
            f"{name}:{sentinel_port}" for name in SENTINELS
        ]
        assert environment["REDIS_SENTINEL_MASTER"] == "voicecall"
        plain = service_environment(found[role], {})  # empty: no Sentinel
        assert (plain["REDIS_SENTINELS"], plain["REDIS_SENTINEL_MASTER"]) == ("", "")
        for name in SENTINELS:
            assert found[role]["depends_on"][name] == {
                "condition": "service_healthy",
                "required": False,  # the sentinels exist only with --profile ha
            }, role


def test_both_data_nodes_refuse_writes_without_a_replica_only_in_ha() -> None:
    """Primary and replica (either may be primary) run the same persistence, sync and min-replicas flags, announce their service names; min-replicas-to-write is 1 with ha.env and 0 without."""
    for variables, minimum in (({}, "0"), (ha_variables(), "1")):
        for name in DATA_NODES:
            args = command(name, variables)
            assert flag(args, "min-replicas-to-write") == [minimum], name
            assert flag(args, "min-replicas-max-lag") == ["10"], name
            assert flag(args, "appendonly") == ["yes"], name
            assert flag(args, "maxmemory-policy") == ["noeviction"], name
            assert flag(args, "replica-announce-ip") == [name], name
            assert flag(args, "repl-diskless-sync-delay") == ["0"], name


@pytest.mark.parametrize("role", VOICECALL_ROLES)
def test_ha_settings_pass_check_settings(role: str, tmp_path: Path) -> None:
    """`voicecall check-settings ROLE` accepts each service's environment as Compose gives it with deploy/ha.env."""

    service = services()[role]
    environment = {**image_environment(), **service_environment(service, ha_variables())}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "voicecall"), "check-settings", role],
        env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"settings for {role}: ok\n",
        "",
    )


# --- the profile's own command lines, on real redis-server processes ----------------------


@pytest.fixture()
def processes() -> Iterator[Callable[[list[str]], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _data_node(name: str, port: int, ports: dict[str, int], directory: Path) -> list[str]:
    """Service ``name``'s command with ha.env, its host names on loopback."""
    args = command(name, ha_variables())
    args[args.index("--replica-announce-ip") + 1] = "127.0.0.1"
    if "--replicaof" in args:
        index = args.index("--replicaof")
        args[index + 1 : index + 3] = ["127.0.0.1", str(ports[args[index + 1]])]
    directory.mkdir()
    return [*args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--loglevel", "warning"]  # fmt: skip


def _sentinel(name: str, port: int, primary_port: int, directory: Path) -> list[str]:
    """Service ``name``'s start-up script with ha.env, as `sh -c` in the container would run
    it: /data is ``directory``, host names are loopback, no image entrypoint."""
    script = command(name, ha_variables())[2]
    local = {
        "/data": str(directory),
        "exec docker-entrypoint.sh ": "exec ",
        "$(hostname)": "127.0.0.1",
        " redis 6379 ": f" 127.0.0.1 {primary_port} ",
        "port 26379": f"port {port}",
    }
    for docker, here in local.items():
        assert docker in script, docker
        script = script.replace(docker, here)
    directory.mkdir()
    environment = service_environment(services()[name], ha_variables())
    return ["env", *(f"{k}={v}" for k, v in environment.items()), "sh", "-c", script]


def test_the_profile_runs_on_real_redis_servers(
    processes: Callable[[list[str]], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The profile's flags and sentinel script, run by redis-server: the pair replicates, the primary requires one good replica, and all three sentinels follow the primary, see the replica and find each other."""
    ports = {name: free_port() for name in (*DATA_NODES, *SENTINELS)}
    for name in DATA_NODES:
        processes(_data_node(name, ports[name], ports, tmp_path / name))
    primary = redis.Redis(port=ports["redis"], decode_responses=True)
    replica = redis.Redis(port=ports["redis-replica"], decode_responses=True)
    _wait(lambda: replica.info("replication")["master_link_status"] == "up", "replication")
    # The primary counts a replica as good from its first acknowledgment (within a second):
    # until then, min-replicas-to-write 1 refuses writes (NOREPLICAS).
    _wait(lambda: primary.info("replication")["min_slaves_good_slaves"] == 1, "a good replica")
    assert primary.config_get("min-replicas-*") == {
        "min-replicas-to-write": "1",
        "min-replicas-max-lag": "10",
    }
    assert primary.set("written", "1") and primary.wait(1, 2000) == 1
    with pytest.raises(redis.ReadOnlyError):
        replica.set("written", "2")

    for name in SENTINELS:
        processes(_sentinel(name, ports[name], ports["redis"], tmp_path / name))
    master = ha_variables()["REDIS_SENTINEL_MASTER"]
    for name in SENTINELS:
        sentinel = redis.Redis(port=ports[name], decode_responses=True)

        def settled(sentinel: redis.Redis = sentinel) -> bool:
            state = sentinel.sentinel_master(master)
            return bool(state["num-slaves"] == 1 and state["num-other-sentinels"] == 2)

        _wait(settled, f"{name} to see the replica and the other sentinels")
        state = sentinel.sentinel_master(master)
        assert (state["ip"], state["port"]) == ("127.0.0.1", ports["redis"])
        assert (state["quorum"], state["down-after-milliseconds"]) == (2, 1000)
        assert state["is_master"] and not state["is_sdown"]
        assert (tmp_path / name / "sentinel.conf").exists()


# --- Kubernetes: the Bitnami chart in Sentinel mode ---------------------------------------


def _k8s_data(file: str, key: str) -> dict[str, str]:
    return dict(yaml.safe_load((K8S / file).read_text())[key])


def _bitnami_values() -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / "redis" / "bitnami-values.yaml").read_text()))


def test_k8s_points_at_every_sentinel_of_the_bitnami_release() -> None:
    """The ConfigMap lists the sentinel (port 26379) of every node of the release the README installs, by pod name through its headless Service, and the chart's master set; the password is only in the Secret."""
    values = _bitnami_values()
    assert values["architecture"] == "replication" and values["sentinel"]["enabled"] is True
    config = _k8s_data("configmap.yaml", "data")
    namespace = yaml.safe_load((K8S / "configmap.yaml").read_text())["metadata"]["namespace"]
    assert config["REDIS_SENTINELS"].split(",") == [
        f"{RELEASE}-node-{n}.{RELEASE}-headless.{namespace}.svc.cluster.local:26379"
        for n in range(values["replica"]["replicaCount"])
    ]
    assert config["REDIS_SENTINEL_MASTER"] == values["sentinel"]["masterSet"] == "mymaster"
    readme = (K8S / "README.md").read_text()
    assert f"helm install {RELEASE} " in readme and "bitnami-values.yaml" in readme
    secret = _k8s_data("secret.yaml", "stringData")
    assert values["auth"]["enabled"] is True and values["auth"]["sentinel"] is True
    assert {"REDIS_URL", "REDIS_SENTINEL_PASSWORD"} <= set(secret)
    assert not {"REDIS_URL", "REDIS_SENTINEL_PASSWORD"} & set(config)


def test_bitnami_values_keep_what_voicecall_needs() -> None:
    """AOF, no eviction, an immediate replica sync, min-replicas-to-write that one lost node does not break, and a down-after well inside voicecall's failover deadline."""
    values = _bitnami_values()
    conf = dict(line.split(None, 1) for line in values["commonConfiguration"].splitlines())
    assert (conf["appendonly"], conf["maxmemory-policy"]) == ("yes", "noeviction")
    assert conf["repl-diskless-sync-delay"] == "0"
    replicas = values["replica"]["replicaCount"] - 1  # one node is the primary
    assert 1 <= int(conf["min-replicas-to-write"]) <= replicas - 1  # one replica may be lost
    assert int(conf["min-replicas-max-lag"]) == 10
    from voicecall.config.settings import Settings

    deadline = Settings.model_fields.get("redis_failover_deadline_s")
    if deadline is None:
        pytest.skip("REDIS_FAILOVER_DEADLINE_S is not a setting yet (issue 20's core)")
    assert values["sentinel"]["downAfterMilliseconds"] * 4 <= deadline.default * 1000


# --- the README's settings ------------------------------------------------------------------


def test_readme_high_availability_names_the_settings_that_exist() -> None:
    """The README's High availability table names exactly voicecall's Redis HA settings (all REDIS_* but REDIS_URL)."""
    from voicecall.config.settings import Settings

    if "redis_sentinels" not in Settings.model_fields:
        pytest.skip("the Sentinel settings are not in voicecall/config yet (issue 20's core)")
    readme = (COMPOSE.parents[1] / "README.md").read_text()
    start = readme.index("\n## High availability\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    named = {
        name
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`(REDIS_\w+)`", row.split(" | ")[0])
    }
    settings = {name.upper() for name in Settings.model_fields if name.startswith("redis_")}
    assert named == settings - {"REDIS_URL"}
