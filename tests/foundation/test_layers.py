"""The dependency direction of include/patch_compliance/, as written in docs/architecture.md ("Layers").

Every import of every module (top-level or inside a function: a lazy import is still an edge) must point to the
same layer or a lower one; a step never imports another step (what two steps share moves down a layer); the module
graph has no cycle. The layer table is read from the document itself, so the two cannot drift apart.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "include.patch_compliance"
DOC = ROOT / "docs" / "architecture.md"
_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([a-z ]+?)\s*\|\s*(.+?)\s*\|")


def layer_table() -> list[tuple[int, str, list[str]]]:
    """(number, name, module patterns) rows of the "Layers" table, lowest first."""
    text = DOC.read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            patterns = [p.strip().strip("`") for p in match.group(3).split(",")]
            rows.append((int(match.group(1)), match.group(2), patterns))
    assert rows, f"no layer table under '## Layers' in {DOC}"
    return sorted(rows)


def modules() -> dict[str, Path]:
    base = ROOT / "include" / "patch_compliance"
    found = {}
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        if name:  # the package's own __init__ holds no code
            found[name] = path
    return found


def layer_of(module: str, table: list[tuple[int, str, list[str]]]) -> tuple[int, str]:
    """The most specific pattern wins (``transform.schema`` before ``transform.*``)."""
    best: tuple[int, int, str] | None = None
    for number, name, patterns in table:
        for pattern in patterns:
            if fnmatch.fnmatchcase(module, pattern) or module == pattern.removesuffix(".*"):
                score = len(pattern.replace("*", ""))
                if best is None or score > best[0]:
                    best = (score, number, name)
    assert best is not None, f"{module} is in no layer of {DOC}; add it to the table"
    return best[1], best[2]


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Project modules imported anywhere in the file (``from x import y`` counts y when y is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for full in names:
            if full == PACKAGE or not full.startswith(PACKAGE + "."):
                continue
            rel = full[len(PACKAGE) + 1 :]
            while rel and rel not in known:
                rel = rel.rpartition(".")[0]
            if rel:
                out.add(rel)
    return out


def step_package(module: str) -> str:
    return module.split(".", 1)[0]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def violations(edges: dict[str, set[str]], table) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        src_layer, src_name = layer_of(source, table)
        for target in sorted(targets):
            dst_layer, dst_name = layer_of(target, table)
            if dst_layer > src_layer:
                bad.append(f"{source} ({src_name}) imports {target} ({dst_name}), a higher layer")
            elif src_name == "steps" and dst_name == "steps" and step_package(source) != step_package(target):
                bad.append(f"step {source} imports another step's module {target}: move what they share down")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_every_import_points_down_or_sideways_and_steps_stay_apart() -> None:
    table = layer_table()
    edges = graph()
    assert len(edges) > 30  # the walk really found the package
    assert violations(edges, table) == []


def test_no_import_cycle_lazy_or_not() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (("collect.collector", "scan.command"), "another step's module"),
        (("scan.command", "orchestration.links"), "a higher layer"),
        (("transform.nodes", "publish.reports"), "a higher layer"),
        (("aws.clients", "config"), None),
    ],
)
def test_the_check_catches_a_backward_edge(edge, message) -> None:
    """The rule itself works: a step importing another step, a step importing the Airflow layer, tables importing
    a step are refused; an edge inside the foundation is not."""
    source, target = edge
    found = violations({source: {target}}, layer_table())
    if message is None:
        assert found == []
    else:
        assert len(found) == 1 and message in found[0]


def test_the_cycle_check_catches_a_lazy_cycle() -> None:
    (cycle,) = cycles({"steps": {"publish.reports"}, "publish.reports": {"steps"}, "vocab": set()})
    assert set(cycle) == {"steps", "publish.reports"} and cycle[0] == cycle[-1]
