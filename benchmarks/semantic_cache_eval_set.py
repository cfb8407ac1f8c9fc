"""The labelled request pairs the semantic cache's decision is evaluated and tuned on.

Pure data (no model, no cache), so the test suite checks the labels without the
benchmark's dependencies. The file and its two splits are described at the top of
`benchmarks/data/semantic_cache_eval.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.semantic_cache_pairs import KINDS, LabelFileError

__all__ = [
    "CATEGORIES",
    "EVAL_FILE",
    "OTHER_ANSWER",
    "SAME_ANSWER",
    "SPLITS",
    "LabelledPair",
    "load_eval_set",
]

EVAL_FILE = Path(__file__).parent / "data" / "semantic_cache_eval.yaml"
SAME_ANSWER = ("rewording", "typos", "word_order", "synonyms", "politeness")
"""The probe asks for the stored answer in other words: it should be served from the cache."""
OTHER_ANSWER = (
    "negation",
    "numbers",
    "entities",
    "antonyms",
    "audience",
    "format",
    "language",
    "scope",
)
"""The probe reads alike but needs another answer: serving the stored one is a false positive."""
CATEGORIES = (*SAME_ANSWER, *OTHER_ANSWER)
SPLITS = ("dev", "holdout")
"""`dev` is what rules may be written against; `holdout` is only read as totals."""


@dataclass(frozen=True)
class LabelledPair:
    """Two requests for the same lesson and kind; `probe` is asked after `stored`."""

    split: str
    category: str
    kind: str
    stored: str
    probe: str

    @property
    def same_answer(self) -> bool:
        """Whether the probe may be served the stored request's answer."""
        return self.category in SAME_ANSWER


def load_eval_set(path: Path = EVAL_FILE) -> list[LabelledPair]:
    """Every pair of the file, checked; `LabelFileError` names what is wrong and where."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or set(document) != set(SPLITS):
        raise LabelFileError(f"{path}: expected exactly the splits {', '.join(SPLITS)}")
    pairs = [pair for split in SPLITS for pair in _split(document[split], split, path)]
    seen: set[tuple[str, str, str]] = set()
    for pair in pairs:
        key = (pair.kind, pair.stored, pair.probe)
        if key in seen:
            raise LabelFileError(f"{path}: the pair {key} is listed twice")
        seen.add(key)
    return pairs


def _mapping(value: Any, allowed: Iterable[str], where: str) -> dict[str, Any]:
    allowed = tuple(allowed)
    if not isinstance(value, dict):
        raise LabelFileError(f"{where}: expected a mapping with keys from {', '.join(allowed)}")
    unknown = sorted(map(str, set(value) - set(allowed)))
    if unknown:
        raise LabelFileError(f"{where}: unknown keys {unknown}; allowed: {', '.join(allowed)}")
    return value


def _split(value: Any, split: str, path: Path) -> list[LabelledPair]:
    pairs: list[LabelledPair] = []
    for category, kinds in _mapping(value, CATEGORIES, f"{path}: {split}").items():
        where = f"{path}: {split}.{category}"
        for kind, entries in _mapping(kinds, KINDS, where).items():
            if not isinstance(entries, list) or not entries:
                raise LabelFileError(f"{where}.{kind}: expected a non-empty list of pairs")
            pairs.extend(_pair(entry, split, category, kind, where) for entry in entries)
    return pairs


def _pair(entry: Any, split: str, category: str, kind: str, where: str) -> LabelledPair:
    if (
        not isinstance(entry, list)
        or len(entry) != 2  # noqa: PLR2004 - a pair
        or not all(isinstance(text, str) for text in entry)
    ):
        raise LabelFileError(
            f"{where}.{kind}: {entry!r} is not a pair of texts [stored, probe]"
            " (quote texts that contain a comma)"
        )
    stored, probe = entry
    if " ".join(stored.split()).casefold() == " ".join(probe.split()).casefold():
        raise LabelFileError(f"{where}.{kind}: {entry!r} asks the same text twice")
    return LabelledPair(split, category, kind, stored, probe)
