"""The one place product code talks to AWS (sessions, clients, assumed roles, paging, batching)."""

from include.patch_compliance.aws.clients import (
    UNREACHABLE_CODES,
    AwsContext,
    TargetUnreachable,
    chunks,
    context_from_connection,
    error_code,
    paginate,
    safe_session_name,
)

__all__ = [
    "UNREACHABLE_CODES",
    "AwsContext",
    "TargetUnreachable",
    "chunks",
    "context_from_connection",
    "error_code",
    "paginate",
    "safe_session_name",
]
