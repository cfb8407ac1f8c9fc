"""The semantic cache's second stage: does a similar stored request really want this answer?

Embeddings find the stored requests nearest in meaning; they cannot be trusted to decide.
"Ten questions" and "five questions", "with calculus" and "without calculus" embed
almost alike (cosine 0.95 with all-MiniLM-L6-v2), and no threshold keeps them apart
while still serving rewordings. So a candidate above the threshold is only served when a
verifier agrees that the two requests want the same answer.

`RuleVerifier` parses both requests (`request_parser`) and compares, field by field, what
decides an answer: the structured scope (question count, difficulty, format, audience,
language), what is turned down ("not", "without"), the other numbers, word order around
"than"/"into", and every remaining concept (the topic, names, the part of the lesson).
Any difference is a rejection with the field as its reason. It fails safe: a word it does
not know must appear in both requests, a request too long to parse is a rejection, and so
is any error. A rejected rewording costs one model call; a wrong answer served would
teach the wrong thing.

`ThresholdOnly` accepts everything: the decision before verification, kept as the
benchmark's reference.
"""

from dataclasses import dataclass, fields
from typing import Protocol

import structlog

from services.ai.request_parser import ParsedRequest, RequestTooLong, load_words, parse_pair

__all__ = [
    "CHECKS",
    "REASONS",
    "VERIFIERS",
    "RuleVerifier",
    "ThresholdOnly",
    "Verdict",
    "Verifier",
    "verifier_named",
]

_log = structlog.get_logger("eduscale.ai.cache_verifier")

CHECKS = tuple(field.name for field in fields(ParsedRequest) if field.name != "kind")
"""The fields compared, in order; the first that differs is the rejection's reason."""
REASONS = (*CHECKS, "kind", "unsure")
"""Every reason a verifier gives for a rejection (`unsure`: it could not parse a request)."""


@dataclass(frozen=True)
class Verdict:
    """A verifier's decision on one candidate; `reason` names what differs when rejected."""

    same_answer: bool
    reason: str = ""


class Verifier(Protocol):
    """Decides whether a stored request's answer may serve a new request."""

    name: str
    """How the tuning table and the metrics name it."""

    def verify(self, stored: str, probe: str) -> Verdict:
        """Both are normalised request texts (`kind: instructions`), in the same scope."""
        ...

    def warm(self) -> None:
        """Load what the first `verify` would (blocking; call it in a thread at start-up)."""
        ...


class ThresholdOnly:
    """No second stage: the embedding threshold alone decides (the old behaviour)."""

    name = "threshold_only"

    def verify(self, stored: str, probe: str) -> Verdict:
        """Always the same answer."""
        del stored, probe
        return Verdict(same_answer=True)

    def warm(self) -> None:
        """Nothing to load."""


class RuleVerifier:
    """Same answer only when every checked field of the two parsed requests is equal."""

    def __init__(self, checks: tuple[str, ...] = CHECKS, name: str = "rules") -> None:
        unknown = sorted(set(checks) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; known: {', '.join(CHECKS)}")
        self.checks = checks
        self.name = name

    def warm(self) -> None:
        """Load the English dictionary the typo check reads (about 0.3 s, once per process)."""
        load_words()

    def verify(self, stored: str, probe: str) -> Verdict:
        """The first differing field is the reason; anything unexpected is a rejection."""
        try:
            first, second = parse_pair(stored, probe)
        except RequestTooLong:
            return Verdict(same_answer=False, reason="unsure")
        except Exception as error:  # noqa: BLE001 - fail safe: a parser bug is a miss, not a crash
            _log.warning("cache_verifier_failed", error=repr(error))
            return Verdict(same_answer=False, reason="unsure")
        if first.kind != second.kind:
            return Verdict(same_answer=False, reason="kind")
        for check in self.checks:
            if getattr(first, check) != getattr(second, check):
                return Verdict(same_answer=False, reason=check)
        return Verdict(same_answer=True)


_SCOPE_CHECKS = ("question_count", "difficulty", "format", "audience", "language")
_GUARD_CHECKS = ("negation", "number", "wording")

VERIFIERS: dict[str, Verifier] = {
    "rules": RuleVerifier(),
    "scope": RuleVerifier(_SCOPE_CHECKS, name="scope"),
    "guard": RuleVerifier(_GUARD_CHECKS, name="guard"),
    "threshold_only": ThresholdOnly(),
}
"""The verifiers a worker can run, by name: all of them need no model and no network.

`rules` is the full comparison; `scope` only the structured fields and `guard` only the
negation, number and entity/wording checks, kept so the benchmark can show what each
part contributes.
"""


def verifier_named(name: str) -> Verifier:
    """The verifier of that name (`ValueError` lists the known ones)."""
    try:
        return VERIFIERS[name]
    except KeyError:
        raise ValueError(
            f"unknown cache verifier {name!r}; known: {', '.join(sorted(VERIFIERS))}"
        ) from None
