"""How well the semantic cache tells a paraphrase from a near miss, and what it saves.

The cache runs as in the generation worker: `SemanticCache` built from `AISettings` with
the embedding model's tuned threshold and verifier (`services/ai/cache_tuning.py`;
`SEMANTIC_CACHE_THRESHOLD`, `SEMANTIC_CACHE_VERIFIER` and the rest read from the
environment, as a pod reads them; the sweep below varies the threshold, the verifier stays),
scopes and request texts made by the worker's own helpers (`lesson_hash`,
`request_text`), Qdrant in local mode, and embeddings fetched by the real `openai` client
from an OpenAI-compatible `/v1/embeddings` endpoint. Only the model differs from
production: a real all-MiniLM-L6-v2 (`benchmarks/minilm.py`, installed from PyPI)
behind a local server (`benchmarks/embeddings_server.py`), instead of
text-embedding-3-small. Cosine scales differ between models, so the threshold sweep
below is what says whether the configured threshold suits the model in use.

Measured:
- on the labelled pairs (`benchmarks/data/semantic_cache_pairs.yaml`): the hit rate
  (paraphrases served the stored answer) and the false-positive rate (near misses and
  requests of another scope served it), at the configured threshold and at a few others;
- on a replayed stream of requests (repeats, paraphrases, near misses, Zipf-popular
  lessons): the chat completions needed without a cache, with an exact-text cache and
  with the semantic cache, and how many answers the semantic cache served for a request
  that meant something else;
- the latency of one embeddings request and of one cache lookup.

Usage: `python3 -m uv run --locked --group bench python -m benchmarks --only semantic_cache`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from benchmarks.embeddings_server import EmbeddingsServer
from benchmarks.figures import Figure
from benchmarks.semantic_cache_pairs import (
    MOVES,
    NEAR_MISS_RELATIONS,
    LabelledSet,
    Pair,
    Request,
    load_labelled_set,
    replay_stream,
)
from services.ai.cache_tuning import configured_decision
from services.ai.semantic_cache import (
    CacheScope,
    OpenAIEmbedder,
    SemanticCache,
    normalise_request,
)
from services.ai.settings import PROMPT_VERSION, AISettings
from services.generation_worker.generation import lesson_hash, request_text
from services.generation_worker.worker import cache_collection

try:
    from benchmarks.minilm import DIMENSIONS, MODEL_NAME, MiniLM
except ModuleNotFoundError as missing:  # the runner's default command lacks the group
    raise ModuleNotFoundError(
        f"the semantic_cache suite needs the bench dependency group ({missing.name} is not"
        " installed): python3 -m uv run --locked --group bench python -m benchmarks",
        name=missing.name,
    ) from missing

__all__ = ["run"]

SWEEP = (0.60, 0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96)
QUICK_SWEEP = (0.70, 0.85, 0.92, 0.96)
STREAM_REQUESTS = 800
QUICK_STREAM_REQUESTS = 150
SHOULD_HIT = ("paraphrase",)
SAME_SCOPE_NEAR_MISSES = NEAR_MISS_RELATIONS
_PERCENT = 100.0
_P99 = 99


def run(quick: bool) -> list[Figure]:
    """Measure on the labelled pairs and on the replayed stream; see the module doc."""
    # The cache logs every hit and near miss; a benchmark keeps its warnings only, on
    # stderr, so the table on stdout stays readable.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    return asyncio.run(_measure(quick))


class _TimedEmbedder:
    """The production `OpenAIEmbedder`, timing each embeddings request it makes."""

    def __init__(self, inner: OpenAIEmbedder) -> None:
        self._inner = inner
        self.samples_ms: list[float] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        started = time.perf_counter()
        vectors = await self._inner.embed(texts)
        self.samples_ms.append((time.perf_counter() - started) * 1000)
        return vectors


@dataclass(frozen=True)
class _Bench:
    """What every measurement shares: Qdrant, the embedder and the worker's settings."""

    qdrant: AsyncQdrantClient
    embedder: _TimedEmbedder
    settings: AISettings

    def cache(self, threshold: float, collection: str) -> SemanticCache:
        """Built as `worker_process` builds it, but for the threshold under test."""
        return SemanticCache(
            self.qdrant,
            self.embedder,
            threshold=threshold,
            verifier=configured_decision(self.settings)[1],
            ttl_seconds=self.settings.cache_ttl_seconds,
            dimensions=self.settings.embedding_dimensions,
            collection=f"{cache_collection(self.settings)}_{collection}",
        )

    def scope(self, request: Request) -> CacheScope:
        """The scope the worker would build for this request's job and lesson."""
        placement = request.placement
        title = f"{placement.lesson} of {placement.course}"
        body = f"The text of {title}, as edited {placement.version} time(s)."
        return CacheScope(
            course_id=placement.course,
            lesson_id=placement.lesson,
            lesson_hash=lesson_hash(title, body),
            kind=request.kind,
            prompt_version=PROMPT_VERSION,
            model=self.settings.openai_model,
        )


