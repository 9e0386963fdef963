"""Security Hub (CSPM) emulator backend, called by the sandbox server for requests whose SigV4 service is
``securityhub``. moto's Security Hub merges findings regardless of UpdatedAt, ignores filters and has no account
rule or BatchUpdateFindings (docs/aws-behaviours.md §19), so this is our own, following §14-§17 there and the botocore
``securityhub`` model (REST paths, shapes, limits).

By concern: ``model`` (limits, vocabularies, errors, ARNs, timestamps), ``validation`` (what an import refuses),
``filters`` (GetFindings filters and paging), ``state`` (stored findings and hubs), ``emulator`` (the API
operations), ``serving`` (HTTP for tests).
"""

from sandbox.securityhub.emulator import SecurityHubEmulator
from sandbox.securityhub.filters import compile_filters
from sandbox.securityhub.model import (
    MAX_BATCH_BYTES,
    MAX_FINDING_BYTES,
    MAX_IMPORT_FINDINGS,
    ServiceError,
    aws_product_arn,
    default_product_arn,
    parse_timestamp,
    subscription_arn,
)
from sandbox.securityhub.serving import account_from_access_key, running, wsgi_app
from sandbox.securityhub.validation import validate_finding

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_FINDING_BYTES",
    "MAX_IMPORT_FINDINGS",
    "SecurityHubEmulator",
    "ServiceError",
    "account_from_access_key",
    "aws_product_arn",
    "compile_filters",
    "default_product_arn",
    "parse_timestamp",
    "running",
    "subscription_arn",
    "validate_finding",
    "wsgi_app",
]
