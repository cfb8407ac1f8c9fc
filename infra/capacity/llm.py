"""The monthly LLM bill: tokens per kind of work x the dated per-token price table.

Usage-priced, unlike the infrastructure (sized for the peak, billed all month): tokens
follow the average rate, so the peak rates are brought back to the busy-hour average
(/ `peak_factor`) and counted over the busy hours of the active days of a month. Per
generation job: the semantic-cache lookup is embedded every time; the share the cache
answers (the benchmark's measured `semantic_cache_chat_calls_avoided`) costs nothing
more; every other job embeds its grounding query and makes one chat call of its kind.
Every indexed document embeds all its chunks. The total is kept apart from the
infrastructure's: one is a ceiling on what runs, the other an estimate of what is used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from infra.capacity.errors import CapacityInputError, load_yaml_input
from infra.capacity.paths import DEFAULT_LLM_PRICES
from infra.capacity.traffic import Traffic

__all__ = [
    "DEFAULT_LLM_PRICES",
    "LlmLine",
    "LlmPriceTable",
    "LlmSpend",
    "load_llm_prices",
    "monthly_llm_spend",
]

_SECONDS_PER_HOUR = 3600
_MILLION = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenPrice(_Strict):
    """One model's list prices per million tokens."""

    input_per_million: Annotated[float, Field(ge=0)]
    output_per_million: Annotated[float, Field(ge=0)]


class LlmPriceTable(_Strict):
    """Per-token prices of the provider's models at one date."""

    as_of: dt.date
    currency: str
    source: str
    models: dict[str, TokenPrice]

    def model(self, name: str) -> TokenPrice:
        """The model's prices, or an error naming the known models."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise CapacityInputError(
                f"the LLM price table has no entry for model {name!r} (known: {known}); add "
                "it to `models:` with its input_per_million and output_per_million"
            ) from None


@dataclass(frozen=True)
class LlmLine:
    """One billed kind of tokens: how many a month and what they cost."""

    item: str
    million_tokens: float
    monthly: float


@dataclass(frozen=True)
class LlmSpend:
    """The month's LLM usage and bill."""

    lines: list[LlmLine]
    jobs: float
    """Generation jobs a month."""
    chat_calls: float
    """Chat completions a month: the jobs the semantic cache did not answer."""
    avoided_share: float
    documents: float
    prices: LlmPriceTable

    @property
    def monthly_total(self) -> float:
        """The sum of the lines."""
        return sum(line.monthly for line in self.lines)


def _per_month(traffic: Traffic, peak_rate: float) -> float:
    model = traffic.model
    average = peak_rate / model.peak_factor
    return (
        average
        * _SECONDS_PER_HOUR
        * model.usage.busy_hours_per_day
        * model.usage.active_days_per_month
    )


def monthly_llm_spend(
    traffic: Traffic, chat_model: str, avoided_share: float, prices: LlmPriceTable
) -> LlmSpend:
    """The bill for `chat_model` and the model's embeddings model, a month of usage."""
    llm = traffic.model.llm
    chat, embedding = prices.model(chat_model), prices.model(llm.embedding_model)
    jobs = _per_month(traffic, traffic.enqueued("generation"))
    documents = _per_month(traffic, traffic.enqueued("document"))
    calls = jobs * (1 - avoided_share)
    chat_in = calls * sum(k.share * k.chat_input_tokens for k in llm.generation_kinds.values())
    chat_out = calls * sum(k.share * k.chat_output_tokens for k in llm.generation_kinds.values())
    lookups = jobs * llm.lookup_embedding_tokens + calls * llm.grounding_embedding_tokens
    indexing = documents * llm.document_embedding_tokens

    def line(item: str, tokens: float, per_million: float) -> LlmLine:
        return LlmLine(item, tokens / _MILLION, tokens / _MILLION * per_million)

    return LlmSpend(
        lines=[
            line(f"chat input ({chat_model})", chat_in, chat.input_per_million),
            line(f"chat output ({chat_model})", chat_out, chat.output_per_million),
            line(
                f"embeddings: cache lookups and grounding ({llm.embedding_model})",
                lookups,
                embedding.input_per_million,
            ),
            line(
                f"embeddings: indexed documents ({llm.embedding_model})",
                indexing,
                embedding.input_per_million,
            ),
        ],
        jobs=jobs,
        chat_calls=calls,
        avoided_share=avoided_share,
        documents=documents,
        prices=prices,
    )


def load_llm_prices(path: Path = DEFAULT_LLM_PRICES) -> LlmPriceTable:
    """Read and validate the LLM price table; `CapacityInputError` says what is wrong."""
    return load_yaml_input(path, "LLM price table", LlmPriceTable)
