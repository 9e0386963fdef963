"""Publish patch-compliance findings to Security Hub, per member account and Region.

A finding can only be imported from its own account with the default product ARN (docs/aws-behaviours.md §15 account
rule), so every account-region is published through ``context_for(account_id)`` (the member role). Lifecycle of
the one finding per node (``asff.finding_id``):
* NON_COMPLIANT node -> ACTIVE/FAILED finding, created or updated (later UpdatedAt);
* COMPLIANT node with an open finding -> re-imported PASSED/INFORMATIONAL/ARCHIVED, then Workflow RESOLVED;
* node gone from the run (its target was collected) -> its ACTIVE finding re-imported ARCHIVED;
* UNKNOWN nodes (no patch state) keep their finding as it is: nothing is known either way.
Failures never stop the run: unreachable accounts, disabled hubs, throttling beyond the retries and refused
findings are recorded in the result.

The step streams account by account: ``max_workers`` accounts at a time, each one's rows turned into Python
objects only while it is published, its Regions one after the other, and its context released when it is done,
so memory does not grow with the number of accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import BotoCoreError, ClientError

from include.patch_compliance.aws import AwsContext, TargetUnreachable, chunks, error_code, paginate
from include.patch_compliance.config import SecurityHubConfig
from include.patch_compliance.publish import asff
from include.patch_compliance.publish.findings_input import Target, as_arrow, by_account, rows, targets_of
from include.patch_compliance.vocab import COMPLIANCE_STATUSES, FINDINGS_GENERATOR_ID

log = logging.getLogger(__name__)

MAX_IMPORT_FINDINGS = 100  # BatchImportFindings: 1..100 findings per call (docs/aws-behaviours.md §15)
MAX_IMPORT_BYTES = 6 * 1024 * 1024  # ... and at most 6 MB per call
_BATCH_OVERHEAD = 64 * 1024  # request framing; keeps a full batch clearly under 6 MB
MAX_UPDATE_IDENTIFIERS = 100  # BatchUpdateFindings
# Patch Manager's own export is the aws/ssm-patch-manager integration: on by default with Security Hub, off when
# the integration is disabled (patch-manager-security-hub-integration.md).
NATIVE_EXPORT_SUBSCRIPTION = ":product-subscription/aws/ssm-patch-manager"
THROTTLING_CODES = ("LimitExceededException", "ThrottlingException", "TooManyRequestsException")
NOT_ENABLED_CODES = ("InvalidAccessException", "InvalidAccess")
NODE_COLUMNS = ("account_id", "region", "instance_id", "compliance_status")
PATCH_COLUMNS = ("account_id", "region", "instance_id")
# The patches columns a finding uses (asff.failed_finding): what the step reads of the patches table.
PATCH_FIELDS = (*PATCH_COLUMNS, "kb_id", "title", "severity", "cve_ids", "first_seen", "age_days", "sla_breached")
ContextFor = Callable[[str], AwsContext]


@dataclass
class FindingsResult:
    """Counts of findings (created / updated / resolved / failed) and of account-regions skipped, with details."""

    enabled: bool = True
    created: int = 0
    updated: int = 0
    resolved: int = 0
    failed: int = 0
    skipped: int = 0
    targets: int = 0  # account-regions this run considered
    errors: list[dict] = field(default_factory=list)  # {account_id, region, stage, code, message}
    failed_findings: list[dict] = field(default_factory=list)  # {account_id, region, id, error_code, error_message}
    skipped_targets: list[dict] = field(default_factory=list)  # {account_id, region, reason}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def error(self, account_id: str, region: str | None, stage: str, code: str, message: str) -> None:
        self.errors.append(
            {"account_id": account_id, "region": region, "stage": stage, "code": code, "message": message[:1000]}
        )

    def error_targets(self) -> int:
        """Account-regions with at least one error (what the final gate's error ratio counts)."""
        return len({(e["account_id"], e["region"]) for e in self.errors})

    def merge(self, other: FindingsResult) -> None:
        for name in ("created", "updated", "resolved", "failed", "skipped", "targets"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors
        self.failed_findings += other.failed_findings
        self.skipped_targets += other.skipped_targets

    def skip(self, account_id: str, region: str, reason: str) -> None:
        self.skipped += 1
        self.skipped_targets.append({"account_id": account_id, "region": region, "reason": reason})


@dataclass
class _Outgoing:
    kind: str  # created | updated | resolved
    finding: dict
    workflow: str | None = None  # the stored finding's Workflow.Status, if any


def publish_findings(
    context_for: ContextFor,
    nodes: pd.DataFrame | pa.Table,
    patches: pd.DataFrame | pa.Table,
    *,
    cfg: SecurityHubConfig,
    run_id: str,
    now: datetime,
    partition: str = "aws",
    scanned_targets: Iterable[Target] = (),
    max_workers: int = 4,
    release: Callable[[str], None] | None = None,
) -> FindingsResult:
    """Import one finding per node into each node's own account-region and archive findings of nodes that are
    compliant again or gone. ``scanned_targets`` adds collected (account, region) pairs that have no node rows, so
    that the findings of their vanished nodes are archived too. Accounts run ``max_workers`` at a time (Security
    Hub's rate limits are per account and Region, docs/aws-behaviours.md §15), each calling ``context_for`` once
    and, when all its Regions are done, ``release`` (e.g. ``MemberContexts.release``). The tables (the report's
    ``nodes`` and ``patches``, pandas or Arrow) are read one account at a time."""
    result = FindingsResult(enabled=cfg.enabled)
    if not cfg.enabled:
        return result
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), e.g. datetime.now(timezone.utc)")
    if partition not in ("aws", "aws-cn", "aws-us-gov"):
        raise ValueError(f"partition {partition!r} is not one of aws, aws-cn, aws-us-gov")
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    node_table, node_slices = by_account(as_arrow(nodes, NODE_COLUMNS, "nodes"))
    patch_table, patch_slices = by_account(as_arrow(patches, PATCH_COLUMNS, "patches"))
    unknown = sorted(
        {str(v) for v in pc.unique(node_table["compliance_status"]).to_pylist()} - set(COMPLIANCE_STATUSES)
    )
    if unknown:
        raise ValueError(f"nodes.compliance_status has values {unknown}; allowed: {', '.join(COMPLIANCE_STATUSES)}")
    scanned: dict[str, list[Target]] = {}
    for account_id, region in scanned_targets:
        scanned.setdefault(account_id, []).append((account_id, region))

    def one_account(account_id: str) -> list[FindingsResult]:
        node_rows = rows(node_table, node_slices.get(account_id))
        targets, uncollected = targets_of(node_rows, scanned.get(account_id, ()))
        patches_by_node: dict[tuple[str, str, str], list[dict]] = {}
        for patch in rows(patch_table, patch_slices.get(account_id)):
            patches_by_node.setdefault((patch["account_id"], patch["region"], patch["instance_id"]), []).append(patch)
        context: AwsContext | TargetUnreachable | None = None
        parts = []
        try:
            for key in sorted(targets):
                part = FindingsResult(targets=1)
                parts.append(part)
                if key in uncollected:
                    # Not collected this run: its nodes' state is unknown, so their findings stay as they are.
                    part.skip(*key, "TARGET_NOT_COLLECTED")
                    continue
                if context is None:
                    try:
                        context = context_for(account_id)
                    except TargetUnreachable as exc:
                        context = exc
                if isinstance(context, TargetUnreachable):
                    part.error(*key, context.stage, context.code, context.message)
                    continue
                _publish_target(context, key, targets[key], patches_by_node, cfg, run_id, now, partition, part)
        finally:
            if release is not None and isinstance(context, AwsContext):
                release(account_id)
        return parts

    accounts = sorted(set(node_slices) | set(scanned))
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="securityhub") as pool:
        for parts in pool.map(one_account, accounts):  # map keeps account order: a deterministic report
            for part in parts:
                result.merge(part)
    return result


