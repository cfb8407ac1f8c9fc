"""The semantic cache's decision on labelled request pairs: what it serves, what it refuses.

Two uses, one evaluation:

* as a benchmark suite (`python3 -m uv run --locked --group bench python -m benchmarks
  --only semantic_cache_eval`): all-MiniLM-L6-v2 behind a local OpenAI-compatible
  endpoint, as `benchmarks/semantic_cache.py` runs it;
* as the tuning command for the configured provider (`python -m
  benchmarks.semantic_cache_eval --provider openai`): the embeddings model, size, key and
  base URL come from the environment exactly as the worker reads them (`AISettings`), so
  the recommendation is for the model production runs.

Each labelled pair (`benchmarks/data/semantic_cache_eval.yaml`) is embedded once. For every
candidate decision (the old threshold alone, the structured scope, the negation/number/
entity guard, the full rule verifier and, where the `bench` group is installed, a small
paraphrase model) and every swept threshold it computes the share of same-answer pairs
served (hit rate) and of other-answer pairs served (false positives), per category and
per split. The choice rule is in `services/ai/cache_tuning.py`: it reads the `dev` split
only; `holdout` says whether the choice generalises. The decision the worker is
configured with (its row of the tuning table) and the old single threshold (0.92, no
verifier) are then replayed through the real `SemanticCache` (Qdrant local mode), and
must give the same figures as the arithmetic.

The verifier's cost is timed per call with the process pinned to one core: the worker
pays it once per candidate above the threshold (at most `candidates` per lookup).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from benchmarks.figures import Figure, print_table
from benchmarks.semantic_cache_eval_set import (
    CATEGORIES,
    OTHER_ANSWER,
    SAME_ANSWER,
    SPLITS,
    LabelledPair,
    load_eval_set,
)
from services.ai.cache_tuning import CacheTuning, configured_decision
from services.ai.cache_verifier import VERIFIERS, Verdict
from services.ai.semantic_cache import CacheScope, Embedder, OpenAIEmbedder, SemanticCache
from services.ai.semantic_cache import normalise_request as normalise
from services.ai.settings import PROMPT_VERSION, AISettings
from services.generation_worker.generation import request_text

__all__ = ["GOAL_FALSE_POSITIVE_PCT", "Evaluation", "evaluate", "main", "run"]

GOAL_FALSE_POSITIVE_PCT = 2.0
"""At most this share of other-answer pairs served (and no negation at all)."""
HIT_RATE_SLACK = 0.05
"""The chosen threshold is the highest within this fraction of the best hit rate."""
SWEEP = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.92, 0.95)
OLD_THRESHOLD = 0.92
"""The single threshold the cache decided by before verification: the reference."""
PARAPHRASE_THRESHOLDS = (0.90, 0.95)
_BATCH = 256
_TIE = 1e-4
_REPEATS = 3
_PERCENT = 100.0
_P99 = 99
_DEPLOYABLE = frozenset(VERIFIERS)
"""Verifiers the worker can run (no model, no onnxruntime)."""


@dataclass(frozen=True)
class Rates:
    """Shares (%) of one split's pairs served, at one setting."""

    hit_rate: float
    false_positive_rate: float
    negation_rate: float
    by_category: dict[str, float]
    pairs: int

    def meets_goal(self) -> bool:
        """At most 2 % false positives and no negation served."""
        return self.false_positive_rate <= GOAL_FALSE_POSITIVE_PCT and self.negation_rate == 0


@dataclass(frozen=True)
class Setting:
    """One candidate decision at one threshold, on both splits."""

    verifier: str
    threshold: float
    dev: Rates
    holdout: Rates


@dataclass
class Evaluation:
    """Everything the evaluation measured, and its recommendation."""

    embedding_model: str
    dimensions: int
    settings: list[Setting]
    verifier_ms: dict[str, list[float]]
    recommended: Setting | None
    best_by_verifier: dict[str, Setting] = field(default_factory=dict)
    cosines: list[float] = field(default_factory=list)
    """Each pair's cosine, in the order of the labelled set."""
    verdicts: dict[str, list[bool]] = field(default_factory=dict)
    """Each candidate's verdict on each pair."""

    def served(self, setting: Setting) -> list[bool]:
        """Which pairs `setting` serves from the cache."""
        return [
            accepted and cosine >= setting.threshold
            for accepted, cosine in zip(self.verdicts[setting.verifier], self.cosines, strict=True)
        ]

    def at(self, verifier: str, threshold: float) -> Setting:
        """The setting measured for this verifier and threshold."""
        return next(
            s
            for s in self.settings
            if s.verifier == verifier and abs(s.threshold - threshold) < 1e-9  # noqa: PLR2004
        )


