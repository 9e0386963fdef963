"""Run-scoped S3 keys and gzip-JSON / bytes read-write, all through ``aws/`` (the one AWS module).

Layout (docs/architecture.md):
``<prefix>/_staging/run=<safe_run_id>/<kind>/<wave>/shard=<nnnn>.json.gz`` with kind commands | scan (per shard),
``gate/<wave>/wave.json.gz`` (per wave), ``plan.json.gz`` (per run), and the collect tasks' Parquet tables
``staged/<wave>/shard=<nnnn>/<table>.parquet``; a remediation run also has ``selection.json.gz``, ``rescan.json.gz``
and ``verify.json.gz`` (per run).
Every object is written with server-side encryption: ``aws:kms`` + key when a key id is given, else ``AES256``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from datetime import date, datetime
from typing import Any

from botocore.exceptions import ClientError

from include.patch_compliance.aws import AwsContext, error_code, paginate
from include.patch_compliance.vocab import WAVE_NAME_PATTERN

# Per-shard kinds, the per-wave kind and the per-run kind of staging object.
SHARD_KINDS = ("commands", "scan")
WAVE_KINDS = ("gate",)
RUN_KINDS = ("plan", "selection", "rescan", "verify", "alert")
STAGING_KINDS = SHARD_KINDS + WAVE_KINDS + RUN_KINDS
# The collect tasks' Parquet tables, one folder per shard (docs/architecture.md, "Staged tables").
STAGED_KIND = "staged"
_TABLE = re.compile(r"^[a-z][a-z_]{0,62}$")
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_WAVE = re.compile(WAVE_NAME_PATTERN)
_MAX_SAFE_LEN = 120


class StorageError(RuntimeError):
    """An S3 object that cannot be read or written; the message names the URI and what to check."""


def safe_run_id(run_id: str) -> str:
    """A run id usable as one S3 key segment / Hive partition value.

    Airflow run ids hold ':' and '+' (``scheduled__2026-11-29T03:00:00+00:00``). Characters outside
    ``[A-Za-z0-9._-]`` become '_' and, when anything was replaced or cut, an 8-hex digest of the original is
    appended so that two run ids never share a key (``a:b`` vs ``a_b``).
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
    cleaned = _SAFE_CHARS.sub("_", run_id)
    if cleaned == run_id and len(cleaned) <= _MAX_SAFE_LEN and not cleaned.startswith((".", "_")):
        return cleaned
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:8]  # noqa: S324 - a name, not security
    return f"{cleaned.lstrip('._')[:_MAX_SAFE_LEN] or 'run'}-{digest}"


def join_key(*parts: str) -> str:
    """Join key segments with single slashes; an empty prefix contributes nothing."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def staging_prefix(prefix: str, run_id: str, kind: str | None = None, wave: str | None = None) -> str:
    """The folder (ending in '/') holding a run's staging objects, optionally narrowed to a kind and wave."""
    parts = [prefix, "_staging", f"run={safe_run_id(run_id)}"]
    if kind is not None:
        _check_kind(kind)
        parts.append(kind)
        if wave is not None:
            parts.append(_check_wave(wave))
    return join_key(*parts) + "/"


def staging_key(prefix: str, run_id: str, kind: str, wave: str | None = None, shard: int | None = None) -> str:
    """Key of one staging object: raw/commands/scan need a wave and a shard, gate a wave, plan neither."""
    _check_kind(kind)
    base = staging_prefix(prefix, run_id)
    if kind in RUN_KINDS:
        if wave is not None or shard is not None:
            raise ValueError(f"staging kind {kind!r} is one object per run: give no wave and no shard")
        return f"{base}{kind}.json.gz"
    if wave is None:
        raise ValueError(f"staging kind {kind!r} needs a wave")
    if kind in WAVE_KINDS:
        if shard is not None:
            raise ValueError(f"staging kind {kind!r} is one object per wave: give no shard")
        return f"{base}{kind}/{_check_wave(wave)}/wave.json.gz"
    if shard is None:
        raise ValueError(f"staging kind {kind!r} needs a wave and a shard number")
    _check_shard(shard)
    return f"{base}{kind}/{_check_wave(wave)}/shard={shard:04d}.json.gz"


def staged_prefix(prefix: str, run_id: str) -> str:
    """The folder (ending in '/') of a run's staged Parquet tables, every shard."""
    return join_key(prefix, "_staging", f"run={safe_run_id(run_id)}", STAGED_KIND) + "/"


def staged_key(prefix: str, run_id: str, wave: str, shard: int, table: str) -> str:
    """Key of one staged Parquet table of one collect shard: ``staged/<wave>/shard=<nnnn>/<table>.parquet``."""
    _check_shard(shard)
    if not _TABLE.match(table or ""):
        raise ValueError(f"staged table name must match {_TABLE.pattern}, got {table!r}")
    return f"{staged_prefix(prefix, run_id)}{_check_wave(wave)}/shard={shard:04d}/{table}.parquet"


