"""The container stack (docker-compose.yml, Dockerfile) agrees with the code it runs.

No Docker here: the compose file is read as YAML and checked against the
names the code uses (its environment variables, queue, writer lock, modules).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from genejobs.config import THREAD_CAPS
from genejobs.worker import inbox, writer_lock

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
APP_SERVICES = ("worker", "writer", "flower")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


# helpers -----------------------------------------------------------------------


def _resolve(value):
    """What compose would make of a value with no variables set on the host."""
    if not isinstance(value, str):
        return value
    escaped = value.replace("$$", "\0")
    resolved = INTERPOLATION.sub(lambda m: m["arg"] if m["op"] in (":-", "-") else "", escaped)
    return resolved.replace("\0", "$")


def _walk_strings(node, where="compose"):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk_strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_strings(value, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(_resolve(v)) for k, v in env.items()}


def _command(service: dict, key: str = "command") -> list[str]:
    command = service.get(key) or []
    if isinstance(command, str):
        command = shlex.split(command)
    return [str(_resolve(part)) for part in command]


def _argv(service: dict) -> list[str]:
    return _command(service, "entrypoint") + _command(service)


def _mounts(service: dict) -> list[dict]:
    """Volume entries in long form: type, source, target, read_only."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append(
                {
                    "type": entry.get("type", "volume"),
                    "source": _resolve(entry.get("source")),
                    "target": _resolve(entry["target"]),
                    "read_only": bool(entry.get("read_only")),
                }
            )
            continue
        parts = _resolve(entry).split(":")
        if len(parts) == 1:
            mounts.append(
                {"type": "volume", "source": None, "target": parts[0], "read_only": False}
            )
            continue
        source, target = parts[0], parts[1]
        is_bind = source.startswith((".", "/", "~"))
        mounts.append(
            {
                "type": "bind" if is_bind else "volume",
                "source": source,
                "target": target,
                "read_only": len(parts) > 2 and "ro" in parts[2].split(","),
            }
        )
    return mounts


def _has_sequence(argv: list[str], sequence: list[str]) -> bool:
    n = len(sequence)
    return any(argv[i : i + n] == sequence for i in range(len(argv) - n + 1))


def _celery_args(argv: list[str]) -> list[str]:
    """The arguments after `celery` (or `python -m celery`); fail if it is not celery."""
    if argv[:1] == ["celery"]:
        return argv[1:]
    if len(argv) >= 3 and argv[0].startswith("python") and argv[1:3] == ["-m", "celery"]:
        return argv[3:]
    raise AssertionError(f"not a celery command: {argv}")


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _config_variables() -> set[str]:
    """The GENEJOBS_* names genejobs/config.py reads from os.environ."""
    tree = ast.parse((ROOT / "genejobs" / "config.py").read_text())
    names = set()
    for node in ast.walk(tree):
        key = None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "getenv")
            and node.args
        ):
            key = node.args[0]
        elif isinstance(node, ast.Subscript):
            key = node.slice
        if (
            isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and key.value.startswith("GENEJOBS_")
        ):
            names.add(key.value)
    return names


def _published_host(entry) -> str:
    """The host address a port entry binds to ('' for all of them)."""
    if isinstance(entry, dict):
        return str(entry.get("host_ip", ""))
    parts = _resolve(str(entry)).split(":")
    return parts[0] if len(parts) == 3 else ""


def _published_container_ports(service: dict) -> list[int]:
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
        else:
            container = _resolve(str(entry)).split(":")[-1].split("/")[0]
            ports.append(int(container))
    return ports


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE.exists(), "docker-compose.yml is missing"
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def data_mount(services) -> dict:
    """The named volume that worker, writer and flower share."""
    mounts = {name: {m["target"]: m for m in _mounts(services[name])} for name in APP_SERVICES}
    home = _environment(services["worker"]).get("GENEJOBS_HOME")
    assert home, "the worker sets no GENEJOBS_HOME"
    mount = mounts["worker"].get(home)
    assert mount is not None, f"the worker mounts nothing at GENEJOBS_HOME={home}"
    return mount


# the file as a whole -----------------------------------------------------------


def test_services_exist(services):
    assert {"redis", "worker", "writer", "flower"} <= set(services)


def test_variables_are_escaped_or_interpolated(compose):
    """A bare `$NAME` is filled from the host's environment by compose, not the container's."""
    for where, text in _walk_strings(compose):
        rest = INTERPOLATION.sub("", text.replace("$$", ""))
        assert "$" not in rest, f"{where}: unescaped '$' in {text!r} (write $$ for the container)"


