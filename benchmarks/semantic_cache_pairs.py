"""The labelled requests of the semantic-cache benchmark, and the replayed stream built from them.

Pure data and arithmetic (no model, no cache), so the test suite can check the labels
without the benchmark's dependencies. The file format is described at the top of
`benchmarks/data/semantic_cache_pairs.yaml`.

Every labelled pair lives in scopes of its own (its own course), so no pair can hit an
answer stored for another pair: the benchmark measures, pair by pair, whether the probe
would be served the stored request's answer.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DATA_FILE",
    "KINDS",
    "MOVES",
    "NEAR_MISS_RELATIONS",
    "LabelFileError",
    "LabelledSet",
    "Pair",
    "Placement",
    "Request",
    "StreamRequest",
    "load_labelled_set",
    "replay_stream",
]

DATA_FILE = Path(__file__).parent / "data" / "semantic_cache_pairs.yaml"
KINDS = ("quiz", "summary", "explanation")
NEAR_MISS_RELATIONS = ("negation", "other_request")
MOVES = ("other_lesson", "other_course", "other_kind", "edited_lesson")
"""How a should-hit pair is moved out of its scope, in rotation over the intents."""
_OTHER_KIND = {"quiz": "summary", "summary": "explanation", "explanation": "quiz"}


class LabelFileError(ValueError):
    """The label file is malformed; the message names the entry and what is allowed."""


@dataclass(frozen=True)
class Placement:
    """Where a request is asked: the course, the lesson and the lesson's content version."""

    course: str
    lesson: str
    version: int = 1


@dataclass(frozen=True)
class Request:
    """One generation request as the worker sees it: where, what kind, which words."""

    placement: Placement
    kind: str
    instructions: str


@dataclass(frozen=True)
class Pair:
    """`probe` asked after `stored` was answered; `should_hit` says if it may reuse it."""

    stored: Request
    probe: Request
    relation: str
    """`paraphrase`, a near-miss relation, or a move out of the scope (`MOVES`)."""

    @property
    def should_hit(self) -> bool:
        """Only a paraphrase in the same scope may be served the stored answer."""
        return self.relation == "paraphrase"


@dataclass(frozen=True)
class Intent:
    """One answer, asked for in several words."""

    id: str
    kind: str
    phrasings: tuple[str, ...]


@dataclass(frozen=True)
class NearMiss:
    """Two asks that read alike but want different answers."""

    relation: str
    kind: str
    stored: str
    probe: str


@dataclass(frozen=True)
class LabelledSet:
    """The file's content, checked."""

    intents: tuple[Intent, ...]
    near_misses: tuple[NearMiss, ...]

    def pairs(self) -> list[Pair]:
        """Every labelled pair: paraphrases, moved paraphrases, near misses."""
        numbers = itertools.count(1)
        pairs: list[Pair] = []
        for position, intent in enumerate(self.intents):
            for first, second in itertools.combinations(intent.phrasings, 2):
                home = Placement(f"course-{next(numbers)}", "lesson-a")
                pairs.append(
                    Pair(
                        Request(home, intent.kind, first),
                        Request(home, intent.kind, second),
                        "paraphrase",
                    )
                )
            for move in _moves_for(position):
                # The very same words: only the scope can keep this answer away.
                home = Placement(f"course-{next(numbers)}", "lesson-a")
                stored = Request(home, intent.kind, intent.phrasings[0])
                pairs.append(Pair(stored, _moved(stored, move), move))
        for near_miss in self.near_misses:
            home = Placement(f"course-{next(numbers)}", "lesson-a")
            pairs.append(
                Pair(
                    Request(home, near_miss.kind, near_miss.stored),
                    Request(home, near_miss.kind, near_miss.probe),
                    near_miss.relation,
                )
            )
        return pairs


def _moves_for(position: int) -> tuple[str, str]:
    """Two moves per intent, rotating so each move gets the same share of intents."""
    return MOVES[(2 * position) % len(MOVES)], MOVES[(2 * position + 1) % len(MOVES)]


def _moved(request: Request, move: str) -> Request:
    placement = request.placement
    if move == "other_lesson":
        return replace(request, placement=replace(placement, lesson="lesson-b"))
    if move == "other_course":
        return replace(request, placement=replace(placement, course=f"{placement.course}-b"))
    if move == "edited_lesson":
        return replace(request, placement=replace(placement, version=placement.version + 1))
    return replace(request, kind=_OTHER_KIND[request.kind])


def load_labelled_set(path: Path = DATA_FILE) -> LabelledSet:
    """Read and check the file; `LabelFileError` names the entry that is wrong and why."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise LabelFileError(f"{path}: expected a mapping with `intents` and `near_misses`")
    intents = tuple(_intent(entry, path) for entry in _entries(document, "intents", path))
    ids = [intent.id for intent in intents]
    if len(set(ids)) != len(ids):
        raise LabelFileError(
            f"{path}: intent ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    near_misses = tuple(
        _near_miss(entry, path) for entry in _entries(document, "near_misses", path)
    )
    return LabelledSet(intents, near_misses)


def _entries(document: dict[str, Any], key: str, path: Path) -> list[Any]:
    entries = document.get(key)
    if not isinstance(entries, list) or not entries:
        raise LabelFileError(f"{path}: `{key}` must be a non-empty list")
    return entries


def _only(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    """Unknown keys are mistakes (an unquoted comma in YAML's flow style makes one)."""
    unknown = sorted(map(str, set(entry) - allowed))
    if unknown:
        raise LabelFileError(
            f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}"
            " (quote texts that contain a comma)"
        )


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LabelFileError(f"{where}: `{key}` must be non-empty text, not {value!r}")
    return value