def _text(request: Request) -> str:
    """The text the worker hands the cache (which embeds its normalised form)."""
    return request_text(request.kind, request.instructions)


@dataclass
class _SweepPoint:
    threshold: float
    totals: Counter[str]
    hits: Counter[str] = field(default_factory=Counter)
    """Probes served the stored answer, by relation."""

    def rate(self, relations: Iterable[str]) -> float:
        """The share (%) of these relations' pairs served the stored answer."""
        relations = list(relations)
        asked = sum(self.totals[relation] for relation in relations)
        return _PERCENT * sum(self.hits[relation] for relation in relations) / asked

    @property
    def must_not(self) -> list[str]:
        return sorted(set(self.totals) - set(SHOULD_HIT))

    @property
    def hit_rate(self) -> float:
        return self.rate(SHOULD_HIT)

    @property
    def false_positive_rate(self) -> float:
        return self.rate(self.must_not)


@dataclass(frozen=True)
class _Replay:
    threshold: float
    requests: int
    chat_calls: int
    exact_match_calls: int
    wrong_answers: int

    def avoided(self, calls: int | None = None) -> float:
        """The share (%) of requests answered without a chat completion."""
        needed = self.chat_calls if calls is None else calls
        return _PERCENT * (self.requests - needed) / self.requests


def _settings(base_url: str) -> AISettings:
    """The worker's settings from this environment, pointed at the local model."""
    return AISettings.from_env(
        {
            **os.environ,
            "OPENAI_API_KEY": "benchmark",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_EMBEDDING_MODEL": MODEL_NAME,
            "OPENAI_EMBEDDING_DIMENSIONS": str(DIMENSIONS),
        }
    )


async def _sweep(
    bench: _Bench, pairs: list[Pair], thresholds: Sequence[float]
) -> tuple[list[_SweepPoint], list[float], list[float]]:
    """Store each pair's first request, then ask its probe at every threshold.

    All thresholds read the same stored points, so they differ only in the decision.
    Returns the sweep, and the latencies (ms) of the lookups at the configured threshold
    and of the embeddings requests those lookups made (same moment, same load).
    """
    configured = configured_decision(bench.settings)[0]
    store = bench.cache(configured, "pairs")
    for number, pair in enumerate(pairs):
        await store.store(bench.scope(pair.stored), _text(pair.stored), f"answer {number}")
    totals = Counter(pair.relation for pair in pairs)
    points, lookup_ms, embed_ms = [], [], []
    for threshold in thresholds:
        cache = bench.cache(threshold, "pairs")
        embeds_before = len(bench.embedder.samples_ms)
        point = _SweepPoint(threshold, totals)
        for number, pair in enumerate(pairs):
            started = time.perf_counter()
            answer = await cache.lookup(bench.scope(pair.probe), _text(pair.probe))
            if threshold == configured:
                lookup_ms.append((time.perf_counter() - started) * 1000)
            if answer is not None:
                if answer != f"answer {number}":
                    raise AssertionError(f"pair {number} was served another pair's answer")
                point.hits[pair.relation] += 1
        if cache.errors or store.errors:
            raise RuntimeError("the cache bypassed a call (see the warnings): no figure")
        if threshold == configured:
            embed_ms = bench.embedder.samples_ms[embeds_before:]
        points.append(point)
    return points, lookup_ms, embed_ms


async def _cosines(bench: _Bench, pairs: list[Pair]) -> dict[str, list[float]]:
    """The cosine of each pair's two texts as the cache's embedder sees them, by relation."""
    texts = sorted(
        {normalise_request(_text(r)) for pair in pairs for r in (pair.stored, pair.probe)}
    )
    vectors = dict(zip(texts, await bench.embedder.embed(texts), strict=True))
    by_relation: dict[str, list[float]] = {}
    for pair in pairs:
        first = vectors[normalise_request(_text(pair.stored))]
        second = vectors[normalise_request(_text(pair.probe))]
        cosine = sum(a * b for a, b in zip(first, second, strict=True))
        by_relation.setdefault(pair.relation, []).append(cosine)
    return by_relation


