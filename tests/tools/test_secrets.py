from __future__ import annotations

import pytest

from orchestrion.domain.findings import Severity
from orchestrion.tools.base import InputFile, ToolContext, ToolOutput
from orchestrion.tools.secrets import SecretScanTool, is_placeholder, redact, redact_secrets, shannon_entropy

# Built by concatenation so that the test file itself does not look like a leak to other scanners.
AWS_KEY_ID = "AKIA" + "Q3EGRT5ZJ7NXW2PL"
AWS_SECRET = "wJalrXUtnF" + "EMI/K7MDENG/bPxRfiCYzQ9Kd2LmAb"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-" + "123456789012-987654321098-AbCdEfGhIjKlMnOp"
STRIPE = "sk_live_" + "51HbQ2kLmN8pQrStUvWx9yZ0"
GOOGLE = "AIza" + "SyD4f8Gh2Jk9Lm3Np7Qr5St1Uv6Wx0YzAbC"
JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
PASSWORD = "Tr0ub4dor&3-horse"
ENTROPY = "q8Zr3Vt1Lm0Xp7Yw2Kd9Hs4Nf6Bj5Gc"
HEX = "a3f1c9e07b2d4d6e8f0a1b2c3d4e5f60"
SECRETS = [AWS_KEY_ID, AWS_SECRET, GITHUB, SLACK, STRIPE, GOOGLE, JWT, PASSWORD, ENTROPY, HEX]

LEAKY = f"""AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"
aws_secret_access_key = {AWS_SECRET}
GITHUB_TOKEN={GITHUB}
slack: "{SLACK}"
stripe_key = "{STRIPE}"
maps = "{GOOGLE}"
-----BEGIN RSA PRIVATE KEY-----
bearer = "{JWT}"
db_password = "{PASSWORD}"
blob = "{ENTROPY}"
session_seed = "{HEX}"
"""


async def _scan(*files: tuple[str, str]) -> ToolOutput:
    ctx = ToolContext(task_id="t", step_id="s", files=[InputFile(name=n, content=c) for n, c in files])
    output, _ = await SecretScanTool().run({}, ctx)
    return output


async def test_known_patterns_are_found_with_locations_and_severities() -> None:
    output = await _scan(("config/settings.env", LEAKY))

    found = {(o.data["rule"], o.location) for o in output.observations}
    assert found == {
        ("aws_access_key_id", "config/settings.env:1"),
        ("aws_secret_access_key", "config/settings.env:2"),
        ("github_token", "config/settings.env:3"),
        ("slack_token", "config/settings.env:4"),
        ("stripe_secret_key", "config/settings.env:5"),
        ("google_api_key", "config/settings.env:6"),
        ("private_key", "config/settings.env:7"),
        ("jwt", "config/settings.env:8"),
        ("generic_credential", "config/settings.env:9"),
        ("high_entropy_string", "config/settings.env:10"),
        ("high_entropy_string", "config/settings.env:11"),
    }
    severity = {o.data["rule"]: f.severity for o, f in zip(output.observations, output.findings, strict=True)}
    assert severity["aws_access_key_id"] is Severity.HIGH
    assert severity["private_key"] is Severity.HIGH
    assert severity["generic_credential"] is Severity.MEDIUM
    assert severity["high_entropy_string"] is Severity.MEDIUM
    assert output.data["hits"] == 11


async def test_secret_values_never_appear_in_the_output() -> None:
    output = await _scan(("config/settings.env", LEAKY))

    text = repr(output)
    for secret in SECRETS:
        assert secret not in text
    github = next(o for o in output.observations if o.data["rule"] == "github_token")
    assert github.data["redacted"] == "ghp_…(40 chars)"
    assert github.summary == "GitHub token in config/settings.env:3: ghp_…(40 chars)"


async def test_findings_recommend_rotation_and_a_secret_store() -> None:
    output = await _scan(("app.py", f'API_KEY = "{STRIPE}"\n'))

    [finding] = output.findings
    assert finding.title == "Possible Stripe live secret key in app.py:1"
    assert "rotate" in finding.recommendation
    assert "secret store" in finding.recommendation
    assert finding.observation_indexes == (0,)


async def test_placeholders_and_ordinary_strings_are_not_flagged() -> None:
    source = "\n".join(
        [
            'password = "changeme"',
            'token = "${GITHUB_TOKEN}"',
            'api_key = "xxxxxxxxxxxxxxxxxxxxxxxx"',
            'secret = "<your-secret-here>"',
            'aws_key = "AKIAIOSFODNN7EXAMPLE"',
            'path = "src/orchestrion/tools/base.py"',
            'name = "ThisIsAVeryLongIdentifierName1"',
            'checksum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"',
            'password = os.environ["DB_PASSWORD"]',
            "message = 'the quick brown fox jumps over the lazy dog'",
        ]
    )

    output = await _scan(("settings.py", source))

    assert output.observations == ()
    assert output.data["hits"] == 0


async def test_hits_are_reported_per_file() -> None:
    output = await _scan(("a.txt", f"key {GITHUB}\n"), ("b/c.yaml", f"\n\ntoken: {GITHUB}\n"))

    assert [o.location for o in output.observations] == ["a.txt:1", "b/c.yaml:3"]
    assert output.data["by_rule"] == {"github_token": 2}


@pytest.mark.parametrize(
    ("value", "shown"),
    [("abcdefghijklmnopqrst", "abcd…(20 chars)"), ("hunter2", "h…(7 chars)"), ("abc", "…(3 chars)")],
)
def test_redact_keeps_at_most_four_leading_characters(value: str, shown: str) -> None:
    assert redact(value) == shown


def test_redact_secrets_masks_values_inside_text() -> None:
    assert redact_secrets(f'x = 1\ntoken = "{GITHUB}"') == 'x = 1\ntoken = "ghp_…(40 chars)"'


def test_entropy_and_placeholders() -> None:
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == 2.0
    assert is_placeholder("zzzzzzzz")
    assert is_placeholder("{{ vault_token }}")
    assert not is_placeholder(PASSWORD)
