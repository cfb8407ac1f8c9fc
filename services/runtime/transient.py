"""Infrastructure trouble that may pass: what a worker retries instead of dead-lettering.

A message whose handling failed because a dependency was briefly unreachable, slow or
overloaded will likely succeed on a later attempt; one that failed because of its own
content (or our bug) will fail the same way every time, and retrying it only delays its
dead letter. Each client library reports the first kind differently, and an error class
missing here turns a minute's outage of that dependency into dead letters, so every
dependency a worker talks to is named here once, for every worker:

* PostgreSQL (psycopg): `OperationalError` (connection lost, server shutting down).
* HTTP through httpx (Qdrant's REST client underneath): any transport error except
  `UnsupportedProtocol`, which is a misconfigured URL and stays one.
* Qdrant: `ResponseHandlingException` (the request never got an answer) and
  `UnexpectedResponse` with 429 or 5xx (the server answered that it cannot now). Other
  4xx say our request is wrong.
* S3 (botocore): connection and timeout errors (`botocore.exceptions.ConnectionError`
  covers endpoint, proxy and connect-timeout failures; `HTTPClientError` covers read
  timeouts and dropped connections), and a `ClientError` with HTTP 5xx or a throttling
  or timeout code. `AccessDenied`, `NoSuchKey` and the like are not.
* The standard library's `TimeoutError` and `ConnectionError`.

The AI provider's own failures are judged by `services.ai.breaker.is_provider_failure`,
which the workers combine with this.
"""

import botocore.exceptions
import httpx
import psycopg
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

__all__ = ["is_transient_infrastructure"]

_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500

_AWS_RETRYABLE_CODES = frozenset({
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
})  # fmt: skip
"""AWS error codes that mean "not now" (botocore's own retry handler treats them so)."""

_ALWAYS = (
    psycopg.OperationalError,
    TimeoutError,
    ConnectionError,
    ResponseHandlingException,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)


def is_transient_infrastructure(error: BaseException) -> bool:
    """Whether `error` is a dependency's passing trouble, so a retry may succeed."""
    if isinstance(error, _ALWAYS):
        return True
    if isinstance(error, httpx.TransportError):
        return not isinstance(error, httpx.UnsupportedProtocol)
    if isinstance(error, UnexpectedResponse):
        return _retryable_status(error.status_code)
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return details.get("Code") in _AWS_RETRYABLE_CODES or _retryable_status(status)
    return False


def _retryable_status(status: int | None) -> bool:
    return status is not None and (status == _TOO_MANY_REQUESTS or status >= _SERVER_ERROR)