Verify = Callable[[str, str], Verdict]


def _texts(pair: LabelledPair) -> tuple[str, str]:
    """What the worker hands the cache for the two requests (normalised as it stores them)."""
    return (
        normalise(request_text(pair.kind, pair.stored)),
        normalise(request_text(pair.kind, pair.probe)),
    )


async def _embed_all(embedder: Embedder, texts: Sequence[str]) -> dict[str, list[float]]:
    vectors: dict[str, list[float]] = {}
    for start in range(0, len(texts), _BATCH):
        batch = list(texts[start : start + _BATCH])
        vectors.update(zip(batch, await embedder.embed(batch), strict=True))
    return vectors


def _cosine(first: list[float], second: list[float]) -> float:
    return sum(a * b for a, b in zip(first, second, strict=True))


@contextlib.contextmanager
def _one_core() -> Iterator[None]:
    """Pin this process to one CPU while timing (where the platform allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _verdicts(
    pairs: list[LabelledPair], candidates: dict[str, Verify]
) -> tuple[dict[str, list[bool]], dict[str, list[float]]]:
    """Each candidate's verdict on each pair, and the time (ms) of each call on one core.

    A rule verifier's call takes a fraction of a millisecond, less than a context switch
    on this shared machine: each pair is timed `_REPEATS` times and the fastest kept, the
    call's own cost. The paraphrase model (milliseconds per call) is timed once.
    """
    verdicts: dict[str, list[bool]] = {}
    timings: dict[str, list[float]] = {}
    with _one_core():
        for name, verify in candidates.items():
            verify("quiz: questions", "quiz: qeustions")  # loads dictionaries or models
            repeats = _REPEATS if name in _DEPLOYABLE else 1
            accepted, spent = [], []
            for pair in pairs:
                stored, probe = _texts(pair)
                calls = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    verdict = verify(stored, probe)
                    calls.append((time.perf_counter() - started) * 1000)
                accepted.append(verdict.same_answer)
                spent.append(min(calls))
            verdicts[name], timings[name] = accepted, spent
    return verdicts, timings


def _rates(pairs: list[LabelledPair], served: list[bool], split: str) -> Rates:
    by_category: dict[str, float] = {}
    counted: dict[str, list[bool]] = {category: [] for category in CATEGORIES}
    for pair, hit in zip(pairs, served, strict=True):
        if pair.split == split:
            counted[pair.category].append(hit)
    for category, hits in counted.items():
        if hits:
            by_category[category] = round(_PERCENT * sum(hits) / len(hits), 1)

    def share(categories: Sequence[str]) -> float:
        hits = [hit for category in categories for hit in counted[category]]
        return _PERCENT * sum(hits) / len(hits) if hits else 0.0

    return Rates(
        hit_rate=share(SAME_ANSWER),
        false_positive_rate=share(OTHER_ANSWER),
        negation_rate=share(["negation"]),
        by_category=by_category,
        pairs=sum(len(hits) for hits in counted.values()),
    )


def _choose(settings: list[Setting]) -> Setting | None:
    """The tuning rule of `services/ai/cache_tuning.py`, on the dev split."""
    qualifying = [s for s in settings if s.dev.meets_goal()]
    if not qualifying:
        return None
    best = max(s.dev.hit_rate for s in qualifying)
    near_best = [s for s in qualifying if s.dev.hit_rate >= (1 - HIT_RATE_SLACK) * best]
    # The most hits; among near-equals a verifier the worker can run, then the
    # highest threshold.
    top = max(s.dev.hit_rate for s in near_best)
    leaders = {s.verifier for s in near_best if s.dev.hit_rate == top}
    deployable = sorted(leaders & _DEPLOYABLE) or sorted(leaders)
    chosen_verifier = deployable[0]
    return max((s for s in near_best if s.verifier == chosen_verifier), key=lambda s: s.threshold)


def evaluate_vectors(
    pairs: list[LabelledPair],
    vectors: dict[str, list[float]],
    candidates: dict[str, Verify],
    thresholds: Sequence[float],
    *,
    embedding_model: str,
    dimensions: int,
) -> Evaluation:
    """The sweep of every candidate over `thresholds`, and the recommendation."""
    cosines = [_cosine(vectors[a], vectors[b]) for a, b in map(_texts, pairs)]
    verdicts, timings = _verdicts(pairs, candidates)
    settings = []
    for name, accepted in verdicts.items():
        for threshold in thresholds:
            served = [ok and cos >= threshold for ok, cos in zip(accepted, cosines, strict=True)]
            settings.append(
                Setting(
                    name,
                    threshold,
                    _rates(pairs, served, "dev"),
                    _rates(pairs, served, "holdout"),
                )
            )
    best = {
        name: chosen
        for name in candidates
        if (chosen := _choose([s for s in settings if s.verifier == name])) is not None
    }
    return Evaluation(
        embedding_model=embedding_model,
        dimensions=dimensions,
        settings=settings,
        verifier_ms=timings,
        recommended=_choose(settings),
        best_by_verifier=best,
        cosines=cosines,
        verdicts=verdicts,
    )


def _candidates(with_model: bool) -> dict[str, Verify]:
    """The decisions compared: the worker's verifiers, and the paraphrase model if installed."""
    candidates: dict[str, Verify] = {name: v.verify for name, v in VERIFIERS.items()}
    if with_model:
        try:
            from benchmarks.paraphrase_model import (  # noqa: PLC0415 - bench group only
                ParaphraseModel,
                ParaphraseVerifier,
            )
        except ModuleNotFoundError as missing:
            print(f"paraphrase model skipped ({missing.name} is not installed)", file=sys.stderr)
            return candidates
        model = ParaphraseModel()
        for threshold in PARAPHRASE_THRESHOLDS:
            verifier = ParaphraseVerifier(model, threshold)
            candidates[verifier.name] = verifier.verify
    return candidates


