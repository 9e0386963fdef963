"""Organizations: the read API answered from the generated fleet, plus seeding moto's backend with the same
ids so the calls we pass through (policies, tags, ...) see the same organisation.

Why not moto's own list calls: moto draws random ids, pages ListAccounts on JoinedTimestamp (accounts created in
the same second get skipped), never pages ListChildren, omits `Paths`/`Path`, and never returns the empty
page with a NextToken that AWS documents (docs/aws-behaviours.md §11, §19).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from sandbox.awsproto import AwsError
from sandbox.faults import RateCounter
from sandbox.fleet import Account, Fleet, Ou
from sandbox.paging import decode_token, encode_token

# "List* operations can occasionally return an empty set of results" (docs/aws-behaviours.md §11)
EMPTY_PAGE_RATE = 0.25
DEFAULT_PAGE = 20


class Organizations:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.empty_pages = RateCounter()
        m = fleet.management_account_id
        self.org_arn_prefix = f"arn:aws:organizations::{m}"

    # -- shapes -------------------------------------------------------------------------------------------------
    def _parents_chain(self, parent_id: str) -> list[str]:
        chain = []
        while parent_id != self.fleet.root_id:
            chain.append(parent_id)
            ou = self.fleet.ou(parent_id)
            if ou is None:
                break
            parent_id = ou.parent_id
        return [self.fleet.root_id, *reversed(chain)]

    def account_shape(self, a: Account) -> dict:
        path = "/".join([self.fleet.org_id, *self._parents_chain(a.ou_id), a.id]) + "/"
        return {
            "Id": a.id,
            "Arn": f"{self.org_arn_prefix}:account/{self.fleet.org_id}/{a.id}",
            "Email": a.email,
            "Name": a.name,
            "Status": a.state,
            "State": a.state,
            "Paths": [path],
            "JoinedMethod": "CREATED" if a.id != self.fleet.management_account_id else "INVITED",
            "JoinedTimestamp": a.joined,
        }

    def ou_shape(self, ou: Ou) -> dict:
        return {
            "Id": ou.id,
            "Arn": f"{self.org_arn_prefix}:ou/{self.fleet.org_id}/{ou.id}",
            "Name": ou.name,
            "Path": "/".join([self.fleet.org_id, *self._parents_chain(ou.parent_id), ou.id]) + "/",
        }

    def root_shape(self) -> dict:
        return {
            "Id": self.fleet.root_id,
            "Arn": f"{self.org_arn_prefix}:root/{self.fleet.org_id}/{self.fleet.root_id}",
            "Name": "Root",
            "PolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}],
        }

    # -- helpers ------------------------------------------------------------------------------------------------
    def _require_parent(self, parent_id: str) -> None:
        if parent_id != self.fleet.root_id and self.fleet.ou(parent_id) is None:
            raise AwsError(
                "ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified."
            )

    def _page(self, action: str, items: list[dict], body: dict, key: str, scope: str) -> dict:
        token = body.get("NextToken")
        state = decode_token(token, scope, code="InvalidInputException")
        start = state["o"]
        size = body.get("MaxResults") or DEFAULT_PAGE
        remaining = len(items) - start
        # An empty page with a NextToken, never twice in a row, never on the last page.
        if remaining > 0 and not state.get("e") and self.empty_pages.fires(action, EMPTY_PAGE_RATE):
            return {key: [], "NextToken": encode_token(start, scope, e=1)}
        chunk = items[start : start + size]
        end = start + len(chunk)
        out: dict = {key: chunk}
        if end < len(items):
            out["NextToken"] = encode_token(end, scope)
        return out

    # -- actions ------------------------------------------------------------------------------------------------
    def handle(self, action: str, body: dict, caller: str) -> dict | None:
        """The response for `action`, or None to let moto answer it."""
        handler = self._handlers().get(action)
        if handler is None:
            return None
        if caller != self.fleet.management_account_id and action != "DescribeOrganization":
            raise AwsError("AccessDeniedException", "You don't have permissions to access this resource.")
        return handler(body)

    def _handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {
            "ListRoots": self.list_roots,
            "ListOrganizationalUnitsForParent": self.list_ous_for_parent,
            "ListAccountsForParent": self.list_accounts_for_parent,
            "ListAccounts": self.list_accounts,
            "ListChildren": self.list_children,
            "DescribeAccount": self.describe_account,
            "DescribeOrganization": self.describe_organization,
            "ListParents": self.list_parents,
            "DescribeOrganizationalUnit": self.describe_ou,
        }

    def list_roots(self, body: dict) -> dict:
        return self._page("ListRoots", [self.root_shape()], body, "Roots", "roots")

    def list_ous_for_parent(self, body: dict) -> dict:
        self._require_parent(body["ParentId"])
        items = [self.ou_shape(o) for o in self.fleet.ous if o.parent_id == body["ParentId"]]
        return self._page(
            "ListOrganizationalUnitsForParent", items, body, "OrganizationalUnits", f"ous:{body['ParentId']}"
        )

    def list_accounts_for_parent(self, body: dict) -> dict:
        self._require_parent(body["ParentId"])
        # Direct children only, not accounts of nested OUs (docs/aws-behaviours.md §11).
        items = [self.account_shape(a) for a in self.fleet.accounts if a.ou_id == body["ParentId"]]
        return self._page("ListAccountsForParent", items, body, "Accounts", f"accounts:{body['ParentId']}")

    def list_accounts(self, body: dict) -> dict:
        return self._page(
            "ListAccounts", [self.account_shape(a) for a in self.fleet.accounts], body, "Accounts", "accounts"
        )

    def list_children(self, body: dict) -> dict:
        self._require_parent(body["ParentId"])
        if body["ChildType"] == "ACCOUNT":
            items = [{"Id": a.id, "Type": "ACCOUNT"} for a in self.fleet.accounts if a.ou_id == body["ParentId"]]
        else:
            items = [
                {"Id": o.id, "Type": "ORGANIZATIONAL_UNIT"} for o in self.fleet.ous if o.parent_id == body["ParentId"]
            ]
        return self._page("ListChildren", items, body, "Children", f"children:{body['ParentId']}:{body['ChildType']}")

    def describe_account(self, body: dict) -> dict:
        account = self.fleet.account(body["AccountId"])
        if account is None:
            raise AwsError(
                "AccountNotFoundException", "We can't find an AWS account with the AccountId that you specified."
            )
        return {"Account": self.account_shape(account)}

    def describe_ou(self, body: dict) -> dict:
        ou = self.fleet.ou(body["OrganizationalUnitId"])
        if ou is None:
            raise AwsError(
                "OrganizationalUnitNotFoundException",
                "We can't find an OU with the OrganizationalUnitId that you specified.",
            )
        return {"OrganizationalUnit": self.ou_shape(ou)}

    def describe_organization(self, body: dict) -> dict:
        m = self.fleet.management_account_id
        return {
            "Organization": {
                "Id": self.fleet.org_id,
                "Arn": f"{self.org_arn_prefix}:organization/{self.fleet.org_id}",
                "FeatureSet": "ALL",
                "MasterAccountArn": f"{self.org_arn_prefix}:account/{self.fleet.org_id}/{m}",
                "MasterAccountId": m,
                "MasterAccountEmail": "master@example.com",
                "AvailablePolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}],
            }
        }

    def list_parents(self, body: dict) -> dict:
        child = body["ChildId"]
        account = self.fleet.account(child)
        ou = self.fleet.ou(child)
        if account is None and ou is None:
            raise AwsError(
                "ChildNotFoundException",
                "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
            )
        parent = account.ou_id if account else ou.parent_id  # type: ignore[union-attr]
        kind = "ROOT" if parent == self.fleet.root_id else "ORGANIZATIONAL_UNIT"
        return self._page("ListParents", [{"Id": parent, "Type": kind}], body, "Parents", f"parents:{child}")


def seed_moto(fleet: Fleet) -> None:
    """Create the same organisation (same ids) in moto, for the actions we pass through to it."""
    from moto.organizations import models as org_models

    backend = org_models.organizations_backends[fleet.management_account_id]["aws"]
    if backend.org is not None:
        return
    backend.create_organization(region="us-east-1", FeatureSet="ALL")
    org = backend.org
    root = backend.ou[0]
    org.id, org.root_id, root.id = fleet.org_id, fleet.root_id, fleet.root_id
    for a in backend.accounts:
        a.organization_id, a.parent_id = fleet.org_id, fleet.root_id
    for ou in fleet.ous:
        backend.create_organizational_unit(Name=ou.name, ParentId=ou.parent_id)
        backend.ou[-1].id = ou.id
        backend.ou[-1].organization_id = fleet.org_id
    for account in fleet.accounts:
        if account.id == fleet.management_account_id:
            continue
        fake = org_models.FakeAccount.__new__(org_models.FakeAccount)
        # Bypass FakeAccount.__init__: it creates an IAM role per account (slow for `large`, and the member role
        # is decided by the fleet, not by moto).
        fake.type, fake.region, fake.organization_id = "ACCOUNT", "us-east-1", fleet.org_id
        fake.master_account_id = fleet.management_account_id
        fake.create_account_status_id = "car-" + account.id[:8]
        fake.id, fake.name, fake.email = account.id, account.name, account.email
        from datetime import datetime

        fake.create_time = datetime.fromtimestamp(account.joined, tz=UTC).replace(tzinfo=None)
        fake.status = fake.state = account.state
        fake.joined_method, fake.parent_id, fake.attached_policies, fake.tags = "CREATED", account.ou_id, [], {}
        backend.accounts.append(fake)
        for policy_id in (org_models.utils.DEFAULT_SCP_POLICY_ID, org_models.utils.DEFAULT_RCP_POLICY_ID):
            backend.attach_policy(PolicyId=policy_id, TargetId=account.id)  # as moto's create_account does
        org_models.organizations_backends.master_accounts[account.id] = (fleet.management_account_id, "aws")
