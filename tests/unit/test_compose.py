"""The production deployment (docker-compose.yml, deploy/) checked without Docker or network.

The compose file is validated against the official Compose Specification schema (vendored in
tests/unit/schemas/), then against the rules that would break this project's deployment: every
service present and built from deploy/Dockerfile, health checks, dependency conditions, EXPORTER_*
names that the settings object really reads, values it accepts, and secrets that are never
hardcoded.
"""

from __future__ import annotations

import copy
import http.server
import importlib.util
import json
import os
import re
import threading
import types
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, SecretStr

from exporter.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SCHEMA_FILE = Path(__file__).parent / "schemas" / "compose-spec.json"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
EXPORTER_ENV_EXAMPLE = ROOT / "deploy" / "exporter.env.example"
HEALTHCHECK_SCRIPT = ROOT / "deploy" / "healthcheck.py"

# The five services, by the module their container runs (`python -m MODULE`).
EXPORTER_MODULES = ("request_api", "scheduler", "renderer", "notifier", "ingestor")
INFRASTRUCTURE = ("kafka", "mongo", "minio", "mailpit")
SCALABLE_MODULES = ("renderer", "scheduler")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|REPLICA_SET_KEY")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def load_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def validator_class(schema: dict[str, Any]) -> type[Any]:
    """The validator for the draft the schema declares in ``$schema``.

    The compose-spec schema writes ``https://json-schema.org/draft-07/schema`` (https, no ``#``),
    which jsonschema's registry does not list under that exact spelling, so match the draft name.
    """
    known: type[Any] | None = jsonschema.validators.validator_for(schema, default=None)
    if known is not None:
        return known
    declared = schema["$schema"]
    drafts: dict[str, type[Any]] = {
        "draft-07": jsonschema.Draft7Validator,
        "draft-06": jsonschema.Draft6Validator,
        "draft-04": jsonschema.Draft4Validator,
        "draft/2019-09": jsonschema.Draft201909Validator,
        "draft/2020-12": jsonschema.Draft202012Validator,
    }
    for marker, cls in drafts.items():
        if marker in declared:
            return cls
    raise AssertionError(f"unknown $schema {declared!r}")


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = load_schema()
    validator = validator_class(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, whichever of the two forms the file uses."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {name: value for name, value in pairs}
    return {name: "" if value is None else str(value) for name, value in raw.items()}


def command_module(service: dict[str, Any]) -> str | None:
    """MODULE when the service's command is ``python -m MODULE``."""
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    if (
        isinstance(command, list)
        and len(command) == 3
        and command[0] in {"python", "python3"}
        and command[1] == "-m"
    ):
        return str(command[2])
    return None


def exporter_services(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Module -> (compose service name, service) for the services that run ``python -m MODULE``."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, service in document["services"].items():
        module = command_module(service)
        if module is not None:
            assert module not in found, f"{module} runs in both {found[module][0]} and {name}"
            found[module] = (name, service)
    return found


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``Model``, ``Model | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        for argument in typing.get_args(annotation):
            model = _nested_model(argument)
            if model is not None:
                return model
    return None


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(argument) for argument in typing.get_args(annotation))


def settings_variables(model: type[BaseModel] = Settings, prefix: str = "EXPORTER_") -> dict[str, bool]:
    """Every environment variable the settings object reads -> whether its value is a secret.

    Walks the model's fields: a nested group ``kafka`` yields ``EXPORTER_KAFKA`` (a JSON object)
    and one ``EXPORTER_KAFKA__FIELD`` per field inside it.
    """
    names: dict[str, bool] = {}
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name}".upper()
        nested = _nested_model(field.annotation)
        names[name] = _is_secret(field.annotation)
        if nested is not None:
            names.update(settings_variables(nested, f"{name}__"))
    return names


def unknown_exporter_variables(document: dict[str, Any]) -> list[str]:
    """``service: NAME`` for every EXPORTER_* variable no settings field reads (case-insensitive)."""
    known = settings_variables()
    return [
        f"{service_name}: {name}"
        for service_name, service in document["services"].items()
        for name in environment_of(service)
        if name.upper().startswith("EXPORTER_") and name.upper() not in known
    ]