async def evaluate(
    embedder: Embedder,
    *,
    embedding_model: str,
    dimensions: int,
    with_model: bool = True,
    thresholds: Sequence[float] = SWEEP,
) -> tuple[Evaluation, list[LabelledPair], dict[str, list[float]]]:
    """Embed the labelled pairs with `embedder` and evaluate every candidate on them."""
    pairs = load_eval_set()
    texts = sorted({text for pair in pairs for text in _texts(pair)})
    vectors = await _embed_all(embedder, texts)
    evaluation = evaluate_vectors(
        pairs,
        vectors,
        _candidates(with_model),
        thresholds,
        embedding_model=embedding_model,
        dimensions=dimensions,
    )
    return evaluation, pairs, vectors


# --- through the real cache ----------------------------------------------------------------


class _KnownVectors:
    """An `Embedder` answering from vectors already fetched (one API pass is enough)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self._vectors = vectors

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._vectors[text] for text in texts]


async def replay_through_cache(
    pairs: list[LabelledPair],
    vectors: dict[str, list[float]],
    *,
    threshold: float,
    verifier: str,
    dimensions: int,
) -> tuple[list[bool], SemanticCache]:
    """Store each pair's first request in a scope of its own, look the second one up."""
    qdrant = AsyncQdrantClient(location=":memory:")
    try:
        cache = SemanticCache(
            qdrant,
            _KnownVectors(vectors),
            threshold=threshold,
            verifier=VERIFIERS[verifier],
            dimensions=dimensions,
            collection=f"eval_{verifier}_{threshold:.2f}".replace(".", "_"),
        )
        served = []
        for number, pair in enumerate(pairs):
            scope = CacheScope(
                f"course-{number}", "lesson", "hash", pair.kind, PROMPT_VERSION, "model"
            )
            await cache.store(scope, request_text(pair.kind, pair.stored), f"answer {number}")
            answer = await cache.lookup(scope, request_text(pair.kind, pair.probe))
            if answer not in (None, f"answer {number}"):
                raise AssertionError(f"pair {number} was served another pair's answer")
            served.append(answer is not None)
        if cache.errors:
            raise RuntimeError("the cache bypassed a call (see the warnings): no figure")
    finally:
        await qdrant.close()
    return served, cache


