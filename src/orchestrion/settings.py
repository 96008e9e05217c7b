"""Settings: the only module that reads the environment (prefix ``ORCHESTRION_``, or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _split_list(value: Any) -> Any:
    """Accept comma-separated strings for list settings (``a,b``) as well as JSON lists."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything configurable, validated once at start-up and passed down by `runtime.py`."""

    model_config = SettingsConfigDict(env_prefix="ORCHESTRION_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path("./data"), description="Directory for the SQLite file and state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default SQLite under `home`."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: LogLevel = "INFO"

    admin_api_key: SecretStr | None = Field(
        default=None, description="Creates the first admin with this key when no admin exists."
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 key for access tokens; generated under `home` if unset."
    )
    jwt_ttl_seconds: int = Field(default=3600, ge=60)

    workspace_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    agents_dir: Path | None = Field(
        default=None, description="Directory of YAML files defining custom agents and task types."
    )
    mcp_servers_file: Path | None = Field(
        default=None,
        description="A YAML file of MCP servers (stdio) to start; their tools become `mcp.<server>.<tool>`.",
    )
    tool_allow_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs and host names (`*.example.com` too) network tools may reach past the SSRF guard.",
    )
    tool_allow_active_scanning: bool = Field(
        default=False,
        description="The operator's permission for active tools (port checks); tasks must also ask for it.",
    )
    tool_nameservers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="DNS servers (ip or ip:port) network tools resolve with; default: the system resolver.",
    )
    tool_ca_file: Path | None = Field(
        default=None, description="A PEM CA bundle network tools trust instead of the system store."
    )
    tool_max_response_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    tool_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    tool_read_timeout_seconds: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_input_files: int = Field(default=200, ge=1)

    workers: int = Field(default=4, ge=1, le=256, description="Concurrent task runs per process.")
    step_concurrency: int = Field(default=8, ge=1, description="Concurrent steps within one task.")
    parallel_max_items: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="The most items one batch task may have (parallel engine; more is refused with 422).",
    )
    parallel_concurrency: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Map steps in flight per batch task; a task's `options.concurrency` may only lower it.",
    )
    engine_rules: str | None = Field(
        default=None,
        description="Engine rules over the defaults: `type=primary>fallback,...` (docs/engines.md).",
    )
    engine_max_concurrency: str | None = Field(
        default=None,
        description="Runs each engine executes at once per process, over the defaults: `engine=n,...`.",
    )
    queue_aging_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Starvation guard: a waiting run gains a priority level per this many seconds (0: off).",
    )
    embedded_worker: bool = True
    lease_seconds: float = Field(default=30.0, gt=0.5)
    sweep_interval_seconds: float = Field(default=5.0, gt=0.05)

    step_timeout_seconds: float = Field(default=300.0, gt=0)
    step_max_retries: int = Field(default=1, ge=0, le=10)
    agent_metrics_window: int = Field(
        default=100, ge=1, le=10_000, description="Latest runs per agent that its rates are computed over."
    )
    agent_alert_response_seconds: float = Field(
        default=120.0, gt=0, le=86_400, description="Alert when an agent's p95 run duration is above this."
    )
    agent_alert_success_rate: float = Field(
        default=0.5, ge=0, le=1, description="Alert when an agent's recent success rate is below this."
    )
    agent_alert_error_rate: float = Field(
        default=0.3, ge=0, le=1, description="Alert when an agent's recent error rate is above this."
    )
    agent_alert_min_runs: int = Field(
        default=5, ge=1, le=10_000, description="Recent runs an agent needs before its alerts apply."
    )
    retry_backoff_seconds: float = Field(default=0.5, ge=0)

    # Monitoring: the system sampler and alert rules (docs/monitoring.md).
    system_sample_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Sample system and task metrics, then evaluate the alert rules, this often.",
    )
    alert_rules_file: Path | None = Field(
        default=None, description="A YAML file of alert rules; unset: the built-in defaults."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="An http(s) URL every alert firing and resolving is POSTed to."
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="Signs webhook bodies (HMAC-SHA256, `X-Orchestrion-Signature`)."
    )
    alert_webhook_max_attempts: int = Field(default=5, ge=1, le=20)

    retrain_every: int = Field(
        default=20,
        ge=0,
        le=100_000,
        description="Train a candidate outcome model every N outcomes; 0: never.",
    )
    min_train_samples: int = Field(
        default=50, ge=20, le=1_000_000, description="Finished tasks with predictions needed to train."
    )
    holdout_fraction: float = Field(
        default=0.25, gt=0.05, lt=0.9, description="Newest share of the history a candidate is scored on."
    )
    intelligence_refresh_seconds: float = Field(
        default=30.0, ge=0, description="Reload history and the promoted model this often (0: never)."
    )
    selector_load_penalty: float = Field(
        default=0.1, ge=0, le=10, description="Score a candidate agent loses per step it is running."
    )
    selector_seed: int | None = Field(
        default=None, description="Seed of the selector's sampling (unset: random each start)."
    )

    llm: str = Field(
        default="auto",
        description=(
            "`auto`: the first vendor whose API key variable is set (Anthropic, OpenAI, Gemini, then"
            " the others), each route falling back to the embedded model, or the embedded model alone"
            " with no key; `none`: no LLM analysis; or one `provider:model` for every route."
            " `llm_routes_file` and `llm_routes` take precedence."
        ),
    )
    llm_routes_file: Path | None = Field(
        default=None,
        description="A YAML file of LLM deployments, routes and price overrides; wins over `llm_routes`.",
    )
    llm_routes: str | None = Field(
        default=None,
        description=(
            "Routes in one line, `default=openai:gpt-4.1-mini,llama_cpp:smollm2-135m-instruct;"
            "fast=groq:llama-3.1-8b-instant`; wins over `llm`."
        ),
    )
    llama_model_path: Path | None = None
    llama_threads: int | None = Field(default=None, ge=1)
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="The API root of `openai_compat:MODEL` deployments that give no `base_url`.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="The key of `openai_compat` deployments that give no `api_key_env`."
    )
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_max_tokens: int = Field(default=512, ge=16)
    creative_max_candidates: int = Field(
        default=12,
        ge=2,
        le=100,
        description="The most candidates a creative task may ask for (`options.candidates`).",
    )
    creative_judge_route: str = Field(
        default="smart",
        description="The LLM route the creative judge uses when it is capable (its first deployment is not "
        "the embedded model); otherwise candidates are scored by the heuristic rubric (docs/creative.md).",
    )

    ws_send_queue: int = Field(
        default=1000,
        ge=8,
        le=1_000_000,
        description="Messages queued per WebSocket connection; a client that lets it fill is disconnected.",
    )
    ws_ping_interval_seconds: float = Field(
        default=20.0,
        ge=0.05,
        le=3600,
        description="The WebSocket server pings this often; a client silent for two intervals is closed.",
    )
    ws_max_subscriptions: int = Field(
        default=100, ge=1, le=100_000, description="Channels one WebSocket connection may subscribe to."
    )

    # Recall: memory items and their search (docs/recall.md).
    memory_max_item_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest memory item text in UTF-8 bytes; larger ones are refused with 413.",
    )
    embeddings: Literal["auto", "off"] = Field(
        default="auto",
        description="Vector search: `auto` uses the `embeddings` extra when installed; `off`: keyword only.",
    )
    embedding_model_path: Path | None = Field(
        default=None,
        description="A local sentence-transformers model directory instead of the bundled all-MiniLM-L6-v2.",
    )
    memory_context_k: int = Field(
        default=3, ge=0, le=20, description="Memories added to each specialist's evidence (0: none)."
    )

    @field_validator("workspace_roots", "tool_allow_targets", "tool_nameservers", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator(
        "llm_routes_file",
        "llm_routes",
        "mcp_servers_file",
        "agents_dir",
        "tool_ca_file",
        "alert_rules_file",
        "alert_webhook_url",
        "embedding_model_path",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `ORCHESTRION_LLM_ROUTES_FILE=` in a .env file means "not set", not the current directory.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home / 'orchestrion.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """True when the store is SQLite."""
        return self.resolved_database_url.startswith("sqlite")


class ClientSettings(BaseSettings):
    """What the CLI and SDK need to reach a server: options, else environment, else a YAML file.

    The file is `~/.config/orchestrion/client.yaml` (or `ORCHESTRION_CLIENT_CONFIG`) with keys `url`
    and `api_key`.
    """

    model_config = SettingsConfigDict(env_prefix="ORCHESTRION_", extra="ignore")

    url: str | None = None
    api_key: SecretStr | None = None
    client_config: Path = Path("~/.config/orchestrion/client.yaml")

    def resolved(self, *, url: str | None, api_key: str | None) -> tuple[str, str | None]:
        """Merge explicit options over the environment over the file; default URL 127.0.0.1:8000."""
        file_values: dict[str, Any] = {}
        path = self.client_config.expanduser()
        if path.is_file():
            import yaml

            loaded = yaml.safe_load(path.read_text()) or {}
            if isinstance(loaded, dict):
                file_values = loaded
        final_url = url or self.url or file_values.get("url") or "http://127.0.0.1:8000"
        key = (
            api_key
            or (self.api_key.get_secret_value() if self.api_key else None)
            or file_values.get("api_key")
        )
        return str(final_url).rstrip("/"), (str(key) if key else None)
