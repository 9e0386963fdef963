"""Rewrite include/athena/<table>.sql from include/patch_compliance/transform/schema.py (run after a schema change).

Usage: ``python scripts/generate_athena.py`` rewrites the committed DDL (the static schema);
``python scripts/generate_athena.py --group-by-tags Team,Environment`` prints nodes.sql with the tag_<key> columns
of those keys (reports.group_by_tags), in that order, after the static columns.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.patch_compliance.transform.athena import create_table  # noqa: E402
from include.patch_compliance.transform.schema import ALL_TABLES  # noqa: E402
from include.patch_compliance.transform.tags import nodes_table  # noqa: E402

ATHENA_DIR = ROOT / "include" / "athena"


def generated() -> dict[Path, str]:
    return {ATHENA_DIR / f"{name}.sql": create_table(table) for name, table in ALL_TABLES.items()}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--group-by-tags"] and len(argv) == 2:
        keys = [k.strip() for k in argv[1].split(",") if k.strip()]
        print(create_table(nodes_table(keys)), end="")
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path, text in generated().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