async def _replay(bench: _Bench, labelled: LabelledSet, count: int, threshold: float) -> _Replay:
    """Serve the stream as the worker would: look up, and on a miss call the model, store."""
    cache = bench.cache(threshold, f"replay_{threshold:.2f}")
    chat_calls, wrong, seen = 0, 0, set()
    for item in replay_stream(labelled, count):
        scope, text = bench.scope(item.request), _text(item.request)
        seen.add((scope, normalise_request(text)))
        cached = await cache.lookup(scope, text)
        if cached is None:
            chat_calls += 1  # the chat completion the worker would make
            await cache.store(scope, text, json.dumps({"meaning": item.meaning}))
        elif json.loads(cached)["meaning"] != item.meaning:
            wrong += 1
    if cache.errors:
        raise RuntimeError("the cache bypassed a call (see the warnings): no figure")
    return _Replay(threshold, count, chat_calls, len(seen), wrong)


def _percentile(samples: list[float], percent: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(percent / _PERCENT * (len(ordered) - 1)))]


def _balanced(points: list[_SweepPoint]) -> _SweepPoint:
    """The swept threshold with the largest hit rate minus false-positive rate.

    It weighs a wrong answer served like a paraphrase missed, which flatters a low
    threshold: it is a reference point for the sweep, not a recommendation.
    """
    return max(points, key=lambda p: (p.hit_rate - p.false_positive_rate, p.threshold))


async def _measure(quick: bool) -> list[Figure]:
    labelled = load_labelled_set()
    pairs = labelled.pairs()
    print(f"loading {MODEL_NAME} (int8 ONNX) ...", file=sys.stderr, flush=True)
    model = MiniLM()
    with EmbeddingsServer(model.encode, model=MODEL_NAME, dimensions=DIMENSIONS) as server:
        settings = _settings(server.base_url)
        configured = configured_decision(settings)[0]
        thresholds = sorted({*(QUICK_SWEEP if quick else SWEEP), configured})
        count = QUICK_STREAM_REQUESTS if quick else STREAM_REQUESTS
        async with AsyncOpenAI(
            base_url=server.base_url, api_key="benchmark", max_retries=0, timeout=30
        ) as client:
            embedder = _TimedEmbedder(
                OpenAIEmbedder(
                    client, model=settings.embedding_model, dimensions=settings.embedding_dimensions
                )
            )
            bench = _Bench(AsyncQdrantClient(location=":memory:"), embedder, settings)
            try:
                points, lookup_ms, embed_ms = await _sweep(bench, pairs, thresholds)
                cosines = await _cosines(bench, pairs)
                balanced = _balanced(points)
                replays = [await _replay(bench, labelled, count, configured)]
                if balanced.threshold != configured:
                    replays.append(await _replay(bench, labelled, count, balanced.threshold))
            finally:
                await bench.qdrant.close()
        if not server.requests:
            raise RuntimeError("no request reached the embeddings endpoint")
    at_configured = next(p for p in points if p.threshold == configured)
    _print_sweep(points, at_configured, balanced)
    return [
        *_pair_figures(points, at_configured, balanced, cosines),
        *_replay_figures(replays),
        *_latency_figures(embed_ms, lookup_ms),
    ]


def _print_sweep(points: list[_SweepPoint], configured: _SweepPoint, balanced: _SweepPoint) -> None:
    columns = [*SHOULD_HIT, *configured.must_not]
    lines = [
        "semantic cache threshold sweep (% of labelled pairs served the stored answer)",
        f"{'threshold':>10}" + "".join(f"{c:>15}" for c in columns) + f"{'all must-not':>15}",
    ]
    for point in points:
        mark = " configured" if point is configured else ""
        mark += " balanced" if point is balanced else ""
        cells = "".join(f"{point.rate([c]):>15.1f}" for c in columns)
        lines.append(f"{point.threshold:>10.2f}{cells}{point.false_positive_rate:>15.1f}{mark}")
    lines.append(f"pairs: {dict(configured.totals)}")
    print("\n".join(lines), file=sys.stderr)