def _kind(entry: dict[str, Any], where: str) -> str:
    kind = entry.get("kind")
    if kind not in KINDS:
        raise LabelFileError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    return str(kind)


def _intent(entry: Any, path: Path) -> Intent:
    where = f"{path}: intent {entry.get('id') if isinstance(entry, dict) else entry!r}"
    if not isinstance(entry, dict):
        raise LabelFileError(f"{where}: expected a mapping")
    _only(entry, {"id", "kind", "phrasings"}, where)
    phrasings = entry.get("phrasings")
    if (
        not isinstance(phrasings, list)
        or len(phrasings) < 2  # noqa: PLR2004 - a paraphrase needs two phrasings
        or not all(isinstance(text, str) and text.strip() for text in phrasings)
        or len(set(phrasings)) != len(phrasings)
    ):
        raise LabelFileError(f"{where}: `phrasings` must list at least 2 different texts")
    return Intent(_text(entry, "id", where), _kind(entry, where), tuple(phrasings))


def _near_miss(entry: Any, path: Path) -> NearMiss:
    where = f"{path}: near miss {entry!r}"
    if not isinstance(entry, dict):
        raise LabelFileError(f"{where}: expected a mapping")
    _only(entry, {"relation", "kind", "stored", "probe"}, where)
    relation = entry.get("relation")
    if relation not in NEAR_MISS_RELATIONS:
        raise LabelFileError(f"{where}: relation must be one of {', '.join(NEAR_MISS_RELATIONS)}")
    stored, probe = _text(entry, "stored", where), _text(entry, "probe", where)
    if stored == probe:
        raise LabelFileError(f"{where}: `stored` and `probe` are the same text")
    return NearMiss(str(relation), _kind(entry, where), stored, probe)


@dataclass(frozen=True)
class StreamRequest:
    """A request of the replayed stream, with the answer it means (`meaning`)."""

    request: Request
    meaning: str
    """Requests of equal meaning (and placement) may share an answer; others may not."""


DEFAULT_SHARE = 0.4
"""Requests sent with no instructions (the learner pressed "generate" and typed nothing)."""
INTENT_SHARE = 0.45
"""Requests phrased as one of the intents, in any of its phrasings; the rest are near misses."""
_DEFAULT_KINDS = {"quiz": 0.5, "summary": 0.3, "explanation": 0.2}
_COURSES = 3
_LESSONS_PER_COURSE = 8


def replay_stream(labelled: LabelledSet, count: int, seed: int = 10) -> list[StreamRequest]:
    """A deterministic, plausible day of requests: repeats, paraphrases and near misses.

    Lessons are chosen by a Zipf law (a few lessons draw most requests, as in any
    course); 40 % of requests carry no instructions, 45 % are one of the intents in
    a random phrasing, 15 % one side of a near miss. Each near-miss text means an answer
    of its own.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible stream, not a secret
    lessons = [
        Placement(f"course-{course}", f"lesson-{lesson}")
        for course in range(1, _COURSES + 1)
        for lesson in range(1, _LESSONS_PER_COURSE + 1)
    ]
    popularity = [1 / rank for rank in range(1, len(lessons) + 1)]
    near_texts = [
        (near.kind, text, f"near-{number}-{side}")
        for number, near in enumerate(labelled.near_misses)
        for side, text in (("stored", near.stored), ("probe", near.probe))
    ]
    return list(
        _draws(
            rng,
            count=count,
            lessons=lessons,
            popularity=popularity,
            intents=labelled.intents,
            near_texts=near_texts,
        )
    )


def _draws(
    rng: random.Random,
    *,
    count: int,
    lessons: list[Placement],
    popularity: list[float],
    intents: tuple[Intent, ...],
    near_texts: list[tuple[str, str, str]],
) -> Iterator[StreamRequest]:
    kinds, kind_weights = list(_DEFAULT_KINDS), list(_DEFAULT_KINDS.values())
    for _ in range(count):
        [placement] = rng.choices(lessons, weights=popularity)
        draw = rng.random()
        if draw < DEFAULT_SHARE:
            [kind] = rng.choices(kinds, weights=kind_weights)
            yield StreamRequest(Request(placement, kind, ""), f"default-{kind}")
        elif draw < DEFAULT_SHARE + INTENT_SHARE:
            intent = rng.choice(intents)
            text = rng.choice(intent.phrasings)
            yield StreamRequest(Request(placement, intent.kind, text), intent.id)
        else:
            kind, text, meaning = rng.choice(near_texts)
            yield StreamRequest(Request(placement, kind, text), meaning)
