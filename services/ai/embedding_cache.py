"""Embeddings of recently seen texts, kept in memory so the same text is embedded once.

The semantic cache embeds a job's request text twice (lookup, then store), and most jobs
of one kind share that text (no instructions: "quiz: default"). Each embedding is a
provider call (money, latency, and on a worker with many jobs in flight most of its CPU
per job), yet a model maps a text to the same vector every time. So the vectors of the
last `size` distinct texts are kept (least recently used out first, as float32 to keep a
process's share small), and concurrent requests for a text not yet known share one call.
A failed call is not kept: the next request asks again.
"""

import asyncio
from array import array
from collections import OrderedDict

from services.ai.semantic_cache import Embedder

__all__ = ["CachedEmbedder"]


class CachedEmbedder:
    """An `Embedder` that asks the wrapped one only for texts it has not embedded lately."""

    def __init__(self, embedder: Embedder, *, size: int = 1024) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self._embedder = embedder
        self._size = size
        self._vectors: OrderedDict[str, array[float]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self.calls = 0
        """Calls made to the wrapped embedder."""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order; one call (at most) for the texts not known."""
        unknown = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        waits = {self._pending[text] for text in unknown if text in self._pending}
        mine = [text for text in unknown if text not in self._pending]
        if mine:
            await self._fetch(mine)
        if waits:  # other callers' calls: their error is ours; if cancelled, we ask
            await asyncio.wait(waits)
            for wait in waits:
                if not wait.cancelled() and (error := wait.exception()) is not None:
                    raise error
        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:  # a cancelled call, or evicted meanwhile (over `size` texts in flight)
            await self._fetch(missing)
        vectors = []
        for text in texts:
            self._vectors.move_to_end(text)
            vectors.append(self._vectors[text].tolist())
        return vectors

    async def _fetch(self, texts: list[str]) -> None:
        call: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        call.add_done_callback(_retrieved)
        for text in texts:
            self._pending[text] = call
        try:
            self.calls += 1
            vectors = await self._embedder.embed(texts)
            for text, vector in zip(texts, vectors, strict=True):
                self._keep(text, vector)
            call.set_result(None)
        except Exception as error:
            call.set_exception(error)
            raise
        except BaseException:  # cancelled: the waiters ask again themselves
            call.cancel()
            raise
        finally:
            for text in texts:
                if self._pending.get(text) is call:
                    del self._pending[text]

    def _keep(self, text: str, vector: list[float]) -> None:
        self._vectors[text] = array("f", vector)
        self._vectors.move_to_end(text)
        while len(self._vectors) > self._size:
            self._vectors.popitem(last=False)


def _retrieved(call: "asyncio.Future[None]") -> None:
    """Mark a failed call's error as seen: its waiters (if any) raise it themselves."""
    if not call.cancelled():
        call.exception()
