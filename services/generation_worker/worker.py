"""`eduscale worker generation`: the generation worker as a process.

Around the shared worker runtime it adds the semantic cache (one collection per
embedding model and size, purged of expired answers in the background) and the course
index the prompts are grounded in. The cache's threshold and verifier are the embedding
model's tuned ones (`cache_tuning`). Its hits, misses, near-misses and verifier rejections
(in total and by reason) are what an operator watches the decision by, so they are served
on the health port's /metrics and logged with every purge round.
"""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict

import structlog

from contracts.platform_metrics import SEMANTIC_CACHE_LOOKUPS, CacheResult
from contracts.topics import GENERATION_REQUESTED
from services.ai.cache_tuning import configured_decision
from services.ai.embedding_cache import CachedEmbedder
from services.ai.semantic_cache import OpenAIEmbedder, SemanticCache
from services.ai.settings import AISettings
from services.ai.worker_context import WorkerContext, run_worker, worker_settings
from services.generation_worker.handler import GenerationHandler
from services.generation_worker.settings import GenerationWorkerSettings
from services.indexing.vector_index import CourseIndex
from services.runtime.metrics import observe_at_scrape
from services.runtime.worker import WorkerHandler, run_forever

__all__ = [
    "cache_collection",
    "cache_counters",
    "cache_lookups",
    "main",
    "run_generation_worker",
    "worker_settings",
]

_log = structlog.get_logger("eduscale.ai.worker")
_PURGE_EVERY_SECONDS = 600.0


def cache_collection(settings: AISettings) -> str:
    """The semantic cache's collection, named for its embeddings.

    Vectors of two embedding models (or sizes) are not comparable, so changing either
    starts a new, empty collection instead of matching against the old vectors.
    """
    model = re.sub(r"[^a-z0-9]+", "_", settings.embedding_model.lower()).strip("_")
    return f"semantic_cache_{model}_{settings.embedding_dimensions}"


def cache_counters(cache: SemanticCache) -> dict[str, float]:
    """The cache's counters as Prometheus metric names.

    `misses` includes near-misses and rejections; `rejections_<reason>` splits the
    rejections by what differed (every reason is listed, zeros included).
    """
    return {
        **{
            f"eduscale_semantic_cache_{name}_total": value
            for name, value in asdict(cache.stats()).items()
        },
        **{
            f"eduscale_semantic_cache_rejections_{reason}_total": count
            for reason, count in cache.rejections_by_reason().items()
        },
    }


def cache_lookups(cache: SemanticCache) -> list[tuple[tuple[str, ...], float]]:
    """Lookups by result, as `eduscale_semantic_cache_lookups` labels them.

    The three add up to every lookup: `near_miss` is a lookup that came close (a
    candidate the verifier refused, or a best score just under the threshold), `miss`
    the rest of the misses.
    """
    stats = cache.stats()
    near = stats.near_misses + stats.rejections
    return [
        ((CacheResult.HIT,), stats.hits),
        ((CacheResult.MISS,), stats.misses - near),
        ((CacheResult.NEAR_MISS,), near),
    ]


async def _purge_periodically(cache: SemanticCache, every: float) -> None:
    """Delete expired answers; lookups already ignore them, this reclaims the space."""
    while True:
        _log.info("semantic_cache_stats", **asdict(cache.stats()))
        try:
            await cache.purge_expired()
        except Exception as error:  # noqa: BLE001 - Qdrant down: try again next round
            _log.warning("semantic_cache_purge_failed", error=repr(error))
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def _generation_handler(context: WorkerContext) -> AsyncIterator[WorkerHandler]:
    ai = context.ai
    threshold, verifier, tuning = configured_decision(ai)
    if tuning.measured_on is None:
        _log.warning(
            "semantic_cache_untuned",
            embedding_model=ai.embedding_model,
            threshold=threshold,
            verifier=verifier.name,
            advice="measure it: python -m benchmarks.semantic_cache_eval --provider openai",
        )
    cache = SemanticCache(
        context.qdrant,
        CachedEmbedder(
            OpenAIEmbedder(
                context.client, model=ai.embedding_model, dimensions=ai.embedding_dimensions
            )
        ),
        threshold=threshold,
        verifier=verifier,
        ttl_seconds=ai.cache_ttl_seconds,
        dimensions=ai.embedding_dimensions,
        collection=cache_collection(ai),
    )
    await asyncio.to_thread(verifier.warm)
    await cache.ensure_collection()
    context.counters.append(lambda: cache_counters(cache))
    stop_observing = observe_at_scrape(SEMANTIC_CACHE_LOOKUPS, lambda: cache_lookups(cache))
    grounding = OpenAIEmbedder(
        context.client, model=ai.embedding_model, dimensions=ai.layout["vector_size"]
    )
    index = CourseIndex(context.qdrant, ai.layout, on_server=bool(ai.qdrant_url))
    purge = asyncio.create_task(_purge_periodically(cache, _PURGE_EVERY_SECONDS))
    try:
        yield GenerationHandler(
            context.resources.databases,
            context.client,
            context.breakers,
            cache,
            ai,
            index=index,
            grounding=grounding,
            events=context.events,
        )
    finally:
        stop_observing()
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge


async def run_generation_worker(environ: Mapping[str, str], stop: asyncio.Event) -> None:
    """Consume `generation.requested` until `stop` is set.

    Jobs of one course (the message key) may run side by side: each job is its own row
    and its own draft quiz, and two answers stored for one cache scope are both valid.
    """
    await run_worker(
        environ,
        stop,
        name="generation-worker",
        topic=GENERATION_REQUESTED.name,
        handler_factory=_generation_handler,
        settings_class=GenerationWorkerSettings,
    )


def main() -> None:
    """Run until SIGTERM/SIGINT."""
    run_forever(run_generation_worker)
