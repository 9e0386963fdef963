"""The schema module, the Athena DDL and docs/data-contract.md agree (names, order, types)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from include.patch_compliance.transform.schema import (
    ALL_TABLES,
    ATHENA_PARTITION_TYPE,
    PARTITION_COLUMN,
    athena_type,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "data-contract.md"
ATHENA = ROOT / "include" / "athena"


def parse_contract() -> dict[str, list[tuple[str, str]]]:
    tables: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in CONTRACT.read_text().splitlines():
        heading = re.match(r"^### `(\w+)`$", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
            continue
        row = re.match(r"^\| `(\w+)` \| ([^|]+) \|", line)
        if row and current is not None:
            current.append((row.group(1), row.group(2).strip()))
    return tables


def parse_ddl(path: Path) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]], str]:
    sql = path.read_text()
    name = re.search(r"CREATE EXTERNAL TABLE IF NOT EXISTS `(\w+)` \(", sql).group(1)
    body = sql.split("(", 1)[1].split("\n)\n", 1)[0]
    columns = re.findall(r"^\s*`(\w+)`\s+([\w<>,]+?),?$", body, flags=re.M)
    partitions = re.findall(r"`(\w+)` (\w+)", re.search(r"PARTITIONED BY \((.*)\)", sql).group(1))
    return name, columns, partitions, sql


def test_every_table_has_ddl_and_contract():
    assert {p.stem for p in ATHENA.glob("*.sql")} == set(ALL_TABLES)
    assert set(parse_contract()) == set(ALL_TABLES)


@pytest.mark.parametrize("table", list(ALL_TABLES.values()), ids=list(ALL_TABLES))
def test_ddl_matches_schema(table):
    name, columns, partitions, sql = parse_ddl(ATHENA / f"{table.name}.sql")
    assert name == table.name
    expected = [(n, athena_type(t)) for n, t in table.columns if n != PARTITION_COLUMN]
    assert columns == expected
    assert partitions == [(PARTITION_COLUMN, ATHENA_PARTITION_TYPE)]
    # Partition projection, no crawler: every partition column is projected and in the location template.
    assert "'projection.enabled' = 'true'" in sql
    assert f"'projection.{PARTITION_COLUMN}.type' = 'date'" in sql
    assert f"/{table.name}/{PARTITION_COLUMN}=${{{PARTITION_COLUMN}}}/'" in sql
    assert "STORED AS PARQUET" in sql and f"LOCATION 's3://<bucket>/<prefix>/{table.name}/'" in sql


@pytest.mark.parametrize("table", list(ALL_TABLES.values()), ids=list(ALL_TABLES))
def test_contract_matches_schema(table):
    documented = parse_contract()[table.name]
    expected = [(n, "date (partition: string)" if n == PARTITION_COLUMN else athena_type(t)) for n, t in table.columns]
    assert documented == expected


def test_parsers_catch_a_mismatch(tmp_path):
    """The checks above are not vacuous: a renamed column in the DDL is detected."""
    sql = (ATHENA / "nodes.sql").read_text().replace("`missing_count`", "`missing_cnt`")
    path = tmp_path / "nodes.sql"
    path.write_text(sql)
    _, columns, _, _ = parse_ddl(path)
    assert ("missing_cnt", "bigint") in columns
    assert len(columns) == len(ALL_TABLES["nodes"].columns) - 1


def test_ddl_files_are_the_generated_ones():
    """include/athena/*.sql is generated from schema.py; after a schema change run scripts/generate_athena.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_athena", ROOT / "scripts" / "generate_athena.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = [p.name for p, text in module.generated().items() if not p.exists() or p.read_text() != text]
    assert stale == [], f"{stale} differ from the schema: run `python scripts/generate_athena.py`"


@pytest.mark.parametrize("table", list(ALL_TABLES.values()), ids=list(ALL_TABLES))
def test_ddl_parses_as_athena_sql(table):
    """sqlglot's Athena dialect reads every DDL back as a CREATE TABLE with the schema's columns and projection."""
    import sqlglot
    from sqlglot import exp

    (statement,) = sqlglot.parse((ATHENA / f"{table.name}.sql").read_text(), read="athena")
    assert isinstance(statement, exp.Create) and statement.args["kind"] == "TABLE"
    columns = [c.name for c in statement.this.find_all(exp.ColumnDef)]
    assert columns[: len(table.names) - 1] == [n for n in table.names if n != PARTITION_COLUMN]
    props = {p.name: p.text("value") for p in statement.find_all(exp.Property)}
    assert props.get("projection.enabled") == "true"