def _check_shard(shard: object) -> None:
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard <= 9999:
        raise ValueError(f"shard must be an int in 0..9999, got {shard!r}")


def _check_kind(kind: str) -> None:
    if kind not in STAGING_KINDS:
        raise ValueError(f"staging kind must be one of {', '.join(STAGING_KINDS)}, got {kind!r}")


def _check_wave(wave: str) -> str:
    if not isinstance(wave, str) or not _WAVE.match(wave):
        raise ValueError(f"wave must match {_WAVE.pattern} (as in config waves[].name), got {wave!r}")
    return wave


def sse_args(kms_key_id: str | None) -> dict[str, str]:
    """PutObject encryption arguments: SSE-KMS with the key when configured, else SSE-S3."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri or "")
    if not match:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return match.group(1), match.group(2)


def put_bytes(
    ctx: AwsContext,
    bucket: str,
    key: str,
    body: bytes,
    *,
    content_type: str = "application/octet-stream",
    content_encoding: str | None = None,
    kms_key_id: str | None = None,
) -> str:
    """Write one object (overwriting: re-runs write the same keys) and return its s3:// URI."""
    extra: dict[str, Any] = sse_args(kms_key_id)
    if content_encoding:
        extra["ContentEncoding"] = content_encoding
    try:
        ctx.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)
    except ClientError as exc:
        raise StorageError(
            f"cannot write {s3_uri(bucket, key)}: {error_code(exc)}: {exc}; check the bucket exists, "
            "the role has s3:PutObject and (with reports.kms_key_id) kms:GenerateDataKey"
        ) from exc
    return s3_uri(bucket, key)


def get_bytes(ctx: AwsContext, bucket: str, key: str) -> bytes:
    try:
        return ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = error_code(exc)
        hint = "it does not exist (was the step that writes it run?)" if code in ("NoSuchKey", "404") else str(exc)
        raise StorageError(f"cannot read {s3_uri(bucket, key)}: {code}: {hint}") from exc


def download(ctx: AwsContext, bucket: str, key: str, path: str) -> str:
    """Stream one object to a local file (never whole into memory) and return the path."""
    try:
        body = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        raise StorageError(f"cannot read {s3_uri(bucket, key)}: {error_code(exc)}: {exc}") from exc
    with body, open(path, "wb") as out:
        shutil.copyfileobj(body, out, 1 << 20)
    return path


def object_exists(ctx: AwsContext, bucket: str, key: str) -> bool:
    try:
        ctx.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


# DeleteObjects takes at most 1,000 keys per request (Amazon S3 API reference, DeleteObjects).
MAX_DELETE_KEYS = 1000


def delete_keys(ctx: AwsContext, bucket: str, keys: list[str]) -> None:
    """Delete ``keys`` (DeleteObjects in batches of 1,000); a key that does not exist counts as deleted."""
    s3 = ctx.client("s3")
    for start in range(0, len(keys), MAX_DELETE_KEYS):
        batch = keys[start : start + MAX_DELETE_KEYS]
        try:
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        except ClientError as exc:
            raise StorageError(f"cannot delete from s3://{bucket}: {error_code(exc)}: {exc}") from exc
        errors = answer.get("Errors") or []
        if errors:
            raise StorageError(
                f"cannot delete {len(errors)} objects from s3://{bucket}, e.g. {errors[0].get('Key')}: "
                f"{errors[0].get('Code')}; check s3:DeleteObject"
            )


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps_json_gz(obj: Any) -> bytes:
    """Deterministic gzip JSON: sorted keys and a zero gzip mtime, so the same object gives the same bytes."""
    raw = json.dumps(obj, default=_json_default, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as JSON would give it back (datetimes as ISO-8601 strings): what a JSON staging round trip gave."""
    return json.loads(json.dumps(obj, default=_json_default))


def put_json_gz(ctx: AwsContext, bucket: str, key: str, obj: Any, *, kms_key_id: str | None = None) -> str:
    """Write ``obj`` as gzip-compressed JSON (datetimes as ISO-8601) and return the s3:// URI."""
    return put_bytes(
        ctx,
        bucket,
        key,
        dumps_json_gz(obj),
        content_type="application/json",
        content_encoding="gzip",
        kms_key_id=kms_key_id,
    )


def get_json_gz(ctx: AwsContext, bucket: str, key: str) -> Any:
    body = get_bytes(ctx, bucket, key)
    try:
        return json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
    except (OSError, ValueError) as exc:
        raise StorageError(f"{s3_uri(bucket, key)} is not gzip JSON: {exc}") from exc


def list_keys(ctx: AwsContext, bucket: str, prefix: str) -> list[str]:
    """All keys under ``prefix``, sorted (ListObjectsV2 through its paginator)."""
    try:
        items = paginate(ctx.client("s3"), "list_objects_v2", "Contents", Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in items)
    except ClientError as exc:
        raise StorageError(f"cannot list {s3_uri(bucket, prefix)}: {error_code(exc)}: {exc}") from exc
