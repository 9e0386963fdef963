"""Walk the AWS Organization from the root: every OU (nested) and every account, with its OU path."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from include.patch_compliance.aws import paginate


@dataclass(frozen=True)
class OrgUnit:
    id: str
    name: str
    path: str  # "Root/Workloads/Prod": names from the root, stable across re-created OUs
    parent_id: str | None


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    state: str | None  # Organizations `State`; the older `Status` is retired (docs/aws-behaviours.md §11)
    ou_id: str
    ou_path: str


# The largest page the list calls take (docs/aws-behaviours.md §11): fewest calls for a large organization.
PAGE = 20


def walk_organization(org: Any) -> tuple[list[OrgUnit], list[Account]]:
    """Breadth-first from the root with ListOrganizationalUnitsForParent / ListAccountsForParent (direct children
    only, so every level is asked). Paginators follow NextToken through empty pages (docs/aws-behaviours.md §11)."""
    roots = list(paginate(org, "list_roots", "Roots"))
    if not roots:
        raise RuntimeError("Organizations ListRoots returned no root: is this the management or delegated account?")
    root = roots[0]
    root_unit = OrgUnit(id=root["Id"], name=root.get("Name") or "Root", path=root.get("Name") or "Root", parent_id=None)
    units = [root_unit]
    accounts: list[Account] = []
    queue = deque([root_unit])
    while queue:
        parent = queue.popleft()
        for item in paginate(org, "list_accounts_for_parent", "Accounts", ParentId=parent.id, MaxResults=PAGE):
            accounts.append(
                Account(
                    id=item["Id"],
                    name=item.get("Name", ""),
                    state=item.get("State"),
                    ou_id=parent.id,
                    ou_path=parent.path,
                )
            )
        for item in paginate(
            org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent.id, MaxResults=PAGE
        ):
            unit = OrgUnit(id=item["Id"], name=item["Name"], path=f"{parent.path}/{item['Name']}", parent_id=parent.id)
            units.append(unit)
            queue.append(unit)
    return units, accounts
