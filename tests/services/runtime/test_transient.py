"""Which failures the workers retry: a dependency's passing trouble, not a bad message.

The connection failures come from the real clients pointed at a port nobody listens on,
so a client upgrade that changes what it raises shows here; the status-code cases are
built as the clients build them from an answer.
"""

from __future__ import annotations

import socket

import boto3
import botocore.exceptions
import httpx
import httpx2
import openai
import psycopg
import pytest
from botocore.config import Config
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from services.generation_worker.handler import LessonNotReplicated, is_transient
from services.indexer_worker.handler import IndexHandler, MissingFile
from services.indexing.pdf import EncryptedDocument
from services.runtime.transient import is_transient_infrastructure

S3 = "https://s3.eu-west-1.amazonaws.com/eduscale-documents"


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def raised(action: object) -> BaseException:
    assert callable(action)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the point is which one
        action()
    return caught.value


def test_unreachable_dependencies_are_transient(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    s3 = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # a dummy for the signer
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )
    failures = {
        "postgres": raised(
            lambda: psycopg.connect(f"postgresql://x@127.0.0.1:{closed_port}/x", connect_timeout=2)
        ),
        "httpx": raised(lambda: httpx.get(url, timeout=2)),
        "qdrant": raised(
            lambda: QdrantClient(url=url, timeout=2, check_compatibility=False).get_collections()
        ),
        "s3": raised(lambda: s3.get_object(Bucket="b", Key="k")),
    }
    assert isinstance(failures["postgres"], psycopg.OperationalError)
    assert isinstance(failures["httpx"], httpx.ConnectError)
    assert isinstance(failures["qdrant"], ResponseHandlingException)
    assert isinstance(failures["s3"], botocore.exceptions.EndpointConnectionError)
    for name, error in failures.items():
        assert is_transient_infrastructure(error), name


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        ConnectionResetError(),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("server hung up"),
        botocore.exceptions.ConnectTimeoutError(endpoint_url=S3),
        botocore.exceptions.ReadTimeoutError(endpoint_url=S3),
        botocore.exceptions.ConnectionClosedError(endpoint_url=S3),
    ],
    ids=type,
)
def test_timeouts_and_dropped_connections_are_transient(error: BaseException) -> None:
    assert is_transient_infrastructure(error)


def qdrant_answer(status: int) -> UnexpectedResponse:
    return UnexpectedResponse(status, "", b'{"status": {"error": "x"}}', httpx.Headers())


def s3_answer(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (qdrant_answer(503), True),
        (qdrant_answer(502), True),
        (qdrant_answer(429), True),
        (qdrant_answer(400), False),
        (qdrant_answer(404), False),
        (s3_answer("SlowDown", 503), True),
        (s3_answer("ServiceUnavailable", 503), True),
        (s3_answer("InternalError", 500), True),
        (s3_answer("RequestTimeout", 400), True),  # S3 says it with a 400
        (s3_answer("Throttling", 400), True),
        (s3_answer("AccessDenied", 403), False),
        (s3_answer("NoSuchKey", 404), False),
        (s3_answer("InvalidArgument", 400), False),
    ],
    ids=lambda value: getattr(value, "status_code", None) or str(value),
)
def test_an_answer_is_transient_only_when_it_says_not_now(
    error: BaseException, *, transient: bool
) -> None:
    assert is_transient_infrastructure(error) is transient


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        KeyError("field"),
        httpx.UnsupportedProtocol("ftp://"),  # a misconfigured URL stays misconfigured
        botocore.exceptions.NoCredentialsError(),
    ],
    ids=type,
)
def test_our_own_mistakes_are_not_transient(error: BaseException) -> None:
    assert not is_transient_infrastructure(error)


def indexer_is_transient(error: BaseException) -> bool:
    # The check reads nothing of the handler's state, so no dependencies are needed.
    return IndexHandler.is_transient(object.__new__(IndexHandler), error)


@pytest.mark.parametrize(
    "judge", [is_transient, indexer_is_transient], ids=["generation", "indexer"]
)
def test_both_workers_retry_infrastructure_trouble(judge: object) -> None:
    assert callable(judge)
    request = httpx2.Request("POST", "https://api.openai.test/v1/embeddings")
    for error in (
        s3_answer("SlowDown", 503),
        qdrant_answer(503),
        httpx.ConnectError("refused"),
        botocore.exceptions.EndpointConnectionError(endpoint_url=S3),
        psycopg.OperationalError("the server closed the connection"),
        openai.APIConnectionError(request=request),
    ):
        assert judge(error), error
    assert not judge(s3_answer("AccessDenied", 403))
    assert not judge(ValueError("bad"))


def test_each_worker_keeps_its_own_permanent_and_transient_cases() -> None:
    assert is_transient(LessonNotReplicated("lag"))
    assert not indexer_is_transient(MissingFile("documents/x.pdf"))
    assert not indexer_is_transient(EncryptedDocument())
