"""The semantic cache's threshold and verifier, chosen per embedding model by measurement.

Cosine scales differ from one embedding model to the next (a paraphrase scores 0.95 with
one model and 0.75 with another), so one threshold cannot serve them all. Each row of
`TUNED` records what the evaluation (`python -m benchmarks.semantic_cache_eval`, on the
labelled pairs of `benchmarks/data/semantic_cache_eval.yaml`) chose for one model, when,
and the figures it measured, so a reviewer can see why a number is what it is.

The worker looks its row up by `OPENAI_EMBEDDING_MODEL`. `SEMANTIC_CACHE_THRESHOLD` and
`SEMANTIC_CACHE_VERIFIER` override a row (e.g. right after re-tuning, before the new row
is merged). A model without a row gets `UNTUNED`: the rule verifier with a cautious
threshold, and a warning at start-up that says how to tune it.

How a row is chosen: every verifier is swept over thresholds on the `dev` split; a setting
qualifies when at most 2 % of the pairs that need another answer are served (and no
negation at all); among qualifying settings the one with the most same-answer pairs
served wins, at the highest threshold within 5 % of that best hit rate (a lower threshold
shows the verifier candidates it was measured less on). The `holdout` split, never used
for choosing, then says whether the choice generalises.
"""

from dataclasses import dataclass

from services.ai.cache_verifier import Verifier, verifier_named
from services.ai.settings import AISettings

__all__ = ["TUNED", "UNTUNED", "CacheTuning", "configured_decision", "tuning_for"]


@dataclass(frozen=True)
class CacheTuning:
    """One embedding model's cache decision, and the evidence for it."""

    embedding_model: str
    threshold: float
    """Cosine similarity from which a stored request is a candidate for the verifier."""
    verifier: str
    """A name in `services.ai.cache_verifier.VERIFIERS`."""
    measured_on: str | None
    """The date of the evaluation run (ISO); None when the row is not measured."""
    dimensions: int | None = None
    """The vector size the evaluation used."""
    evidence: str = ""
    """The figures the evaluation printed for this choice (or why there are none)."""


TUNED: dict[str, CacheTuning] = {
    tuning.embedding_model: tuning
    for tuning in (
        CacheTuning(
            embedding_model="all-MiniLM-L6-v2",
            threshold=0.60,
            verifier="rules",
            measured_on="2026-12-05",
            dimensions=384,
            evidence=(
                "dev: 82.1 % of the same-answer pairs served, 0.0 % of the other-answer"
                " pairs (negations 0 %); holdout: 65.7 % served, 0.0 % false positives."
                " The old decision (0.92, no verifier) on the same run: dev 42.0 % / 25.8 %"
                " (negations 80 %), holdout 38.6 % / 18.8 %. Every threshold from 0.50 to"
                " 0.95 gives 0 % false positives with the rules; 0.60 is the highest within"
                " 5 % of the best hit rate (0.50: 85.7 %)."
            ),
        ),
        CacheTuning(
            embedding_model="text-embedding-3-small",
            threshold=0.80,
            verifier="rules",
            measured_on=None,
            dimensions=256,
            evidence=(
                "not measured: the evaluation needs the OpenAI API, which the machine that"
                " tuned the other rows cannot reach. The rule verifier decides every hit (0"
                " false positives on both splits with all-MiniLM-L6-v2 at any threshold"
                " from 0.5 up), so the threshold only trades hits; 0.80 is a cautious guess"
                " for this model's paraphrase cosines. Re-tune: python -m"
                " benchmarks.semantic_cache_eval --provider openai"
            ),
        ),
    )
}
"""The measured (or knowingly provisional) decision per embedding model."""

UNTUNED = CacheTuning(
    embedding_model="",
    threshold=0.90,
    verifier="rules",
    measured_on=None,
    evidence="no row for this embedding model: the rule verifier and a cautious threshold",
)


def tuning_for(embedding_model: str) -> CacheTuning:
    """The model's row, or `UNTUNED`."""
    return TUNED.get(embedding_model, UNTUNED)


def configured_decision(settings: AISettings) -> tuple[float, Verifier, CacheTuning]:
    """The threshold and verifier the worker runs: the model's row, then the overrides."""
    tuning = tuning_for(settings.embedding_model)
    threshold = settings.cache_threshold or tuning.threshold
    verifier = verifier_named(settings.cache_verifier or tuning.verifier)
    return threshold, verifier, tuning