def test_app_services_run_the_project_image(services):
    images = set()
    for name in APP_SERVICES:
        service = services[name]
        build = service.get("build")
        assert build is not None, f"{name} does not build the project image"
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
        images.add(service.get("image"))
    assert len(images) == 1, f"the app services name different images: {images}"


# redis -------------------------------------------------------------------------


def test_redis_is_official_persistent_and_checked(services):
    redis = services["redis"]
    image = redis["image"]
    assert image == "redis" or image.startswith(("redis:", "redis@")), image
    argv = _command(redis)
    assert _option(argv, "--appendonly") == "yes", f"redis runs without appendonly: {argv}"
    assert any(m["target"] == "/data" and m["type"] == "volume" for m in _mounts(redis)), (
        "redis keeps its append-only file outside a volume"
    )
    test = redis["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    assert "redis-cli" in text and "ping" in text


# the shared data volume and the environment -------------------------------------


def test_data_volume_is_shared_at_genejobs_home(compose, services, data_mount):
    assert data_mount["type"] == "volume", "GENEJOBS_HOME must be a named volume"
    assert data_mount["source"] in (compose.get("volumes") or {}), (
        f"volume {data_mount['source']!r} is not declared under the top-level volumes"
    )
    for name in APP_SERVICES:
        env = _environment(services[name])
        assert env.get("GENEJOBS_HOME") == data_mount["target"], (
            f"{name}: GENEJOBS_HOME={env.get('GENEJOBS_HOME')!r}, "
            f"the shared volume is at {data_mount['target']}"
        )
        mine = {m["target"]: m for m in _mounts(services[name])}.get(data_mount["target"])
        assert mine is not None, f"{name} does not mount the data volume"
        assert (mine["type"], mine["source"]) == ("volume", data_mount["source"]), name
        assert not mine["read_only"], f"{name} mounts the data volume read-only"


def test_results_file_is_on_the_shared_volume(services, data_mount):
    for name in APP_SERVICES:
        db = _environment(services[name]).get("GENEJOBS_DB")
        if db:
            assert Path(db).is_relative_to(data_mount["target"]), f"{name}: GENEJOBS_DB={db}"


def test_every_genejobs_variable_is_read_by_the_config(services):
    known = _config_variables()
    assert {"GENEJOBS_HOME", "GENEJOBS_REDIS_URL", "GENEJOBS_DB"} <= known
    for name, service in services.items():
        unknown = {k for k in _environment(service) if k.startswith("GENEJOBS_")} - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which genejobs/config.py never reads"


def test_app_environment_is_the_same_where_it_matters(services):
    shared = ("GENEJOBS_HOME", "GENEJOBS_DB", "GENEJOBS_REDIS_URL", "GENEJOBS_VISIBILITY_TIMEOUT")
    values = {name: {k: _environment(services[name]).get(k) for k in shared} for name in services}
    app = [values[name] for name in APP_SERVICES]
    assert all(v == app[0] for v in app), values
    for name in services:
        if name not in APP_SERVICES and any(values[name].values()):
            assert values[name] == app[0], f"{name} differs from the app services: {values}"


def test_redis_asks_for_the_password_the_url_carries(services):
    command = services["redis"]["command"]  # as written, before interpolation
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${GENEJOBS_REDIS_PASSWORD:?"), password
    for name in APP_SERVICES:
        url = services[name]["environment"]["GENEJOBS_REDIS_URL"]
        assert f":{password}@redis:" in url, f"{name}: {url}"


def test_redis_url_points_at_the_redis_service(services):
    redis_argv = _command(services["redis"])
    redis_port = int(_option(redis_argv, "--port") or 6379)
    for name, service in services.items():
        url = _environment(service).get("GENEJOBS_REDIS_URL")
        if name in APP_SERVICES:
            assert url, f"{name} does not set GENEJOBS_REDIS_URL"
        if url is None:
            continue
        parsed = urlparse(url)
        assert parsed.scheme in ("redis", "rediss"), url
        assert parsed.hostname == "redis", f"{name}: {url} does not name the redis service"
        assert (parsed.port or 6379) == redis_port, f"{name}: {url} vs redis port {redis_port}"
        depends = service.get("depends_on") or {}
        assert "redis" in depends, f"{name} does not depend on redis"


# worker ------------------------------------------------------------------------


def test_worker_can_scale(services):
    worker = services["worker"]
    assert "container_name" not in worker
    assert "hostname" not in worker, "a fixed hostname gives every replica the same node name"
    assert not worker.get("ports"), "a published port stops the worker from scaling"
    assert worker.get("network_mode") != "host"


def test_worker_runs_the_compute_queue(services):
    argv = _celery_args(_argv(services["worker"]))
    assert _has_sequence(argv, ["-A", "genejobs.worker.app", "worker"]) or _has_sequence(
        argv, ["--app=genejobs.worker.app", "worker"]
    ), argv
    assert _option(argv, "-Q", "--queues") == inbox.COMPUTE_QUEUE == "compute"
    pool = _option(argv, "-P", "--pool")
    assert pool in (None, "prefork"), pool
    # `genejobs status` counts the workers whose node name starts with "compute".
    node = _option(argv, "-n", "--hostname")
    assert node is not None and node.startswith("compute") and "%h" in node, node
    assert "-E" in argv or "--task-events" in argv, "Flower needs task events"


def test_worker_threads_are_capped(services):
    env = _environment(services["worker"])
    for name, value in THREAD_CAPS.items():
        assert env.get(name) == value, f"worker: {name}={env.get(name)!r}, want {value}"


# writer ------------------------------------------------------------------------


def test_writer_runs_the_writer_module_once(services):
    writer = services["writer"]
    assert _argv(writer) == ["python", "-m", "genejobs.worker.writer"]
    replicas = (writer.get("deploy") or {}).get("replicas", 1)
    assert replicas == 1, "there must be exactly one writer"
    assert writer.get("scale", 1) == 1


def test_writer_healthcheck_reads_the_writer_lock(services):
    check = services["writer"].get("healthcheck")
    if check is None:
        pytest.skip("the writer has no healthcheck")
    text = check["test"] if isinstance(check["test"], str) else " ".join(check["test"])
    keys = set(re.findall(r"genejobs:[a-z:]+", text))
    lock = writer_lock.WRITER_LOCK
    assert keys == {lock}, f"healthcheck reads {keys}, the lock is {lock}"


# flower ------------------------------------------------------------------------


def test_flower_serves_its_api_on_a_published_port(services):
    flower = services["flower"]
    # genejobs' entry point: celery flower, its metrics behind basic auth too.
    argv = _argv(flower)
    assert argv[0].startswith("python") and argv[1:3] == ["-m", "genejobs.worker.flower"], argv
    env = _environment(flower)
    # Authenticated, and the unauthenticated API stays off.
    assert "FLOWER_BASIC_AUTH" in env and ":?" in flower["environment"]["FLOWER_BASIC_AUTH"]
    assert env.get("FLOWER_UNAUTHENTICATED_API", "false").lower() in ("false", "0", "no")
    assert all(_published_host(entry) == "127.0.0.1" for entry in flower["ports"]), flower["ports"]
    port = int(_option(argv, "--port") or 5555)
    assert port == 5555
    assert port in _published_container_ports(flower), "Flower's port is not published"
    # Flower listens on all interfaces of its container, or the published port reaches nothing.
    assert _option(argv, "--address") in ("0.0.0.0", "", "::"), argv


# healthchecks ------------------------------------------------------------------


def test_healthchecks_are_well_formed(services):
    for name, service in services.items():
        check = service.get("healthcheck")
        if check is None or check.get("disable"):
            continue
        test = check["test"]
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL", "NONE"), f"{name}: {test}"


# the image ---------------------------------------------------------------------


def test_dockerfile_builds_on_python_311_and_installs_the_project():
    assert DOCKERFILE.exists(), "Dockerfile is missing"
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases and bases[0].startswith("python:3.11"), bases
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", text), (
        "the Dockerfile does not `pip install -c constraints.txt .`"
    )
    assert re.search(r"^COPY \. ", text, re.M), "the project source is not copied into the image"


def test_dockerignore_keeps_out_the_local_state_but_not_the_code():
    assert DOCKERIGNORE.exists(), ".dockerignore is missing"
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git"} <= patterns
    for needed in ("pyproject.toml", "cli", "tasks", "worker", "storage", "*.py", "**/*.py"):
        assert needed not in patterns, f".dockerignore leaves out {needed}"


# the modules the commands name ---------------------------------------------------


def test_commanded_modules_exist(services):
    modules = {"celery", "flower", "redis"}
    for service in services.values():
        argv = _argv(service)
        for i, arg in enumerate(argv):
            if arg in ("-A", "--app", "-m") and i + 1 < len(argv):
                modules.add(argv[i + 1])
            elif arg.startswith("--app="):
                modules.add(arg.split("=", 1)[1])
    assert {"genejobs.worker.app", "genejobs.worker.writer"} <= modules
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    assert not missing, f"the compose commands name modules that do not exist: {missing}"
