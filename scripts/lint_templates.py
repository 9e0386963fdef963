"""Lint deploy/: cfn-lint on every template, parliament on every identity and bucket policy the templates create.

Parliament reads plain JSON, so each template is first resolved (scripts/cfn_templates.py) twice: with only its
required parameters, and with every optional feature on (EXAMPLE_PARAMETERS). Role trust policies are checked by
tests/deploy instead: parliament analyzes identity-based policies and calls a trust policy's missing Resource
MALFORMED. Its community auditors stay off: CREDENTIALS_EXPOSURE flags sts:AssumeRole, which is the hub's job.

    python -m scripts.lint_templates [template ...]      # exit 1 when anything is found
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scripts.cfn_templates import EXAMPLE_PARAMETERS, load, policy_documents, relative, resolve, templates


def cfn_lint_findings(path: Path) -> list[str]:
    """cfn-lint's errors, warnings and informational matches, one line each."""
    from cfnlint.api import lint_file

    return [f"{relative(path)}:{m.linenumber}: cfn-lint {m.rule.id}: {m.message}" for m in lint_file(path)]


def parameter_sets(path: Path) -> list[dict[str, str]]:
    """Required parameters only, then every example value (all optional features on)."""
    examples = EXAMPLE_PARAMETERS.get(path.name, {})
    declared = load(path).get("Parameters") or {}
    required = {name: examples[name] for name, spec in declared.items() if "Default" not in spec and name in examples}
    return [required, dict(examples)] if examples != required else [required]


def parliament_findings(path: Path) -> list[str]:
    from parliament import analyze_policy_string

    found: list[str] = []
    for parameters in parameter_sets(path):
        for doc in policy_documents(resolve(path, parameters)):
            if doc.kind == "trust":
                continue
            policy = analyze_policy_string(json.dumps(doc.document))
            for finding in policy.findings:
                found.append(
                    f"{doc.template}: parliament {finding.issue} in {doc.resource} ({doc.name}) with parameters "
                    f"{sorted(parameters)}: {finding.detail} {finding.location}"
                )
    return found


def lint(paths: list[Path]) -> list[str]:
    problems: list[str] = []
    for path in paths:
        problems += cfn_lint_findings(path)
        problems += parliament_findings(path)
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or templates()
    problems = lint(paths)
    for line in problems:
        print(line)
    print(f"{len(paths)} template(s), {len(problems)} finding(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
