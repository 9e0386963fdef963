"""storage.py: run-scoped staging keys and gzip JSON through moto S3 (SSE on every object)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from include.patch_compliance import storage
from include.patch_compliance.aws import AwsContext

BUCKET = "reports-bucket"


@pytest.fixture
def ctx():
    with mock_aws():
        context = AwsContext(session=boto3.Session(region_name="us-east-1"))
        context.client("s3").create_bucket(Bucket=BUCKET)
        yield context


def test_safe_run_id_keeps_simple_ids_and_disambiguates_rewritten_ones():
    assert storage.safe_run_id("manual_run-1.2") == "manual_run-1.2"
    airflow_id = "scheduled__2026-11-29T03:00:00+00:00"
    safe = storage.safe_run_id(airflow_id)
    assert safe.startswith("scheduled__2026-11-29T03_00_00_00_00-")
    assert set(safe) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert storage.safe_run_id("a:b") != storage.safe_run_id("a_b")
    assert storage.safe_run_id(airflow_id) == safe
    assert not storage.safe_run_id("_hidden").startswith("_")  # Athena/Hive skip names starting with _ or .
    with pytest.raises(ValueError, match="run_id"):
        storage.safe_run_id("")


def test_staging_key_layout_and_validation():
    key = storage.staging_key("pc", "r1", "scan", "canary", 3)
    assert key == "pc/_staging/run=r1/scan/canary/shard=0003.json.gz"
    assert storage.staging_key("", "r1", "commands", "all", 0) == "_staging/run=r1/commands/all/shard=0000.json.gz"
    assert storage.staging_key("pc/", "r1", "plan") == "pc/_staging/run=r1/plan.json.gz"
    assert storage.staging_prefix("pc", "r1", "scan", "canary") == "pc/_staging/run=r1/scan/canary/"
    with pytest.raises(ValueError, match="kind"):
        storage.staging_key("pc", "r1", "bogus", "canary", 1)
    with pytest.raises(ValueError, match="wave"):
        storage.staging_key("pc", "r1", "scan", "Bad Wave", 1)
    with pytest.raises(ValueError, match="shard"):
        storage.staging_key("pc", "r1", "scan", "canary", -1)
    with pytest.raises(ValueError, match="needs a wave"):
        storage.staging_key("pc", "r1", "scan")


def test_staged_key_layout_and_validation():
    key = storage.staged_key("pc", "r1", "canary", 3, "nodes")
    assert key == "pc/_staging/run=r1/staged/canary/shard=0003/nodes.parquet"
    assert (
        key.startswith(storage.staged_prefix("pc", "r1"))
        and storage.staged_prefix("", "r1") == "_staging/run=r1/staged/"
    )
    with pytest.raises(ValueError, match="wave"):
        storage.staged_key("pc", "r1", "Bad Wave", 1, "nodes")
    with pytest.raises(ValueError, match="shard"):
        storage.staged_key("pc", "r1", "canary", 10_000, "nodes")
    with pytest.raises(ValueError, match="table name"):
        storage.staged_key("pc", "r1", "canary", 1, "../nodes")


def test_download_streams_an_object_to_a_file(ctx, tmp_path):
    body = bytes(range(256)) * 9000  # larger than one copy chunk
    storage.put_bytes(ctx, BUCKET, "pc/blob.bin", body)
    path = storage.download(ctx, BUCKET, "pc/blob.bin", str(tmp_path / "blob.bin"))
    assert (tmp_path / "blob.bin").read_bytes() == body and path == str(tmp_path / "blob.bin")
    with pytest.raises(storage.StorageError, match=f"s3://{BUCKET}/pc/nope.bin"):
        storage.download(ctx, BUCKET, "pc/nope.bin", str(tmp_path / "nope.bin"))


def test_put_get_json_gz_round_trip_with_sse(ctx):
    key = storage.staging_key("pc", "r1", "scan", "canary", 0)
    doc = [{"collected_at": datetime(2026, 11, 29, 1, tzinfo=UTC), "n": 1}]
    uri = storage.put_json_gz(ctx, BUCKET, key, doc)
    assert uri == f"s3://{BUCKET}/{key}"
    assert storage.get_json_gz(ctx, BUCKET, key) == [{"collected_at": "2026-11-29T01:00:00+00:00", "n": 1}]
    head = ctx.client("s3").head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentEncoding"] == "gzip"
    first = ctx.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    storage.put_json_gz(ctx, BUCKET, key, doc)
    assert ctx.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == first  # deterministic bytes


def test_kms_key_is_used_when_configured(ctx):
    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    storage.put_json_gz(ctx, BUCKET, "k.json.gz", {"a": 1}, kms_key_id=key_id)
    head = ctx.client("s3").head_object(Bucket=BUCKET, Key="k.json.gz")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]


def test_list_keys_pages_and_sorts(ctx):
    for shard in (12, 3, 7):
        storage.put_json_gz(ctx, BUCKET, storage.staging_key("pc", "r1", "scan", "all", shard), [])
    storage.put_json_gz(ctx, BUCKET, storage.staging_key("pc", "r2", "scan", "all", 0), [])
    keys = storage.list_keys(ctx, BUCKET, storage.staging_prefix("pc", "r1", "scan"))
    assert keys == [f"pc/_staging/run=r1/scan/all/shard={n:04d}.json.gz" for n in (3, 7, 12)]


def test_missing_object_error_names_the_uri(ctx):
    with pytest.raises(storage.StorageError, match=f"s3://{BUCKET}/nope.json.gz.*NoSuchKey"):
        storage.get_json_gz(ctx, BUCKET, "nope.json.gz")
    assert storage.object_exists(ctx, BUCKET, "nope.json.gz") is False