def _pair_figures(
    points: list[_SweepPoint],
    at_configured: _SweepPoint,
    balanced: _SweepPoint,
    cosines: dict[str, list[float]],
) -> list[Figure]:
    threshold = at_configured.threshold
    paraphrases = cosines["paraphrase"]
    near = [score for relation in SAME_SCOPE_NEAR_MISSES for score in cosines[relation]]
    moved = [score for relation in MOVES for score in cosines[relation]]
    # How often a paraphrase scores above a same-scope near miss (the ROC AUC): 100 %
    # means some threshold separates them all, 50 % that the score cannot tell them apart.
    above = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in paraphrases for n in near)
    hit_extra: dict[str, float | str] = {
        "threshold": threshold,
        "pairs": at_configured.totals["paraphrase"],
        "paraphrase_cosine_median": round(statistics.median(paraphrases), 3),
        "paraphrase_cosine_min": round(min(paraphrases), 3),
        "paraphrase_above_near_miss_pct": round(
            _PERCENT * above / (len(paraphrases) * len(near)), 1
        ),
        # The lowest threshold that lets no same-scope near miss through, and what it keeps.
        "zero_fp_threshold": round(max(near) + 0.001, 3),
        "hit_rate_at_zero_fp_threshold": round(
            _PERCENT * sum(p > max(near) for p in paraphrases) / len(paraphrases), 1
        ),
        "balanced_threshold": balanced.threshold,
        **{f"hit_rate_at_{p.threshold:.2f}": round(p.hit_rate, 1) for p in points},
    }
    fp_extra: dict[str, float | str] = {
        "threshold": threshold,
        "pairs": sum(at_configured.totals[r] for r in at_configured.must_not),
        **{f"{r}_rate": round(at_configured.rate([r]), 1) for r in at_configured.must_not},
        **{
            f"{r}_cosine_median": round(statistics.median(cosines[r]), 3)
            for r in SAME_SCOPE_NEAR_MISSES
        },
        "near_miss_cosine_max": round(max(near), 3),
        # The same words asked in another lesson, course, kind or lesson version: what the
        # words alone would have served had the scope filter not kept the answer away.
        "moved_scope_over_threshold_by_words": round(
            _PERCENT * sum(s >= threshold for s in moved) / len(moved), 1
        ),
        **{f"fp_rate_at_{p.threshold:.2f}": round(p.false_positive_rate, 1) for p in points},
    }
    return [
        Figure(
            "semantic_cache_hit_rate",
            f"semantic cache: paraphrases hit (>= {threshold:.2f})",
            at_configured.hit_rate,
            "%",
            extra=hit_extra,
        ),
        Figure(
            "semantic_cache_false_positive_rate",
            f"semantic cache: must-not pairs hit (>= {threshold:.2f})",
            at_configured.false_positive_rate,
            "%",
            extra=fp_extra,
        ),
    ]


def _replay_figures(replays: list[_Replay]) -> list[Figure]:
    replay = replays[0]
    extra: dict[str, float | str] = {
        "threshold": replay.threshold,
        "requests": replay.requests,
        "wrong_answers_served": replay.wrong_answers,
        "exact_match_avoided_pct": round(replay.avoided(replay.exact_match_calls), 1),
    }
    for other in replays[1:]:
        extra[f"avoided_pct_at_{other.threshold:.2f}"] = round(other.avoided(), 1)
        extra[f"wrong_answers_at_{other.threshold:.2f}"] = other.wrong_answers
    without = "semantic_cache_chat_calls_without_cache"
    return [
        Figure(without, "replayed stream: chat calls without a cache", replay.requests, "calls"),
        Figure(
            "semantic_cache_chat_calls_exact_match",
            "replayed stream: chat calls, exact-text cache",
            replay.exact_match_calls,
            "calls",
            reference=without,
        ),
        Figure(
            "semantic_cache_chat_calls_with_cache",
            "replayed stream: chat calls, semantic cache",
            replay.chat_calls,
            "calls",
            reference=without,
        ),
        Figure(
            "semantic_cache_chat_calls_avoided",
            "replayed stream: chat calls avoided",
            replay.avoided(),
            "%",
            extra=extra,
        ),
    ]


def _latency_figures(embed_ms: list[float], lookup_ms: list[float]) -> list[Figure]:
    embedding = "semantic_cache_embedding_ms"
    return [
        Figure(
            embedding,
            f"one /v1/embeddings request ({MODEL_NAME})",
            statistics.median(embed_ms),
            "ms",
            p50_ms=statistics.median(embed_ms),
            p99_ms=_percentile(embed_ms, _P99),
        ),
        Figure(
            "semantic_cache_lookup_ms",
            "one cache lookup (embedding + Qdrant local)",
            statistics.median(lookup_ms),
            "ms",
            reference=embedding,
            p50_ms=statistics.median(lookup_ms),
            p99_ms=_percentile(lookup_ms, _P99),
        ),
    ]
