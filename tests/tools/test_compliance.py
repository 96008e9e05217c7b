"""The config_secrets tool (secrets through the secret scanner, plus configuration rules) and the
compliance module's exports. The licence audit and the ASVS check have their own test modules."""

from __future__ import annotations

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools import compliance
from orchestrion.tools.base import InputFile, Observation, ProposedFinding, ToolContext, ToolOutput
from orchestrion.tools.compliance import AsvsWebCheckTool, ConfigSecretsTool, LicenceAuditTool
from orchestrion.tools.config_checks import is_config_file, yaml_documents

# Built by concatenation so that this file does not look like a leak to other scanners.
AWS_KEY_ID = "AKIA" + "Q3EGRT5ZJ7NXW2PL"
DB_SECRET = "Tr0ub4dor&3-" + "horse-battery"

DOTENV = f"""# production settings
DEBUG=true
DB_PASSWORD=changeme
NODE_TLS_REJECT_UNAUTHORIZED=0
ALLOWED_HOSTS=*
DATABASE_URL=postgres://postgres:postgres@db:5432/app?sslmode=disable
AWS_ACCESS_KEY_ID={AWS_KEY_ID}
API_PASSWORD="{DB_SECRET}"
"""

SETTINGS_YAML = """app:
  name: shop
  debug: true
http:
  client:
    verify: false
cors:
  allowed_origins:
    - "*"
"""

CONFIG_INI = """[database]
host = db
user = admin
password = admin
sslmode = disable

[server]
debug = off
"""

COMPOSE = """services:
  web:
    image: shop:latest
    privileged: true
    network_mode: host
    user: root
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - ./data:/data
    cap_add:
      - SYS_ADMIN
    environment:
      - DEBUG=true
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: postgres
      POSTGRES_HOST_AUTH_METHOD: trust
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      hostNetwork: true
      containers:
        - name: api
          image: api:1
          securityContext:
            privileged: true
            allowPrivilegeEscalation: true
            runAsUser: 0
          env:
            - name: FLASK_DEBUG
              value: "1"
        - name: sidecar
          image: proxy:1
      volumes:
        - name: host
          hostPath:
            path: /
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: safe
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: app
          image: app:1
          securityContext:
            allowPrivilegeEscalation: false
"""

SAFE_FILES = (
    ("prod.env", "DEBUG=false\nDB_PASSWORD=${DB_PASSWORD}\nALLOWED_HOSTS=shop.example.com\n"),
    (
        "client.yaml",
        "http:\n  verify: true\n  ca_bundle: /etc/ssl/internal.pem\ncors:\n  origins: [https://shop.example.com]\n",
    ),
    ("db.ini", "[database]\nsslmode = verify-full\npassword = ${DB_PASSWORD}\n"),
)


async def _scan(*files: tuple[str, str]) -> ToolOutput:
    ctx = ToolContext(task_id="t", step_id="s", files=[InputFile(name=n, content=c) for n, c in files])
    output, _ = await ConfigSecretsTool().run({}, ctx)
    return output


def _hits(output: ToolOutput) -> set[tuple[str, str]]:
    return {(o.data["rule"], o.location or "") for o in output.observations}


def _finding_at(output: ToolOutput, rule: str, location: str) -> tuple[ProposedFinding, Observation]:
    for finding in output.findings:
        (index,) = finding.observation_indexes
        observation = output.observations[index]
        if observation.data["rule"] == rule and observation.location == location:
            return finding, observation
    raise AssertionError(f"no {rule} finding at {location}: {sorted(_hits(output))}")


def test_compliance_exports_the_three_tools() -> None:
    assert set(compliance.__all__) >= {"LicenceAuditTool", "AsvsWebCheckTool", "ConfigSecretsTool"}
    assert (LicenceAuditTool.name, AsvsWebCheckTool.name, ConfigSecretsTool.name) == (
        "licence_audit",
        "asvs_web_check",
        "config_secrets",
    )


async def test_dotenv_problems_and_secrets_are_found_on_their_lines() -> None:
    output = await _scan((".env", DOTENV))

    assert _hits(output) >= {
        ("debug_enabled", ".env:2"),
        ("default_credentials", ".env:3"),
        ("tls_verification_disabled", ".env:4"),
        ("wildcard_hosts", ".env:5"),
        ("default_credentials", ".env:6"),
        ("tls_verification_disabled", ".env:6"),
        ("aws_access_key_id", ".env:7"),
        ("generic_credential", ".env:8"),
    }
    finding, observation = _finding_at(output, "default_credentials", ".env:3")
    assert finding.severity is Severity.HIGH
    assert finding.title == "Default credentials in .env:3"
    assert observation.data["detail"] == "DB_PASSWORD is the well-known default 'changeme'"
    _, url = _finding_at(output, "default_credentials", ".env:6")
    assert "default password 'postgres' for user 'postgres'" in url.data["detail"]
    assert _finding_at(output, "debug_enabled", ".env:2")[0].severity is Severity.MEDIUM
    tls, _ = _finding_at(output, "tls_verification_disabled", ".env:4")
    assert tls.severity is Severity.MEDIUM and "verification" in tls.recommendation
    assert output.data["secrets"] == 2


