"""cfn-lint and parliament are clean on every template under deploy/ (the same check `make lint` runs), and they
do catch a wrong action name and a wrong property."""

from __future__ import annotations

import pytest

from scripts.cfn_templates import MEMBER_TEMPLATE, ROOT, templates
from scripts.lint_templates import cfn_lint_findings, parliament_findings

TEMPLATES = templates()


def test_every_template_is_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in TEMPLATES}
    assert {"deploy/iam/hub-role.yaml", "deploy/iam/member-role.yaml", "deploy/athena/glue-tables.yaml"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_cfn_lint_is_clean(template) -> None:
    assert cfn_lint_findings(template) == []


@pytest.mark.parametrize("template", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_parliament_is_clean(template) -> None:
    assert parliament_findings(template) == []


def test_the_linters_catch_a_wrong_action_and_a_wrong_property(tmp_path) -> None:
    text = MEMBER_TEMPLATE.read_text()
    wrong_action = tmp_path / "wrong-action" / MEMBER_TEMPLATE.name
    wrong_action.parent.mkdir()
    wrong_action.write_text(text.replace("- ssm:ListComplianceItems", "- ssm:ListComplianceItem"))
    assert any("UNKNOWN_ACTION" in f and "ListComplianceItem" in f for f in parliament_findings(wrong_action))
    wrong_property = tmp_path / "wrong-property" / MEMBER_TEMPLATE.name
    wrong_property.parent.mkdir()
    wrong_property.write_text(text.replace("      RoleName: !Ref MemberRoleName", "      RoleNam: !Ref MemberRoleName"))
    found = cfn_lint_findings(wrong_property)
    assert any("E3002" in f and "RoleNam" in f for f in found), found


def test_make_lint_runs_the_template_checks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "scripts.lint_templates" in lint and "scripts.athena_template --check" in lint
