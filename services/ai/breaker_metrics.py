"""Each provider breaker's state on /metrics, for the "breaker open for 5 minutes" alert.

Read when Prometheus scrapes: the breaker already holds its state, and a gauge copied on
every transition could disagree with it. An open breaker stays `open` until a call
arrives after the cool-down (see `CircuitBreaker.state`), which is what an operator wants
to see: calls are being refused.
"""

from collections.abc import Callable

from contracts.platform_metrics import BREAKER_STATE, BreakerState
from services.ai.breaker import CircuitBreaker
from services.ai.provider_breakers import ProviderBreakers
from services.runtime.metrics import observe_at_scrape

__all__ = ["observe_breakers"]

_STATES = {
    "closed": BreakerState.CLOSED,
    "half_open": BreakerState.HALF_OPEN,
    "open": BreakerState.OPEN,
}


def observe_breakers(breakers: ProviderBreakers) -> Callable[[], None]:
    """Serve both breakers' states, labelled by provider name; call the result to stop."""
    each: tuple[CircuitBreaker, ...] = (breakers.chat, breakers.embeddings)

    def states() -> list[tuple[tuple[str, ...], float]]:
        return [((breaker.name,), float(_STATES[breaker.state])) for breaker in each]

    return observe_at_scrape(BREAKER_STATE, states, combine="max")
