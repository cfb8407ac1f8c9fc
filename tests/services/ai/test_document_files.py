"""Where uploads are kept: the S3 bucket in the cloud, a directory locally.

The S3 store is driven through a real boto3 client whose HTTP layer is botocore's
`Stubber`: every request is built, validated against S3's API model and answered as S3
would, so a wrong parameter or a misread error fails here instead of in a pod.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from services.ai.document_files import LocalFiles, S3Files, document_files, storage_key
from services.ai.settings import AISettings
from services.indexer_worker.handler import IndexHandler, MissingFile
from services.runtime.transient import is_transient_infrastructure

pytestmark = pytest.mark.anyio

BUCKET = "eduscale-dev-documents"
KEY = storage_key(uuid.uuid4(), uuid.uuid4())
PDF = b"%PDF-1.7\n% a tiny file\n"


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "s3",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


async def test_a_file_is_stored_read_back_and_removed_under_its_key(
    s3: tuple[Any, Stubber],
) -> None:
    client, stubber = s3
    key = {"Bucket": BUCKET, "Key": KEY}
    stubber.add_response("put_object", {}, {**key, "Body": PDF, "ContentType": "application/pdf"})
    stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(PDF), len(PDF))}, key)
    stubber.add_response("delete_object", {}, key)
    files = S3Files(BUCKET, client)
    await files.put(KEY, PDF)
    assert await files.get(KEY) == PDF
    await files.delete(KEY)


async def test_a_missing_object_is_a_missing_file(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    stubber.add_client_error("get_object", "NoSuchKey", "The key does not exist", 404)
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/{KEY}"):
        await S3Files(BUCKET, client).get(KEY)


async def test_the_indexer_fails_a_document_whose_object_is_gone(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    stubber.add_client_error("get_object", "NoSuchKey", "The key does not exist", 404)
    handler = IndexHandler(
        None,  # type: ignore[arg-type]  # reading the file touches no database
        files=S3Files(BUCKET, client),
        index=None,  # type: ignore[arg-type]
        embedder=None,  # type: ignore[arg-type]
        breaker=None,  # type: ignore[arg-type]
        settings=AISettings.from_env({}),
    )
    with pytest.raises(MissingFile) as missing:
        await handler._read({"storage_key": KEY})
    assert not handler.is_transient(missing.value)  # dead-lettered with its reason at once


async def test_a_refusal_is_not_mistaken_for_a_missing_file(s3: tuple[Any, Stubber]) -> None:
    # What S3 answers for a missing key when the role may not list the bucket, and for
    # any key the role may not read: a misconfiguration, not a deleted upload.
    client, stubber = s3
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        await S3Files(BUCKET, client).get(KEY)
    assert not isinstance(refused.value, FileNotFoundError)
    assert not is_transient_infrastructure(refused.value)


async def test_throttling_is_retried_by_the_worker(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    stubber.add_client_error("get_object", "SlowDown", "Please reduce your request rate", 503)
    with pytest.raises(botocore.exceptions.ClientError) as throttled:
        await S3Files(BUCKET, client).get(KEY)
    assert is_transient_infrastructure(throttled.value)


def test_a_bucket_selects_s3_and_no_bucket_selects_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    in_cloud = document_files(
        AISettings.from_env({"DOCUMENTS_BUCKET": BUCKET, "DOCUMENTS_DIR": str(tmp_path)})
    )
    assert isinstance(in_cloud, S3Files)
    assert in_cloud.bucket == BUCKET
    local = document_files(AISettings.from_env({"DOCUMENTS_DIR": str(tmp_path)}))
    assert isinstance(local, LocalFiles)
    assert local.root == tmp_path


async def test_the_directory_store_keeps_files_under_their_key(tmp_path: Path) -> None:
    files = document_files(AISettings.from_env({"DOCUMENTS_DIR": str(tmp_path)}))
    await files.put(KEY, PDF)
    assert (tmp_path / KEY).read_bytes() == PDF
    assert await files.get(KEY) == PDF
    await files.delete(KEY)
    await files.delete(KEY)  # already gone: no error
    with pytest.raises(FileNotFoundError):
        await files.get(KEY)
