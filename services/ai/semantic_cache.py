"""The semantic cache of LLM answers: a paraphrased request gets the answer already paid for.

Two parts decide a hit. The scope (`CacheScope`) must match exactly, as a Qdrant
must-filter on every one of its fields: an answer is reused only for the same course,
lesson, lesson content (its hash), kind of answer, prompt version and model. So one course
never sees another's answer, and an edited lesson, a new prompt or another model is never
served an old one. Within the scope the request text is compared in two stages: the
stored requests whose embeddings reach a cosine similarity of `threshold` are candidates
(the nearest `candidates` of them), and a `Verifier` (`cache_verifier`) decides whether a
candidate wants the same answer. Embeddings alone cannot tell "10 questions" from "5
questions" or "with X" from "without X"; the verifier compares exactly what decides an
answer, and when it is unsure the lookup is a miss. The first accepted candidate is a hit.

Counted for the operator: hits; misses, which include the lookups whose candidates the
verifier all rejected (`rejections`, by the nearest candidate's reason, so a team can see
the false-positive guard at work) and near-misses (no candidate, but a best score within
`near_miss_margin` below the threshold: where a threshold set too strict loses
rewordings).

The cache is an optimisation, never a dependency: any failure of the embedder or of Qdrant
in `lookup`, `store` or `invalidate` is logged, counted in `errors`, and the caller goes on
as on a miss. A cache outage never fails a job. Each call is also bounded by
`timeout_seconds`, so a hung cache cannot stall one either.

Entries expire after `ttl_seconds`; expired points are filtered out at lookup and deleted
by `purge_expired`, which a periodic task should call (Qdrant has no TTL of its own).
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from typing import Any, Protocol

import structlog
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient, models

from services.ai.cache_verifier import REASONS, RuleVerifier, Verifier

__all__ = [
    "CacheScope",
    "CacheStats",
    "Embedder",
    "OpenAIEmbedder",
    "SemanticCache",
    "normalise_request",
]

_log = structlog.get_logger("eduscale.ai.semantic_cache")
_POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://eduscale/semantic-cache")
_TENANT_FIELD = "course_id"


class Embedder(Protocol):
    """Turns texts into vectors of one fixed size, one per text, in order."""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts` (one call, one vector per text)."""
        ...


class OpenAIEmbedder:
    """An `Embedder` over an OpenAI-compatible embeddings endpoint."""

    def __init__(self, client: AsyncOpenAI, *, model: str, dimensions: int) -> None:
        self.client = client
        self.model = model
        self.dimensions = dimensions

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """All texts in one batched request; vectors come back in input order."""
        response = await self.client.embeddings.create(
            model=self.model, input=texts, dimensions=self.dimensions
        )
        ordered = sorted(response.data, key=lambda item: item.index)
        if len(ordered) != len(texts):
            raise ValueError(f"{len(texts)} texts sent, {len(ordered)} embeddings received")
        return [list(item.embedding) for item in ordered]


@dataclass(frozen=True)
class CacheScope:
    """The exact-match part of a cache key: every field must be equal for a hit."""

    course_id: str
    """The tenant: one course never gets another's answer."""
    lesson_id: str
    lesson_hash: str
    """The lesson's content version: an edited lesson never reuses an answer."""
    kind: str
    """quiz, summary or explanation."""
    prompt_version: str
    """Bumped with the prompts: answers of older prompts are never served."""
    model: str
    """The chat model that wrote the answer."""


