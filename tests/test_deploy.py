"""The install-and-run files, checked statically: Dockerfile, docker-compose.yml, .env.example and
the systemd unit.

Docker cannot build or run here, so the Dockerfile is linted with hadolint and the compose file is
validated against the Compose Specification's JSON schema that check-jsonschema ships. The unit is
checked with systemd-analyze. Each tool is skipped when missing, except under CI, where .ci/run
installs them all.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from sqlalchemy.engine import make_url

from service.cli import main
from service.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
UNIT = ROOT / "deploy" / "zhoubao.service"
# Highest overall exposure that `systemd-analyze security` may report for the unit, in its tenths
# of a point: 20 is 2.0, within the range it labels "OK".
MAX_EXPOSURE = 20


def require_tool(name: str) -> str:
    """Return the path of the command ``name``; skip without it, or fail under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found on PATH; .ci/run should install it")
        pytest.skip(f"{name} not found on PATH")
    return path


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)


def script_name() -> str:
    """Return the name of the console script that pyproject.toml installs for the CLI."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    (name,) = [name for name, target in scripts.items() if target == "service.cli:main"]
    return name


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines as Compose reads an env file, skipping blanks and comments."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: line without '=': {line!r}"
        values[key.strip()] = value.strip()
    return values


# --- Dockerfile --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [item["value"] for item in parser.structure if item["instruction"] == name]


def test_dockerfile_passes_hadolint():
    hadolint = require_tool("hadolint")

    result = run(hadolint, "--no-color", str(DOCKERFILE))

    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_python_311_slim(dockerfile):
    assert all(image.startswith("python:3.11-slim") for image in dockerfile.parent_images)


def test_dockerfile_runs_as_non_root(dockerfile):
    users = instructions(dockerfile, "USER")

    assert users, "the image has no USER instruction, so it runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_libreoffice_optional(dockerfile):
    assert dockerfile.args["WITH_LIBREOFFICE"] == "false"
    install = [value for value in instructions(dockerfile, "RUN") if "libreoffice" in value]
    assert len(install) == 1
    assert '"$WITH_LIBREOFFICE" = "true"' in install[0]


def test_dockerfile_starts_service(dockerfile):
    entrypoint = yaml.safe_load(instructions(dockerfile, "ENTRYPOINT")[-1])
    command = yaml.safe_load(dockerfile.cmd)

    assert entrypoint == [script_name()]
    assert command == ["run"]
    assert command[0] in main.commands


def test_dockerignore_keeps_secrets_out():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()

    for secret in (".env", "config.toml", "*.sqlite3", "data/"):
        assert secret in ignored


# --- docker-compose.yml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_matches_specification_schema():
    result = run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                 str(COMPOSE))

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_typo(tmp_path):
    # The schema check must fail on a misspelt key, or the test above proves nothing.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text(encoding="utf-8").replace("healthcheck:", "healthchek:"),
                      encoding="utf-8")

    result = run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                 str(broken))

    assert result.returncode == 1
    assert "healthchek" in result.stdout


def test_compose_database_healthcheck(compose):
    database = compose["services"]["db"]
    probe = database["healthcheck"]["test"]

    assert probe[:2] == ["CMD", "pg_isready"]
    assert f"--username={database['environment']['POSTGRES_USER']}" in probe
    assert f"--dbname={database['environment']['POSTGRES_DB']}" in probe


def test_compose_database_on_named_volume(compose):
    volumes = compose["services"]["db"]["volumes"]

    assert "db-data:/var/lib/postgresql/data" in volumes
    assert "db-data" in compose["volumes"]


def test_compose_service_waits_for_healthy_database(compose):
    service = compose["services"]["zhoubao"]

    assert service["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_compose_services_restart(compose):
    for name, service in compose["services"].items():
        assert service["restart"] in ("unless-stopped", "on-failure"), name


def test_compose_secrets_from_env_file(compose):
    assert compose["services"]["zhoubao"]["env_file"] == [{"path": ".env", "required": True}]
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_compose_variables_in_env_example():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))

    assert used
    assert used <= set(read_env_file(ENV_EXAMPLE))


def test_compose_mounts_match_image(compose, dockerfile):
    volumes = compose["services"]["zhoubao"]["volumes"]
    config_path = dockerfile.envs["ZHOUBAO_CONFIG"]
    data_dir = yaml.safe_load(instructions(dockerfile, "VOLUME")[-1])[0]

    assert f"./config.toml:{config_path}:ro" in volumes
    assert f"zhoubao-data:{data_dir}" in volumes
    assert compose["services"]["zhoubao"]["environment"]["ZHOUBAO_CONFIG"] == config_path


def test_compose_config_loads_with_env_example(tmp_path, compose, dockerfile):
    # GIVEN config.example.toml with the changes README.md gives for Docker Compose
    database = compose["services"]["db"]["environment"]
    url = f"postgresql+psycopg://{database['POSTGRES_USER']}@db:5432/{database['POSTGRES_DB']}"
    data_dir = yaml.safe_load(instructions(dockerfile, "VOLUME")[-1])[0]
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('data_dir = "data"', f'data_dir = "{data_dir}"', 1)
    text = text.replace("[database]\n", f'[database]\nurl = "{url}"\npassword_env = "ZHOUBAO_DB_PASSWORD"\n', 1)
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")

    # WHEN it is loaded with the variables of .env.example
    environment = read_env_file(ENV_EXAMPLE)
    settings = load_settings(config, environment)

    # THEN the database password and the mailbox code come from them
    assert make_url(settings.database.url).password == environment["ZHOUBAO_DB_PASSWORD"]
    assert settings.database.url.endswith(f"@db:5432/{database['POSTGRES_DB']}")
    assert settings.mailbox.password.reveal() == environment["ZHOUBAO_IMAP_PASSWORD"]
    assert str(settings.data_dir) == data_dir


# --- systemd unit ------------------------------------------------------------------------------


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Parse a unit file into section -> key -> values; a key may repeat, as systemd allows."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1], {})
            continue
        assert current is not None, f"{path.name}: line outside a section: {line!r}"
        assert not stripped.endswith("\\"), f"{path.name}: continuation lines are not parsed here"
        key, separator, value = stripped.partition("=")
        assert separator, f"{path.name}: line without '=': {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return read_unit(UNIT)


@pytest.mark.parametrize(("key", "value"), [
    ("User", "zhoubao"),
    ("Group", "zhoubao"),
    ("Restart", "on-failure"),
    ("Environment", "ZHOUBAO_CONFIG=/etc/zhoubao/config.toml"),
    ("EnvironmentFile", "/etc/zhoubao/zhoubao.env"),
    ("StateDirectory", "zhoubao"),
    ("ReadWritePaths", "/var/lib/zhoubao"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("NoNewPrivileges", "yes"),
    ("StandardOutput", "journal"),
    ("StandardError", "journal"),
])
def test_unit_service_setting(unit, key, value):
    assert value in unit["Service"].get(key, [])


def test_unit_restart_delay(unit):
    (delay,) = unit["Service"]["RestartSec"]

    assert int(delay) > 0


def test_unit_starts_service(unit):
    (command,) = unit["Service"]["ExecStart"]
    executable, *arguments = shlex.split(command)

    assert Path(executable).name == script_name()
    assert arguments == ["run"]


def test_unit_enabled_for_boot(unit):
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_passes_systemd_analyze_verify(tmp_path, unit):
    # verify rejects an ExecStart that does not exist here, so the copy runs the installed script.
    analyze = require_tool("systemd-analyze")
    installed = require_tool(script_name())
    (command,) = unit["Service"]["ExecStart"]
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text(encoding="utf-8").replace(shlex.split(command)[0], installed),
                    encoding="utf-8")

    result = run(analyze, "verify", str(copy))

    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_unit_exposure_within_threshold():
    analyze = require_tool("systemd-analyze")

    result = run(analyze, "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}", str(UNIT))

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