# --- reporting -------------------------------------------------------------------------------


def _percentile(samples: list[float], percent: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(percent / _PERCENT * (len(ordered) - 1)))]


def _line(setting: Setting, timings: list[float] | None, mark: str = "") -> str:
    cost = (
        f"{statistics.median(timings):>7.2f}{_percentile(timings, _P99):>7.2f}"
        if timings
        else f"{'':>14}"
    )
    dev, hold = setting.dev, setting.holdout
    return (
        f"{setting.verifier:<26}{setting.threshold:>6.2f}"
        f"{dev.hit_rate:>8.1f}{dev.false_positive_rate:>7.1f}{dev.negation_rate:>6.1f}"
        f"{hold.hit_rate:>9.1f}{hold.false_positive_rate:>6.1f}{hold.negation_rate:>6.1f}"
        f"{cost}  {mark}"
    )


def report(evaluation: Evaluation, configured: tuple[float, str]) -> str:
    """The comparison of candidates, and the per-category rates of the decisions that matter."""
    header = (
        f"{'decision':<26}{'thr':>6}{'dev hit':>8}{'FP':>7}{'neg':>6}"
        f"{'hold hit':>9}{'FP':>6}{'neg':>6}{'p50 ms':>7}{'p99':>7}"
    )
    lines = [
        (
            f"semantic cache decision on labelled pairs, {evaluation.embedding_model}"
            f" ({evaluation.dimensions} dimensions); % of pairs served; goal: FP <="
            f" {GOAL_FALSE_POSITIVE_PCT:g} % and no negation, on dev"
        ),
        header,
        "-" * len(header),
    ]
    old = evaluation.at("threshold_only", OLD_THRESHOLD)
    lines.append(_line(old, None, "the old decision"))
    for name, setting in evaluation.best_by_verifier.items():
        mark = "recommended" if setting == evaluation.recommended else "best of its kind"
        lines.append(_line(setting, evaluation.verifier_ms.get(name), mark))
    lines.extend(
        f"{name:<26} meets the goal at no threshold swept"
        for name in evaluation.verifier_ms
        if name not in evaluation.best_by_verifier
    )
    threshold, verifier = configured
    shown = [("old decision", old), ("configured", evaluation.at(verifier, threshold))]
    if evaluation.recommended is not None:
        shown.append(("recommended", evaluation.recommended))
    lines.append("")
    lines.append("per category (% served; dev / holdout):")
    lines.append(f"{'category':<12}" + "".join(f"{title:>24}" for title, _ in shown))
    for category in CATEGORIES:
        cells = "".join(
            f"{s.dev.by_category.get(category, 0):>15.1f} /"
            f" {s.holdout.by_category.get(category, 0):>5.1f}"
            for _, s in shown
        )
        lines.append(f"{category:<12}{cells}")
    lines.append("")
    for title, setting in shown:
        lines.append(f"{title}: {setting.verifier} at {setting.threshold:.2f}")
    return "\n".join(lines)


def tuning_row(evaluation: Evaluation, measured_on: str) -> CacheTuning | None:
    """The recommendation as a row of `services/ai/cache_tuning.py`'s table."""
    chosen = evaluation.recommended
    if chosen is None or chosen.verifier not in _DEPLOYABLE:
        return None
    return CacheTuning(
        embedding_model=evaluation.embedding_model,
        threshold=chosen.threshold,
        verifier=chosen.verifier,
        measured_on=measured_on,
        dimensions=evaluation.dimensions,
        evidence=(
            f"dev ({chosen.dev.pairs} pairs): {chosen.dev.hit_rate:.1f} % of the same-answer"
            f" pairs served, {chosen.dev.false_positive_rate:.1f} % of the other-answer pairs"
            f" (negations {chosen.dev.negation_rate:.0f} %); holdout ({chosen.holdout.pairs}"
            f" pairs): {chosen.holdout.hit_rate:.1f} % served,"
            f" {chosen.holdout.false_positive_rate:.1f} % false positives"
            f" (negations {chosen.holdout.negation_rate:.0f} %)"
        ),
    )


