"""Where the page reads from: ``<prefix>/latest/summary.json``, ``<prefix>/runs/<safe_run_id>/`` (summary.json,
report.html) and byte ranges of the run's Parquet tables (``ui/tables.py``).

Every S3 failure becomes a ``ReportUnavailable`` carrying the bucket, key, error code and what to check, so the page
can show a clear message instead of a stack trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from include.patch_compliance.aws import error_code

LATEST_SUMMARY = "latest/summary.json"
# storage.safe_run_id output: one key segment of [A-Za-z0-9._-], never starting with '.' or '_' (no '..' tricks).
SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9-][A-Za-z0-9._-]{0,139}$")
_MAX_SUMMARY_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """Why a report cannot be shown: what was read, what failed and what to check."""

    bucket: str
    key: str
    code: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key, "code": self.code, "message": self.message, "hint": self.hint}


class ReportUnavailable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(f"s3://{problem.bucket}/{problem.key}: {problem.code}: {problem.message}")
        self.problem = problem


def _hint(code: str, bucket: str, key: str, conn_id: str) -> str:
    if code == "NoSuchBucket":
        return (
            f"Bucket '{bucket}' does not exist for the credentials of Airflow connection '{conn_id}'. "
            "Check reports.bucket in the patch-compliance config and that the connection points at the right "
            "account and partition."
        )
    if code in {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}:
        return (
            f"The identity of Airflow connection '{conn_id}' needs s3:GetObject on arn:aws:s3:::{bucket}/{key} "
            f"and s3:ListBucket on arn:aws:s3:::{bucket} (without ListBucket, S3 answers AccessDenied instead of "
            "NoSuchKey for a missing object); with SSE-KMS it also needs kms:Decrypt on the key. Check the bucket "
            "policy too."
        )
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "NoCredentialsError"}:
        return f"The credentials of Airflow connection '{conn_id}' are missing, invalid or expired; fix the connection."
    if code in {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}:
        return (
            "S3 could not be reached. Check the endpoint (AWS_ENDPOINT_URL or the connection's endpoint_url extra) "
            "and the network path from the Airflow api-server."
        )
    if code == "InvalidSummary":
        return "The file was not written by this project's publish step, or by an incompatible version; re-run it."
    return f"Check the Airflow connection '{conn_id}', the bucket '{bucket}' and the api-server logs."


def _problem(exc: BaseException, bucket: str, key: str, conn_id: str) -> Problem:
    code = error_code(exc)
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or str(exc)
    else:
        message = str(exc)
    return Problem(bucket=bucket, key=key, code=code, message=message, hint=_hint(code, bucket, key, conn_id))


class ReportStore:
    """Reads published objects from one bucket/prefix with an S3 client built by the caller (``aws/`` module)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, conn_id: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.conn_id = conn_id

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """Any S3 failure while reading ``key`` -> ReportUnavailable naming it."""
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise ReportUnavailable(_problem(exc, self.bucket, key, self.conn_id)) from exc

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _get(self, key: str) -> bytes | None:
        """The object's bytes, or None when the key does not exist (NoSuchKey)."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if error_code(exc) == "NoSuchKey":
                return None
            raise ReportUnavailable(_problem(exc, self.bucket, key, self.conn_id)) from exc
        except (BotoCoreError, NoCredentialsError, EndpointConnectionError) as exc:
            raise ReportUnavailable(_problem(exc, self.bucket, key, self.conn_id)) from exc

    def latest_summary(self) -> dict[str, Any] | None:
        """``latest/summary.json`` parsed, or None when no run has been published yet."""
        return self.json_object(LATEST_SUMMARY)

    def json_object(self, relative: str) -> dict[str, Any] | None:
        """A published JSON object (key relative to the prefix) parsed, or None when it does not exist."""
        key = self.key(relative)
        body = self._get(key)
        if body is None:
            return None
        if len(body) > _MAX_SUMMARY_BYTES:
            raise ReportUnavailable(self.invalid(key, f"{len(body)} bytes is larger than a summary can be"))
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ReportUnavailable(self.invalid(key, f"not valid JSON: {exc}")) from exc
        if not isinstance(data, dict):
            raise ReportUnavailable(self.invalid(key, f"top level must be an object, got {type(data).__name__}"))
        return data

    def run_summary(self, safe_run_id: str) -> dict[str, Any] | None:
        """A run's own ``runs/<safe_run_id>/summary.json``, or None if that run has none."""
        if not SAFE_RUN_ID.match(safe_run_id):
            raise ValueError(f"run {safe_run_id!r} is not a published run id (letters, digits, '.', '_', '-')")
        return self.json_object(f"runs/{safe_run_id}/summary.json")

    def table_key(self, uri: str | None) -> str | None:
        """The key of a published table from summary.json ``tables``, only inside this bucket and prefix (a
        summary never makes the page read elsewhere); None for a missing or foreign location."""
        base = f"s3://{self.bucket}/{self.key('')}"
        if not uri or not uri.startswith(base) or not uri.endswith(".parquet") or ".." in uri:
            return None
        return uri[len(f"s3://{self.bucket}/") :]

    def size(self, key: str) -> int:
        """The object's size in bytes (HeadObject)."""
        with self._reading(key):
            return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def byte_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` inclusive of an object (GetObject with a Range header, RFC 9110)."""
        with self._reading(key):
            return self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")["Body"].read()

    def report_html(self, safe_run_id: str) -> bytes | None:
        """A run's ``report.html``, or None if that run has none."""
        if not SAFE_RUN_ID.match(safe_run_id):
            raise ValueError(f"run {safe_run_id!r} is not a published run id (letters, digits, '.', '_', '-')")
        return self._get(self.key(f"runs/{safe_run_id}/report.html"))

    def invalid(self, key: str, message: str) -> Problem:
        return Problem(self.bucket, key, "InvalidSummary", message, _hint("InvalidSummary", self.bucket, key, ""))