_SCOPE_FIELDS = tuple(field.name for field in fields(CacheScope))


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was created. `misses` includes near-misses and rejections."""

    hits: int
    misses: int
    near_misses: int
    errors: int
    stores: int
    rejections: int = 0
    """Lookups with candidates the verifier all turned down (each one a wrong answer kept away)."""


def normalise_request(text: str) -> str:
    """The form a request is embedded and keyed in: case and spacing never matter."""
    return " ".join(text.split()).casefold()


class SemanticCache:
    """LLM answers in a Qdrant collection, found by scope and by meaning of the request."""

    def __init__(
        self,
        qdrant: AsyncQdrantClient,
        embedder: Embedder,
        *,
        collection: str = "semantic_cache",
        threshold: float = 0.92,
        near_miss_margin: float = 0.05,
        ttl_seconds: int = 86400,
        dimensions: int = 256,
        timeout_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        verifier: Verifier | None = None,
        candidates: int = 4,
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        if not 0 <= near_miss_margin < threshold:
            raise ValueError(f"near_miss_margin must be in [0, threshold), not {near_miss_margin}")
        if ttl_seconds <= 0 or dimensions <= 0 or timeout_seconds <= 0 or candidates <= 0:
            raise ValueError(
                "ttl_seconds, dimensions, timeout_seconds and candidates must be positive"
            )
        self._qdrant = qdrant
        self._embedder = embedder
        self.collection = collection
        self.threshold = threshold
        self.near_miss_margin = near_miss_margin
        self.ttl_seconds = ttl_seconds
        self.dimensions = dimensions
        self._timeout = timeout_seconds
        self._clock = clock
        self.verifier: Verifier = verifier or RuleVerifier()
        self.candidates = candidates
        self._ready = False
        self.hits = 0
        self.misses = 0
        self.near_misses = 0
        self.errors = 0
        self.stores = 0
        self.rejections = 0
        self._rejected_for = dict.fromkeys(REASONS, 0)

    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        return CacheStats(
            self.hits, self.misses, self.near_misses, self.errors, self.stores, self.rejections
        )

    def rejections_by_reason(self) -> dict[str, int]:
        """Rejected lookups by the reason given for the nearest candidate (every reason listed)."""
        return dict(self._rejected_for)

    async def ensure_collection(self) -> bool:
        """Create the collection (and, on a server, its indexes) unless it exists.

        Idempotent and safe to race with other workers. Never raises: with Qdrant down it
        logs, counts an error and returns False, and `lookup`/`store` try again later, so
        a worker starts (without a cache) rather than crash-looping on an optional part.
        """
        try:
            async with asyncio.timeout(self._timeout):
                await self._ensure()
        except Exception as error:  # noqa: BLE001 - an optional part must not stop the worker
            self._bypass("ensure_collection", error)
            return False
        return True

    async def lookup(self, scope: CacheScope, request_text: str) -> str | None:
        """The cached answer for a request of the same meaning in the same scope, or None."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._lookup(scope, normalise_request(request_text))
        except Exception as error:  # noqa: BLE001 - a cache outage must never fail the job
            self._bypass("lookup", error)
            return None

    async def store(self, scope: CacheScope, request_text: str, answer: str) -> None:
        """Keep `answer` for `ttl_seconds`; the same request stored again replaces it."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._store(scope, normalise_request(request_text), answer)
        except Exception as error:  # noqa: BLE001 - a cache outage must never fail the job
            self._bypass("store", error)

    async def invalidate(self, scope: CacheScope) -> None:
        """Drop every answer of `scope`, e.g. when a cached one turned out unusable.

        All paraphrases go, not only one: the bad answer may be stored under any of them.
        """
        try:
            async with asyncio.timeout(self._timeout):
                await self._ensure()
                await self._qdrant.delete(
                    self.collection,
                    points_selector=models.FilterSelector(filter=_scope_filter(scope)),
                )
        except Exception as error:  # noqa: BLE001 - a cache outage must never fail the job
            self._bypass("invalidate", error)

    async def purge_expired(self) -> None:
        """Delete expired entries; for a periodic task, so it raises on failure."""
        await self._ensure()
        expired = models.FieldCondition(key="expires_at", range=models.Range(lte=self._clock()))
        await self._qdrant.delete(
            self.collection,
            points_selector=models.FilterSelector(filter=models.Filter(must=[expired])),
        )

    # --- the work, each step raising on failure --------------------------------------

    async def _ensure(self) -> None:
        if self._ready:
            return
        if await self._qdrant.collection_exists(self.collection):
            await self._check_size()
        else:
            try:
                await self._qdrant.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(
                        size=self.dimensions, distance=models.Distance.COSINE
                    ),
                )
            except Exception:
                # Another worker may have created it first; only then is this fine.
                if not await self._qdrant.collection_exists(self.collection):
                    raise
                await self._check_size()
        if not _is_local(self._qdrant):
            await self._create_indexes()
        self._ready = True

    async def _check_size(self) -> None:
        info = await self._qdrant.get_collection(self.collection)
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        if size != self.dimensions:
            # Vectors of another size (or model) are not comparable; serving them would be
            # wrong, and deleting them would fight workers still on the old setting.
            raise ValueError(
                f"collection {self.collection!r} holds vectors of size {size}, not"
                f" {self.dimensions}: use a new collection name for the new embeddings"
            )

    async def _create_indexes(self) -> None:
        # Local mode ignores payload indexes and warns, so this runs on a server only.
        for name in _SCOPE_FIELDS:
            await self._qdrant.create_payload_index(
                self.collection,
                name,
                field_schema=models.KeywordIndexParams(
                    type=models.KeywordIndexType.KEYWORD, is_tenant=name == _TENANT_FIELD
                ),
            )
        await self._qdrant.create_payload_index(
            self.collection, "expires_at", field_schema=models.PayloadSchemaType.FLOAT
        )

    async def _embed(self, text: str) -> list[float]:
        try:
            [vector] = await self._embedder.embed([text])
        except Exception as error:
            raise _EmbeddingFailed from error
        if len(vector) != self.dimensions:
            raise ValueError(
                f"the embedder returned {len(vector)} dimensions, not {self.dimensions}"
            )
        return vector

    async def _lookup(self, scope: CacheScope, text: str) -> str | None:
        await self._ensure()
        vector = await self._embed(text)
        alive = models.FieldCondition(key="expires_at", range=models.Range(gt=self._clock()))
        query_filter = models.Filter(must=[*_conditions(scope), alive])
        response = await self._qdrant.query_points(
            self.collection,
            query=vector,
            query_filter=query_filter,
            limit=self.candidates,
            with_payload=True,
        )
        best = response.points[0] if response.points else None
        rejected: list[tuple[float, str]] = []
        for point in response.points:  # nearest first
            payload = point.payload or {}
            answer, stored = payload.get("answer"), payload.get("request")
            if point.score < self.threshold:
                break
            if not isinstance(answer, str) or not isinstance(stored, str):
                continue
            verdict = self.verifier.verify(stored, text)
            if verdict.same_answer:
                self.hits += 1
                _log.debug("semantic_cache_hit", kind=scope.kind, score=round(point.score, 4))
                return answer
            rejected.append((point.score, verdict.reason))
        self.misses += 1
        if rejected:
            score, reason = rejected[0]
            self.rejections += 1
            self._rejected_for[reason] = self._rejected_for.get(reason, 0) + 1
            _log.info(
                "semantic_cache_rejected",
                kind=scope.kind,
                score=round(score, 4),
                reason=reason,
                candidates=len(rejected),
                verifier=self.verifier.name,
            )
        elif best is not None and best.score >= self.threshold - self.near_miss_margin:
            self.near_misses += 1
            _log.info(
                "semantic_cache_near_miss",
                kind=scope.kind,
                score=round(best.score, 4),
                threshold=self.threshold,
            )
        return None

    async def _store(self, scope: CacheScope, text: str, answer: str) -> None:
        await self._ensure()
        vector = await self._embed(text)
        now = self._clock()
        payload: dict[str, Any] = {
            **dict(zip(_SCOPE_FIELDS, astuple(scope), strict=True)),
            "request": text,
            "answer": answer,
            "created_at": now,
            "expires_at": now + self.ttl_seconds,
        }
        key = "\x1f".join([*astuple(scope), text])
        point = models.PointStruct(
            id=str(uuid.uuid5(_POINT_NAMESPACE, key)), vector=vector, payload=payload
        )
        await self._qdrant.upsert(self.collection, points=[point])
        self.stores += 1

    def _bypass(self, operation: str, error: Exception) -> None:
        self.errors += 1
        if isinstance(error, _EmbeddingFailed) and error.__cause__ is not None:
            cause: BaseException = error.__cause__
            source = "embedder"
        else:
            # Qdrant, or a timeout of either: the collection may have gone with the server,
            # so the next call checks it again. Embedder failures leave Qdrant alone.
            cause = error
            source = "timeout" if isinstance(error, TimeoutError) else "qdrant"
            self._ready = False
        _log.warning(
            "semantic_cache_bypassed",
            operation=operation,
            source=source,
            error=type(cause).__name__,
            detail=str(cause)[:200],
        )


class _EmbeddingFailed(Exception):
    """Marks a failure as the embedder's, not Qdrant's."""


def _conditions(scope: CacheScope) -> list[models.Condition]:
    return [
        models.FieldCondition(key=name, match=models.MatchValue(value=value))
        for name, value in zip(_SCOPE_FIELDS, astuple(scope), strict=True)
    ]


def _scope_filter(scope: CacheScope) -> models.Filter:
    return models.Filter(must=_conditions(scope))


def _is_local(qdrant: AsyncQdrantClient) -> bool:
    """Whether the client runs Qdrant in-process (`:memory:` or `path=`), not a server."""
    options = qdrant.init_options
    return options.get("location") == ":memory:" or options.get("path") is not None