def _figures(
    evaluation: Evaluation, configured: Setting, old: Setting, replayed: dict[str, int]
) -> list[Figure]:
    figures = []
    for split in SPLITS:
        now, before = getattr(configured, split), getattr(old, split)
        extra: dict[str, float | str] = {
            "threshold": configured.threshold,
            "verifier": configured.verifier,
            "pairs": now.pairs,
            **{f"{c}_pct": v for c, v in now.by_category.items() if c in SAME_ANSWER},
        }
        figures += [
            Figure(
                f"semantic_cache_eval_old_hit_rate_{split}",
                f"{split}: same answer served, old 0.92 only",
                before.hit_rate,
                "%",
            ),
            Figure(
                f"semantic_cache_eval_hit_rate_{split}",
                f"{split}: same answer served, configured",
                now.hit_rate,
                "%",
                reference=f"semantic_cache_eval_old_hit_rate_{split}",
                extra=extra,
            ),
            Figure(
                f"semantic_cache_eval_old_false_positive_rate_{split}",
                f"{split}: other answer served, old 0.92 only",
                before.false_positive_rate,
                "%",
                extra={f"{c}_pct": v for c, v in before.by_category.items() if c in OTHER_ANSWER},
            ),
            Figure(
                f"semantic_cache_eval_false_positive_rate_{split}",
                f"{split}: other answer served, configured",
                now.false_positive_rate,
                "%",
                reference=f"semantic_cache_eval_old_false_positive_rate_{split}",
                extra={
                    **{f"{c}_pct": v for c, v in now.by_category.items() if c in OTHER_ANSWER},
                    "negation_pct": now.negation_rate,
                },
            ),
        ]
    rules = evaluation.verifier_ms.get(configured.verifier, [])
    if rules:
        figures.append(
            Figure(
                "semantic_cache_verifier_ms",
                f"one {configured.verifier} verification, 1 core (best of {_REPEATS})",
                statistics.median(rules),
                "ms",
                p50_ms=statistics.median(rules),
                p99_ms=_percentile(rules, _P99),
                extra={"calls": len(rules), **{k: float(v) for k, v in replayed.items()}},
            )
        )
    for name, timings in evaluation.verifier_ms.items():
        if name.startswith("paraphrase_model"):
            figures.append(
                Figure(
                    "semantic_cache_paraphrase_model_ms",
                    "one paraphrase-model verification, 1 core",
                    statistics.median(timings),
                    "ms",
                    p50_ms=statistics.median(timings),
                    p99_ms=_percentile(timings, _P99),
                )
            )
            break
    return figures


# --- running it -------------------------------------------------------------------------------


async def _run(settings: AISettings, client: AsyncOpenAI, *, with_model: bool) -> dict[str, Any]:
    embedder = OpenAIEmbedder(
        client, model=settings.embedding_model, dimensions=settings.embedding_dimensions
    )
    threshold, verifier, _ = configured_decision(settings)
    evaluation, pairs, vectors = await evaluate(
        embedder,
        embedding_model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        with_model=with_model,
        thresholds=sorted({*SWEEP, threshold}),
    )
    configured = evaluation.at(verifier.name, threshold)
    old = evaluation.at("threshold_only", OLD_THRESHOLD)
    # The same decisions through the real cache must give the same figures.
    replayed: dict[str, int] = {}
    for setting in (configured, old):
        served, cache = await replay_through_cache(
            pairs,
            vectors,
            threshold=setting.threshold,
            verifier=setting.verifier,
            dimensions=settings.embedding_dimensions,
        )
        # Qdrant scores in float32: a cosine equal to the threshold may land either side.
        differing = [
            pair
            for pair, got, want, cosine in zip(
                pairs, served, evaluation.served(setting), evaluation.cosines, strict=True
            )
            if got != want and abs(cosine - setting.threshold) > _TIE
        ]
        if differing:
            raise AssertionError(
                f"{setting.verifier} at {setting.threshold}: the cache served other pairs"
                f" than the evaluation computed, e.g. {differing[0]}"
            )
        if setting is configured:
            replayed = {"cache_hits": cache.hits, "cache_rejections": cache.rejections}
    return {
        "evaluation": evaluation,
        "configured": configured,
        "old": old,
        "replayed": replayed,
    }