async def test_secrets_come_from_the_secret_scanner_and_stay_redacted() -> None:
    output = await _scan((".env", DOTENV))

    text = repr(output)
    assert AWS_KEY_ID not in text
    assert DB_SECRET not in text
    aws = next(o for o in output.observations if o.data["rule"] == "aws_access_key_id")
    assert aws.data["redacted"] == "AKIA…(20 chars)"
    # The excerpt quoted for a configuration hit on a line holding a secret is redacted too.
    _, url = _finding_at(output, "tls_verification_disabled", ".env:6")
    assert url.data["excerpt"].startswith("DATABASE_URL=postgres://")


async def test_yaml_json_ini_toml_and_properties_settings() -> None:
    output = await _scan(
        ("config/settings.yaml", SETTINGS_YAML),
        ("config/app.ini", CONFIG_INI),
        ("config/settings.json", '{\n  "debug": true,\n  "ssl": {"rejectUnauthorized": false}\n}\n'),
        ("config/app.toml", "[server]\ndebug = true\n\n[tls]\ninsecure_skip_verify = true\n"),
        ("config/app.properties", "spring.datasource.password=changeit\nmanagement.ssl.verify=false\n"),
        ("config/redis.conf", "bind 0.0.0.0\nprotected-mode no\nrequirepass foobared\n"),
        (
            "config/nginx.conf",
            'server {\n  add_header Access-Control-Allow-Origin "*";\n  proxy_ssl_verify off;\n}\n',
        ),
    )

    assert _hits(output) == {
        ("debug_enabled", "config/settings.yaml:3"),
        ("tls_verification_disabled", "config/settings.yaml:6"),
        ("wildcard_cors", "config/settings.yaml:9"),
        ("default_credentials", "config/app.ini:4"),
        ("tls_verification_disabled", "config/app.ini:5"),
        ("debug_enabled", "config/settings.json:2"),
        ("tls_verification_disabled", "config/settings.json:3"),
        ("debug_enabled", "config/app.toml:2"),
        ("tls_verification_disabled", "config/app.toml:5"),
        ("default_credentials", "config/app.properties:1"),
        ("tls_verification_disabled", "config/app.properties:2"),
        ("auth_disabled", "config/redis.conf:2"),
        ("default_credentials", "config/redis.conf:3"),
        ("wildcard_cors", "config/nginx.conf:2"),
        ("tls_verification_disabled", "config/nginx.conf:3"),
    }
    _, debug = _finding_at(output, "debug_enabled", "config/settings.yaml:3")
    assert debug.data["detail"] == "app.debug = true"
    assert debug.data["excerpt"] == "debug: true"
    _, ini = _finding_at(output, "default_credentials", "config/app.ini:4")
    assert ini.data["detail"] == "database.password is the well-known default 'admin'"


async def test_compose_services_are_checked_for_privileges() -> None:
    output = await _scan(("deploy/docker-compose.yml", COMPOSE))

    name = "deploy/docker-compose.yml"
    assert _hits(output) == {
        ("privileged_container", f"{name}:4"),
        ("host_namespace", f"{name}:5"),
        ("runs_as_root", f"{name}:6"),
        ("privileged_container", f"{name}:8"),
        ("privileged_container", f"{name}:11"),
        ("debug_enabled", f"{name}:13"),
        ("default_credentials", f"{name}:17"),
        ("auth_disabled", f"{name}:18"),
    }
    privileged, observation = _finding_at(output, "privileged_container", f"{name}:4")
    assert privileged.severity is Severity.HIGH
    assert observation.data["detail"] == "service web: privileged: true"
    _, socket = _finding_at(output, "privileged_container", f"{name}:8")
    assert socket.data["detail"] == "service web: mounts the container runtime socket /var/run/docker.sock"
    assert _finding_at(output, "host_namespace", f"{name}:5")[0].severity is Severity.MEDIUM
    assert _finding_at(output, "runs_as_root", f"{name}:6")[0].severity is Severity.MEDIUM
    assert _finding_at(output, "auth_disabled", f"{name}:18")[0].severity is Severity.HIGH