def interpolate(value: str, placeholder_for_required: str = "required-value-of-any-length") -> str:
    """The value compose would produce with an empty shell environment (required ones filled)."""

    def substitute(match: re.Match[str]) -> str:
        op, argument = match.group("op"), match.group("arg")
        if op in {":-", "-"}:
            return argument
        if op in {":?", "?"}:
            return placeholder_for_required
        return ""

    text = value.replace("$$", "\0")
    text = INTERPOLATION.sub(substitute, text)
    assert "$" not in text, f"unsupported interpolation in {value!r}"
    return text.replace("\0", "$")


def referenced_variables(node: Any) -> set[str]:
    """Names of the variables interpolated anywhere in a loaded compose document (comments aside)."""
    if isinstance(node, str):
        return {match.group("name") for match in INTERPOLATION.finditer(node.replace("$$", ""))}
    if isinstance(node, dict):
        return set().union(
            *(referenced_variables(key) | referenced_variables(value) for key, value in node.items())
        )
    if isinstance(node, list):
        return set().union(*(referenced_variables(item) for item in node))
    return set()


def dotenv_names(path: Path) -> set[str]:
    """Names assigned in a dotenv file, commented-out assignments (``# NAME=``) included."""
    pattern = re.compile(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
    return set(pattern.findall(path.read_text(encoding="utf-8")))


def host_of(address: str) -> str:
    """``host`` of ``host:port``, ``scheme://user:pw@host:port/path?query``, or ``host``."""
    address = address.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return address.split(",", 1)[0].rsplit(":", 1)[0]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return exporter_services(compose)


# ----------------------------------------------------------------------------------------------
# the vendored schema and the validation itself
# ----------------------------------------------------------------------------------------------


def test_vendored_schema_is_the_compose_specification() -> None:
    schema = load_schema()
    assert schema["title"] == "Compose Specification"
    assert "draft-07" in schema["$schema"]
    cls = validator_class(schema)
    assert cls is jsonschema.Draft7Validator
    cls.check_schema(schema)
    assert "service" in schema["definitions"]


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_validator_rejects_a_service_with_an_unknown_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["kafka"]["healthcheck_typo"] = {"test": ["CMD", "true"]}
    errors = schema_errors(broken)
    assert any("healthcheck_typo" in error for error in errors), errors


def test_validator_rejects_a_wrong_depends_on_condition(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["renderer"]["depends_on"]["kafka"]["condition"] = "service_ready"
    assert schema_errors(broken) != []


# ----------------------------------------------------------------------------------------------
# project rules
# ----------------------------------------------------------------------------------------------


def test_every_exporter_service_is_present_once(services: dict[str, tuple[str, dict[str, Any]]]) -> None:
    assert sorted(services) == sorted(EXPORTER_MODULES)


@pytest.mark.parametrize("module", EXPORTER_MODULES)
def test_command_module_exists(module: str) -> None:
    assert importlib.util.find_spec(f"{module}.__main__") is not None


@pytest.mark.parametrize("module", EXPORTER_MODULES)
def test_exporter_service_is_built_from_the_one_dockerfile(
    services: dict[str, tuple[str, dict[str, Any]]], module: str
) -> None:
    _, service = services[module]
    build = service["build"]
    assert isinstance(build, dict)
    context = (ROOT / build.get("context", ".")).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert service.get("restart") in {"always", "unless-stopped", "on-failure"}


@pytest.mark.parametrize("module", EXPORTER_MODULES)
def test_exporter_service_has_an_honest_healthcheck(
    services: dict[str, tuple[str, dict[str, Any]]], module: str
) -> None:
    _, service = services[module]
    healthcheck = service["healthcheck"]
    assert not healthcheck.get("disable", False)
    test = healthcheck["test"]
    assert test[:3] == ["CMD", "python", "/app/healthcheck.py"]
    # Readiness: what depends_on: service_healthy waits for.
    if module == "request_api":
        assert test[3:] == ["http", "--ready"]
        assert environment_of(service)["EXPORTER_API__PORT"] == "8080"
        assert any(str(port).endswith(":8080") for port in service["ports"])
    else:
        # The worker check looks for its own module's process, not just any python.
        assert test[3:] == ["worker", module, "--ready"]


@pytest.mark.parametrize("name", INFRASTRUCTURE)
def test_infrastructure_service_exists_with_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["image"]
    assert service["healthcheck"]["test"]
    assert not service["healthcheck"].get("disable", False)
    assert service.get("restart") in {"always", "unless-stopped", "on-failure"}


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    environment = environment_of(kafka)
    assert set(environment["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CLUSTER_ID" in environment
    assert (
        environment["KAFKA_CONTROLLER_LISTENER_NAMES"] in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    )
    assert "PLAINTEXT://kafka:9092" in environment["KAFKA_ADVERTISED_LISTENERS"]


def test_mongo_is_a_replica_set_that_the_services_name(
    compose: dict[str, Any], services: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    mongo = compose["services"]["mongo"]
    assert mongo["image"].startswith("mongo:8")
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    health_script = (ROOT / "deploy" / "mongo-init" / "replica-set-health.js").read_text(encoding="utf-8")
    assert "rs.initiate" in health_script
    assert '_id: "rs0"' in health_script
    for module, (_, service) in services.items():
        uri = environment_of(service)["EXPORTER_MONGO__URI"]
        assert "replicaSet=rs0" in uri, module


def test_depends_on_names_existing_services_with_valid_conditions(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    for name, service in compose["services"].items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: use the long form with a condition"
        for dependency, rule in depends_on.items():
            assert dependency in names, f"{name} depends on unknown service {dependency}"
            assert dependency != name
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in compose["services"][dependency], f"{dependency} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert compose["services"][dependency].get("restart") == "no", dependency
            else:
                raise AssertionError(f"{name} -> {dependency}: use service_healthy, not {condition}")


@pytest.mark.parametrize("module", EXPORTER_MODULES)
def test_exporter_service_waits_for_healthy_infrastructure(
    services: dict[str, tuple[str, dict[str, Any]]], module: str
) -> None:
    _, service = services[module]
    for dependency in ("kafka", "mongo", "minio"):
        assert service["depends_on"][dependency]["condition"] == "service_healthy"
    assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_scalable_services_can_run_several_replicas(services: dict[str, tuple[str, dict[str, Any]]]) -> None:
    for module in SCALABLE_MODULES:
        _, service = services[module]
        assert "container_name" not in service, module
        assert "ports" not in service, module
        assert int(interpolate(str(service["deploy"]["replicas"]))) >= 1


def test_every_exporter_variable_is_a_settings_field(compose: dict[str, Any]) -> None:
    assert unknown_exporter_variables(compose) == []


def test_a_misspelt_exporter_variable_is_caught(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["renderer"]["environment"]["EXPORTER_KAFKA__BOOTSTRAP_SERVER"] = "kafka:9092"
    broken["services"]["ingestor"]["environment"]["EXPORTER_STORAGE_BUCKET"] = "exports"
    assert unknown_exporter_variables(broken) == [
        "renderer: EXPORTER_KAFKA__BOOTSTRAP_SERVER",
        "ingestor: EXPORTER_STORAGE_BUCKET",
    ]


def test_exporter_env_example_names_settings_fields() -> None:
    names = {name for name in dotenv_names(EXPORTER_ENV_EXAMPLE) if name.startswith("EXPORTER_")}
    assert names, "the example documents no variable"
    assert names - set(settings_variables()) == set()


@pytest.mark.parametrize("module", EXPORTER_MODULES)
def test_settings_accept_the_service_environment(
    services: dict[str, tuple[str, dict[str, Any]]], module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values compose hands over (defaults filled in) parse into a production Settings."""
    for name in list(os.environ):
        if name.upper().startswith("EXPORTER_"):
            monkeypatch.delenv(name)
    _, service = services[module]
    # Required values as long as production wants its secrets (Settings._safe_in_production).
    required = "a-required-value-of-at-least-32-bytes"
    environment = {name: interpolate(value, required) for name, value in environment_of(service).items()}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "production"
    # Every address points at a service of this compose file, never at the local defaults.
    compose_services = set(load_compose()["services"])
    assert host_of(settings.kafka.bootstrap_servers) in compose_services
    assert host_of(settings.mongo.uri.get_secret_value()) in compose_services
    assert host_of(settings.storage.endpoint) in compose_services
    if module == "request_api":
        assert settings.api.host == "0.0.0.0"
        assert settings.api.auth_mode == "jwt"
        assert settings.api.jwt_secret is not None
    if module == "notifier":
        assert host_of(settings.smtp.host) in compose_services


def test_secrets_are_never_hardcoded(compose: dict[str, Any]) -> None:
    """Secret values come from ``${VAR:?...}`` (required, no default), never from the file."""
    secret_settings = {name for name, secret in settings_variables().items() if secret}
    offenders = []
    for service_name, service in compose["services"].items():
        for name, value in environment_of(service).items():
            if name.upper() in secret_settings or SECRET_NAME.search(name):
                required = [m for m in INTERPOLATION.finditer(value) if m.group("op") in {":?", "?"}]
                if not required:
                    offenders.append(f"{service_name}: {name}")
    assert offenders == []


def test_compose_variables_are_documented_in_the_env_example(compose: dict[str, Any]) -> None:
    used = referenced_variables(compose)
    documented = dotenv_names(COMPOSE_ENV_EXAMPLE)
    assert used - documented == set(), "used in docker-compose.yml but missing from the example"
    assert documented - used == set(), "in the example but never used by docker-compose.yml"


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (ROOT / source).is_file(), f"{name}: {source} does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared volume {source}"
    for name, service in compose["services"].items():
        for env_file in service.get("env_file", []):
            if isinstance(env_file, dict) and env_file.get("required") is False:
                assert (ROOT / f"{env_file['path']}.example").is_file(), name


# ----------------------------------------------------------------------------------------------
# the image
# ----------------------------------------------------------------------------------------------


def test_dockerfile_builds_a_locked_runtime_only_non_root_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 3  # uv, builder, runtime
    assert "uv sync --frozen --no-dev" in text
    assert "--group" not in text
    assert "--all-groups" not in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1] not in {"root", "0", "0:0"}
    assert "COPY deploy/healthcheck.py /app/healthcheck.py" in text
    assert not re.search(r"^(ENV|ARG)\s+.*(PASSWORD|SECRET)", text, re.MULTILINE | re.IGNORECASE)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context() -> None:
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in (".env", ".venv", ".git", ".run", "*.env"):
        assert pattern in patterns
    assert "!deploy/healthcheck.py" in patterns


# ----------------------------------------------------------------------------------------------
# the health-check script the image carries
# ----------------------------------------------------------------------------------------------


def _healthcheck_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("exporter_deploy_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_process(proc: Path, pid: int, argv: list[str], state: str) -> None:
    directory = proc / str(pid)
    directory.mkdir(parents=True)
    (directory / "cmdline").write_bytes(b"\0".join(part.encode() for part in argv) + b"\0")
    (directory / "stat").write_text(f"{pid} (python) {state} 1 1 1 0 -1\n")


def test_worker_healthcheck_finds_only_a_live_process_of_its_module(tmp_path: Path) -> None:
    healthcheck = _healthcheck_module()
    # With `init: true`, PID 1 is docker-init, whose argv repeats the service's command.
    _fake_process(tmp_path, 1, ["/sbin/docker-init", "--", "python", "-m", "renderer"], "S")
    _fake_process(tmp_path, 7, ["/app/.venv/bin/python", "-m", "renderer"], "S")
    _fake_process(tmp_path, 8, ["/sbin/docker-init", "--", "python", "-m", "ingestor"], "S")
    _fake_process(tmp_path, 9, ["python", "-m", "notifier"], "Z")
    (tmp_path / "self").mkdir()
    assert healthcheck.find_module_process("renderer", tmp_path) is None
    assert "state Z" in healthcheck.find_module_process("notifier", tmp_path)
    assert "no running" in healthcheck.find_module_process("scheduler", tmp_path)
    # docker-init alone is not the service.
    assert "no running" in healthcheck.find_module_process("ingestor", tmp_path)


def test_worker_healthcheck_reports_an_unreachable_broker() -> None:
    healthcheck = _healthcheck_module()
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    assert "unreachable" in healthcheck.check_tcp("127.0.0.1:1")
    assert "unreachable" in healthcheck.check_tcp("no-port-given")


def test_http_healthcheck_probes_liveness_or_with_ready_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    """An API that is alive but not ready: healthy as liveness, unhealthy as readiness."""
    healthcheck = _healthcheck_module()

    class Probes(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Probes) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("EXPORTER_API__PORT", str(server.server_address[1]))
        try:
            assert healthcheck.main(["http"]) == 0
            assert healthcheck.main(["http", "--ready"]) == 1
        finally:
            server.shutdown()