def _publish_target(
    context: AwsContext,
    key: Target,
    node_rows: list[dict],
    patches_by_node: Mapping[tuple[str, str, str], list[dict]],
    cfg: SecurityHubConfig,
    run_id: str,
    now: datetime,
    partition: str,
    part: FindingsResult,
) -> None:
    account_id, region = key
    publisher = _TargetPublisher(
        context.client("securityhub", region), account_id, region, cfg, run_id, now, partition, part
    )
    try:
        publisher.run(node_rows, patches_by_node)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc)
        stage = "not_enabled" if code in NOT_ENABLED_CODES else publisher.stage
        log.warning("Security Hub %s/%s: %s failed: %s", account_id, region, publisher.stage, exc)
        part.error(account_id, region, stage, code, str(exc))


class _TargetPublisher:
    """One account-region: read our findings, import the new state, resolve what is fixed or gone."""

    def __init__(
        self,
        client: Any,
        account_id: str,
        region: str,
        cfg: SecurityHubConfig,
        run_id: str,
        now: datetime,
        partition: str,
        result: FindingsResult,
    ) -> None:
        self.client = client
        self.account_id = account_id
        self.region = region
        self.cfg = cfg
        self.run_id = run_id
        self.now = now
        self.partition = partition
        self.result = result
        self.product_arn = asff.product_arn(partition, region, account_id)
        self.stage = "start"

    def run(self, rows: list[dict], patches_by_node: Mapping[tuple[str, str, str], list[dict]]) -> None:
        if self.cfg.skip_if_native_export and self._native_export_on():
            self.result.skip(self.account_id, self.region, "NATIVE_EXPORT_ENABLED")
            return
        existing = self._our_findings()
        outgoing = self._plan(rows, existing, patches_by_node)
        if outgoing:
            self._import(outgoing)

    def _native_export_on(self) -> bool:
        self.stage = "list_enabled_products"
        subscriptions = paginate(self.client, "list_enabled_products_for_import", "ProductSubscriptions")
        return any(arn.endswith(NATIVE_EXPORT_SUBSCRIPTION) for arn in subscriptions)

    def _our_findings(self) -> dict[str, dict]:
        """Our findings in this account-region, ACTIVE and ARCHIVED (history and lifecycle need both). Region is
        filtered too: from an aggregation Region GetFindings also returns the linked Regions' findings."""
        self.stage = "get_findings"
        filters = {
            name: [{"Value": value, "Comparison": "EQUALS"}]
            for name, value in (
                ("ProductArn", self.product_arn),
                ("GeneratorId", FINDINGS_GENERATOR_ID),
                ("AwsAccountId", self.account_id),
                ("Region", self.region),
            )
        }
        found = paginate(self.client, "get_findings", "Findings", Filters=filters, PaginationConfig={"PageSize": 100})
        return {f["Id"]: f for f in found}

    def _plan(
        self,
        rows: list[dict],
        existing: dict[str, dict],
        patches_by_node: Mapping[tuple[str, str, str], list[dict]],
    ) -> list[_Outgoing]:
        outgoing: list[_Outgoing] = []
        present: set[str] = set()
        for node in rows:
            fid = asff.finding_id(self.account_id, self.region, node["instance_id"])
            present.add(fid)
            old = existing.get(fid)
            status = node["compliance_status"]
            if status == "NON_COMPLIANT":
                node_patches = patches_by_node.get((self.account_id, self.region, node["instance_id"]), [])
                finding = asff.failed_finding(
                    node,
                    node_patches,
                    old,
                    partition=self.partition,
                    run_id=self.run_id,
                    now=self.now,
                    max_patches=self.cfg.max_patches_per_finding,
                )
                outgoing.append(_Outgoing("updated" if old else "created", finding))
            elif status == "COMPLIANT" and old and _is_open(old):
                finding = asff.resolved_finding(node, old, partition=self.partition, run_id=self.run_id, now=self.now)
                outgoing.append(_Outgoing("resolved", finding, _workflow(old)))
        for fid, old in sorted(existing.items()):
            if fid not in present and old.get("RecordState") == "ACTIVE":
                archived = asff.archived_finding(old, run_id=self.run_id, now=self.now)
                outgoing.append(_Outgoing("resolved", archived, _workflow(old)))
        return outgoing

    def _import(self, outgoing: list[_Outgoing]) -> None:
        self.stage = "batch_import_findings"
        by_id = {o.finding["Id"]: o for o in outgoing}
        failures = self._send([o.finding for o in outgoing])
        if failures:
            # One retry of the refused findings (a transient InternalFailure or a concurrent update), then report.
            log.info("Security Hub %s/%s: retrying %d refused findings", self.account_id, self.region, len(failures))
            failures = self._send([by_id[fid].finding for fid in failures if fid in by_id])
        for fid, failure in sorted(failures.items()):
            self.result.failed += 1
            self.result.failed_findings.append(
                {
                    "account_id": self.account_id,
                    "region": self.region,
                    "id": fid,
                    "error_code": failure["ErrorCode"],
                    "error_message": failure["ErrorMessage"],
                }
            )
        if failures and all(f["ErrorCode"] in NOT_ENABLED_CODES for f in failures.values()):
            # A disabled hub answers BatchImportFindings with InvalidAccess per finding (docs/aws-behaviours.md §15).
            self.result.error(
                self.account_id,
                self.region,
                "not_enabled",
                "InvalidAccess",
                f"{len(failures)} findings refused with InvalidAccess: Security Hub or the integration is off",
            )
        resolved: list[str] = []
        for fid, item in by_id.items():
            if fid in failures:
                continue
            setattr(self.result, item.kind, getattr(self.result, item.kind) + 1)
            # A customer's SUPPRESSED (or RESOLVED) stays as they set it; NEW/NOTIFIED become RESOLVED.
            if item.kind == "resolved" and item.workflow in (None, "NEW", "NOTIFIED"):
                resolved.append(fid)
        self._mark_resolved(resolved)

    def _send(self, findings: list[dict]) -> dict[str, dict]:
        """Import in batches of <= 100 findings and < 6 MB; returns the refused findings by Id."""
        failed: dict[str, dict] = {}
        for batch in size_batches(findings, MAX_IMPORT_FINDINGS, MAX_IMPORT_BYTES - _BATCH_OVERHEAD):
            # Throttling (LimitExceededException, 429) is retried with backoff by the client's standard retry mode
            # (botocore retries/standard.py lists it as a throttling code; docs/aws-behaviours.md §18). Still throttled
            # after those attempts: the batch counts as refused (retried once more, then reported), the rest goes on.
            try:
                response = self.client.batch_import_findings(Findings=batch)
            except ClientError as exc:
                if error_code(exc) not in THROTTLING_CODES:
                    raise
                for finding in batch:
                    failed[finding["Id"]] = {"ErrorCode": error_code(exc), "ErrorMessage": str(exc)}
                continue
            for failure in response.get("FailedFindings", []):
                failed[failure["Id"]] = failure
        return failed

    def _mark_resolved(self, finding_ids: list[str]) -> None:
        """Workflow RESOLVED for findings we resolved (optional per docs/aws-behaviours.md §16; it resets to NEW by
        itself if the node fails again). Best effort: a refusal is recorded, the import already happened."""
        if not finding_ids:
            return
        self.stage = "batch_update_findings"
        identifiers = [{"Id": fid, "ProductArn": self.product_arn} for fid in finding_ids]
        for batch in chunks(identifiers, MAX_UPDATE_IDENTIFIERS):
            response = self.client.batch_update_findings(
                FindingIdentifiers=batch,
                Workflow={"Status": "RESOLVED"},
                Note={"Text": f"Resolved by patch-compliance run {self.run_id}"[:512], "UpdatedBy": "patch-compliance"},
            )
            for item in response.get("UnprocessedFindings", []):
                self.result.error(
                    self.account_id,
                    self.region,
                    "batch_update_findings",
                    item["ErrorCode"],
                    f"{item['FindingIdentifier']['Id']}: {item['ErrorMessage']}",
                )


def size_batches(findings: list[dict], max_count: int, max_bytes: int) -> Iterator[list[dict]]:
    """Batches bounded by count and by encoded size (``chunks`` only counts)."""
    batch: list[dict] = []
    batch_bytes = 0
    for finding in findings:
        finding_bytes = asff.size(finding) + 1
        if batch and (len(batch) == max_count or batch_bytes + finding_bytes > max_bytes):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(finding)
        batch_bytes += finding_bytes
    if batch:
        yield batch


def _workflow(finding: Mapping[str, Any]) -> str | None:
    return (finding.get("Workflow") or {}).get("Status")


def _is_open(finding: Mapping[str, Any]) -> bool:
    """ACTIVE findings still need resolving; ARCHIVED ones (resolved or node gone) are closed already."""
    return finding.get("RecordState") != "ARCHIVED"