async def test_kubernetes_workloads_are_checked_for_privileges() -> None:
    output = await _scan(("k8s/api.yaml", DEPLOYMENT))

    name = "k8s/api.yaml"
    assert _hits(output) == {
        ("host_namespace", f"{name}:8"),
        ("privileged_container", f"{name}:13"),
        ("privilege_escalation", f"{name}:14"),
        ("runs_as_root", f"{name}:15"),
        ("debug_enabled", f"{name}:18"),
        ("runs_as_root", f"{name}:19"),
        ("privileged_container", f"{name}:24"),
    }
    implicit, observation = _finding_at(output, "runs_as_root", f"{name}:19")
    assert implicit.severity is Severity.LOW
    assert observation.data["detail"].startswith(
        "Deployment api container sidecar: nothing prevents running as root"
    )
    explicit, _ = _finding_at(output, "runs_as_root", f"{name}:15")
    assert explicit.severity is Severity.MEDIUM
    _, root_mount = _finding_at(output, "privileged_container", f"{name}:24")
    assert root_mount.data["detail"] == "Deployment api: mounts the host's root filesystem"


async def test_safe_configuration_raises_nothing() -> None:
    output = await _scan(*SAFE_FILES)

    assert output.observations == ()
    assert output.findings == ()
    assert output.data["files"] == ["prod.env", "client.yaml", "db.ini"]


async def test_only_configuration_files_are_scanned() -> None:
    output = await _scan(("app.py", f'KEY = "{AWS_KEY_ID}"\nDEBUG = True\n'), ("README.md", "DEBUG=true\n"))

    assert output.observations == ()
    assert output.data["skipped"] == 2


async def test_passwords_on_quoted_lines_are_redacted_but_defaults_shown() -> None:
    real = "Kx9" + "vQ2mPz7"
    output = await _scan(
        ("db.env", f"DATABASE_URL=postgres://app:{real}@db/app?sslmode=disable\n"),
        ("libpq.conf", f"dsn = host=db user=app password={real} sslmode=disable\n"),
        ("admin.env", "ADMIN_URL=https://admin:admin@panel/?x=1\nPGSSLMODE=disable\n"),
    )

    assert real not in repr(output)
    _, url = _finding_at(output, "tls_verification_disabled", "db.env:1")
    assert url.data["excerpt"] == "DATABASE_URL=postgres://app:Kx…(10 chars)@db/app?sslmode=disable"
    _, dsn = _finding_at(output, "tls_verification_disabled", "libpq.conf:1")
    assert dsn.data["excerpt"] == "dsn = host=db user=app password=Kx…(10 chars) sslmode=disable"
    _, default = _finding_at(output, "default_credentials", "admin.env:1")
    assert default.data["excerpt"] == "ADMIN_URL=https://admin:admin@panel/?x=1"


async def test_one_line_matching_two_ways_is_reported_once() -> None:
    output = await _scan(("db.env", "PGSSLMODE=disable\nsslmode=disable\n"))

    assert sorted(_hits(output)) == [
        ("tls_verification_disabled", "db.env:1"),
        ("tls_verification_disabled", "db.env:2"),
    ]


async def test_every_finding_cites_one_observation() -> None:
    output = await _scan((".env", DOTENV), ("docker-compose.yml", COMPOSE), ("k8s.yaml", DEPLOYMENT))

    assert len(output.findings) == len(output.observations)
    for index, finding in enumerate(output.findings):
        assert finding.observation_indexes == (index,)


async def test_a_yaml_alias_bomb_is_walked_within_a_budget() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for level in "bcdefghi":
        previous = ", ".join([f"*{chr(ord(level) - 1)}"] * 10)
        bomb += f"{level}: &{level} [{previous}]\n"
    output = await _scan(("bomb.yaml", bomb))
    assert output.findings == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".env", True),
        (".env.production", True),
        ("deploy/prod.env", True),
        ("settings.yaml", True),
        ("x/app.YML", True),
        ("package.json", True),
        ("pyproject.toml", True),
        ("setup.cfg", True),
        ("nginx.conf", True),
        ("application.properties", True),
        ("app.py", False),
        ("Dockerfile", False),
        ("environment.md", False),
    ],
)
def test_configuration_files_are_recognised_by_name(name: str, expected: bool) -> None:
    assert is_config_file(name) is expected


def test_yaml_documents_keep_line_numbers() -> None:
    documents = yaml_documents("a:\n  b: 1\n---\nc: [x]\n")
    assert documents is not None
    first, second = documents
    assert isinstance(first.value, dict) and first.value["a"].line == 2
    assert isinstance(second.value, dict) and second.value["c"].line == 4
    assert yaml_documents("a: [unclosed\n") is None