def _quiet_logs() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def run(quick: bool) -> list[Figure]:
    """The benchmark suite: all-MiniLM-L6-v2 behind a local endpoint (bench group)."""
    del quick  # the whole set takes about a minute; there is nothing to shorten
    _quiet_logs()
    try:
        from benchmarks.embeddings_server import EmbeddingsServer  # noqa: PLC0415
        from benchmarks.minilm import DIMENSIONS, MODEL_NAME, MiniLM  # noqa: PLC0415
    except ModuleNotFoundError as missing:
        raise ModuleNotFoundError(
            f"the semantic_cache_eval suite needs the bench dependency group ({missing.name}"
            " is not installed): python3 -m uv run --locked --group bench python -m benchmarks",
            name=missing.name,
        ) from missing
    model = MiniLM()
    with EmbeddingsServer(model.encode, model=MODEL_NAME, dimensions=DIMENSIONS) as server:
        settings = AISettings.from_env(
            {
                **os.environ,
                "OPENAI_API_KEY": "benchmark",
                "OPENAI_BASE_URL": server.base_url,
                "OPENAI_EMBEDDING_MODEL": MODEL_NAME,
                "OPENAI_EMBEDDING_DIMENSIONS": str(DIMENSIONS),
            }
        )
        outcome = asyncio.run(_with_client(settings, with_model=True))
    evaluation: Evaluation = outcome["evaluation"]
    configured: Setting = outcome["configured"]
    print(report(evaluation, (configured.threshold, configured.verifier)), file=sys.stderr)
    return _figures(evaluation, configured, outcome["old"], outcome["replayed"])


async def _with_client(settings: AISettings, *, with_model: bool) -> dict[str, Any]:
    async with AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        max_retries=2,
        timeout=60,
    ) as client:
        return await _run(settings, client, with_model=with_model)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.semantic_cache_eval`: evaluate and recommend for a provider."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.semantic_cache_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--provider",
        choices=["openai", "local"],
        default="openai",
        help="openai: the embeddings the environment configures (OPENAI_API_KEY,"
        " OPENAI_BASE_URL, OPENAI_EMBEDDING_MODEL, OPENAI_EMBEDDING_DIMENSIONS), as the"
        " worker reads them; local: all-MiniLM-L6-v2 (needs the bench group)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the outcome as JSON")
    parser.add_argument(
        "--no-model", action="store_true", help="leave the paraphrase model out of the comparison"
    )
    args = parser.parse_args(argv)
    _quiet_logs()
    if args.provider == "local":
        figures = run(quick=False)
        print_table(figures)
        return 0
    settings = AISettings.from_env(os.environ)
    if settings.openai_api_key is None:
        print("OPENAI_API_KEY is not set: nothing to evaluate against", file=sys.stderr)
        return 2
    outcome = asyncio.run(_with_client(settings, with_model=not args.no_model))
    evaluation: Evaluation = outcome["evaluation"]
    configured: Setting = outcome["configured"]
    print(report(evaluation, (configured.threshold, configured.verifier)))
    print_table(_figures(evaluation, configured, outcome["old"], outcome["replayed"]))
    row = tuning_row(evaluation, datetime.now(UTC).date().isoformat())
    if row is None:
        print(
            "\nno deployable setting meets the goal on this model: keep the cache's rows as"
            " they are and report it"
        )
    else:
        print(
            f"\nrecommended for {row.embedding_model}: SEMANTIC_CACHE_THRESHOLD={row.threshold:.2f}"
            f" SEMANTIC_CACHE_VERIFIER={row.verifier}\nrow for services/ai/cache_tuning.py:"
            f"\n{row!r}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "embedding_model": evaluation.embedding_model,
                    "dimensions": evaluation.dimensions,
                    "recommended": asdict(row) if row else None,
                    "configured": asdict(configured),
                    "old": asdict(outcome["old"]),
                    "candidates": {
                        name: asdict(setting)
                        for name, setting in evaluation.best_by_verifier.items()
                    },
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
