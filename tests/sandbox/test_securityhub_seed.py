"""The emulated org's Security Hub layout: enabled everywhere reachable, native export off, two exceptions."""

import pytest
from botocore.exceptions import ClientError

from tests.sandbox.conftest import member_session


def test_hubs_enabled_with_one_disabled_and_one_native_export(sandbox):
    layout = sandbox.fleet["security_hub"]
    disabled = {(d["account_id"], d["region"]) for d in layout["disabled"]}
    native = {(d["account_id"], d["region"]) for d in layout["native_export"]}
    assert len(disabled) == 1 and len(native) == 1 and not disabled & native
    reachable = [a["id"] for a in sandbox.fleet["accounts"] if a["state"] == "ACTIVE" and a["has_role"]]
    for account_id in reachable:
        for region in sandbox.fleet["regions"]:
            hub = member_session(sandbox, account_id, region).client("securityhub", endpoint_url=sandbox.url)
            if (account_id, region) in disabled:
                with pytest.raises(ClientError, match="InvalidAccessException"):
                    hub.describe_hub()
                continue
            hub.describe_hub()
            products = hub.list_enabled_products_for_import()["ProductSubscriptions"]
            has_native = any(p.endswith("/aws/ssm-patch-manager") for p in products)
            assert has_native == ((account_id, region) in native)
