"""The staged path (each collect shard staged as Parquet, the report step assembling the run) gives exactly the
tables of the whole-run JSON path (``build_tables`` on the raw documents): on the fixtures, on random fleets with
a previous snapshot, and when a target was collected twice in different shards."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.patch_compliance.transform import PreviousSnapshot, build_tables
from include.patch_compliance.transform.assemble import assemble_tables
from include.patch_compliance.transform.schema import RUN_TABLES
from include.patch_compliance.transform.staging import (
    STAGED,
    StagedRun,
    StagingError,
    parquet_bytes,
    stage_commands,
    stage_tables,
)
from tests.fixtures.raw.builders import (
    NOW,
    command_record,
    instance_info,
    patch,
    patch_state,
    raw_doc,
    target,
    unreachable_doc,
)
from tests.transform.test_transform_properties import fleet_spec, make_fleet
from tests.transform.test_transform_tables import SLA, I, fleet_docs

RUN = {"run_id": "r1", "dag_id": "patch_compliance_collect"}


def staged_files(docs, commands, directory, shard_size: int) -> StagedRun:
    """Stage ``docs`` in shards of ``shard_size`` documents through Parquet files, as the collect tasks do; each
    command record goes to the first shard holding its target (its own shard, in a real run)."""
    shards = [docs[i : i + shard_size] for i in range(0, len(docs), shard_size)] or [[]]
    owner: dict[tuple[str, str], int] = {}
    for number, shard in enumerate(shards):
        for doc in shard:
            owner.setdefault((doc["target"]["account_id"], doc["target"]["region"]), number)
    records: list[list[dict]] = [[] for _ in shards]
    for rec in commands:
        records[owner.get((rec["account_id"], rec["region"]), 0)].append(rec)
    out = []
    for number, (shard, recs) in enumerate(zip(shards, records, strict=True)):
        tables = stage_tables(shard, recs, now=NOW, sla_days=SLA, stale_after_days=7)
        folder = directory / f"shard={number:04d}"
        folder.mkdir(parents=True)
        files = {}
        for name, table in tables.items():
            (folder / f"{name}.parquet").write_bytes(parquet_bytes(table))
            files[name] = str(folder / f"{name}.parquet")
        out.append(files)
    return StagedRun(tuple(out))


def assert_same_tables(docs, commands, directory, shard_size, previous=None, now=NOW):
    kwargs = {**RUN, "snapshot_date": now.date(), "now": now, "sla_days": SLA, "stale_after_days": 7}
    expected = build_tables(list(docs), list(commands), previous, **kwargs)
    staged = staged_files(docs, commands, directory, shard_size)
    got = assemble_tables(staged, previous, **kwargs)
    assert list(got) == list(RUN_TABLES)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
    return expected


@pytest.mark.parametrize("shard_size", [1, 2])
def test_fixture_fleet_staged_equals_the_json_path(tmp_path, shard_size):
    docs, commands = fleet_docs()
    tables = assert_same_tables(docs, commands, tmp_path, shard_size)
    assert len(tables["nodes"]) and len(tables["patches"]) and len(tables["compliance_items"])


@pytest.mark.parametrize("shard_size", [1, 2, 3])
def test_a_target_collected_twice_in_different_shards_counts_once(tmp_path, shard_size):
    older = raw_doc(info=[instance_info(I[1])], states=[patch_state(I[1], missing=1)], patches={I[1]: [patch("a")]})
    newer = {
        **raw_doc(info=[instance_info(I[1]), instance_info(I[2])], states=[patch_state(I[1])]),
        "collected_at": (NOW + timedelta(minutes=5)).isoformat(),
    }
    tables = assert_same_tables([newer, unreachable_doc(), older], [], tmp_path, shard_size)
    assert sorted(tables["nodes"]["instance_id"]) == [I[1], I[2]] and tables["patches"].empty


def test_a_shard_that_keeps_part_of_its_documents_is_read_with_a_row_filter(tmp_path):
    """The older copy of a target shares its shard with another target: that shard is read filtered to the other
    document; the shard holding the newer copy keeps everything and is read whole (None)."""
    older = raw_doc(info=[instance_info(I[1])], states=[patch_state(I[1], missing=1)], patches={I[1]: [patch("a")]})
    newer = {
        **raw_doc(info=[instance_info(I[1]), instance_info(I[2])], states=[patch_state(I[1])]),
        "collected_at": (NOW + timedelta(minutes=5)).isoformat(),
    }
    docs = [older, unreachable_doc(target("444444444444")), newer]
    tables = assert_same_tables(docs, [], tmp_path / "a", 2)
    assert sorted(tables["nodes"]["instance_id"].dropna()) == [I[1], I[2]] and tables["patches"].empty
    _, docs = staged_files(docs, [], tmp_path / "b", 2).one_doc_per_target()
    assert list(docs) == [0, 1] and docs[1] is None
    assert docs[0] is not None and docs[0].tolist() == [1]  # the unreachable target's document only


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(fleet_spec, fleet_spec, st.integers(1, 3), st.randoms(use_true_random=False))
def test_random_fleets_with_a_previous_snapshot_staged_equal_the_json_path(tmp_path_factory, before, now, size, rnd):
    day1 = NOW - timedelta(days=rnd.choice([1, 9, 40]))
    docs, commands = make_fleet(before)
    first = build_tables(
        docs, commands, None, **RUN, snapshot_date=day1.date(), now=day1, sla_days=SLA, stale_after_days=7
    )
    previous = PreviousSnapshot("r0", day1.date(), first["nodes"], first["patches"])
    docs, commands = make_fleet(now)
    rnd.shuffle(docs)
    assert_same_tables(docs, commands, tmp_path_factory.mktemp("staged"), size, previous)


def test_no_staged_shard_gives_empty_tables_with_the_schema():
    tables = assemble_tables(
        StagedRun(()), None, **RUN, snapshot_date=NOW.date(), now=NOW, sla_days=SLA, stale_after_days=7
    )
    for name, frame in tables.items():
        assert frame.empty and list(frame.columns) == RUN_TABLES[name].names


def test_a_shard_with_only_command_records_adds_its_commands(tmp_path):
    docs, commands = fleet_docs()
    staged = staged_files(docs, [], tmp_path, 2)
    with_commands = StagedRun((*staged.shards, {"commands": stage_commands(commands)}))
    kwargs = {**RUN, "snapshot_date": NOW.date(), "now": NOW, "sla_days": SLA, "stale_after_days": 7}
    tables = assemble_tables(with_commands, None, **kwargs)
    expected = build_tables(docs, commands, None, **kwargs)["commands"]
    pd.testing.assert_frame_equal(tables["commands"], expected)
    assert tables["nodes"]["command_id"].isna().all()  # the nodes were staged without them


def test_staged_parquet_is_stable_and_carries_the_staged_schema(tmp_path):
    docs, commands = fleet_docs()
    first = stage_tables(docs, commands, now=NOW, sla_days=SLA, stale_after_days=7)
    again = stage_tables(docs, commands, now=NOW + timedelta(days=3), sla_days=SLA, stale_after_days=7)
    for name, table in first.items():
        assert table.schema == STAGED[name].arrow(), name
        assert parquet_bytes(table) == parquet_bytes(again[name]), name  # no clock in what is staged
    assert "first_seen" not in first["patches"].column_names and "coverage_status" not in first["nodes"].column_names


def test_a_staged_table_with_another_schema_is_refused(tmp_path):
    docs, commands = fleet_docs()
    staged = staged_files(docs, commands, tmp_path, 5)
    nodes = pq.read_table(staged.shards[0]["nodes"]).drop_columns(["ping_status"])
    pq.write_table(nodes, staged.shards[0]["nodes"])
    with pytest.raises(StagingError, match="staged table nodes of shard 0 .* re-run that shard's collect task"):
        assemble_tables(staged, None, **RUN, snapshot_date=NOW.date(), now=NOW, sla_days=SLA, stale_after_days=7)


def test_only_the_asked_columns_and_documents_are_read(tmp_path):
    docs, commands = fleet_docs()
    staged = staged_files(docs, commands, tmp_path, 1)
    table = staged.table("nodes", ["instance_id", "ping_status"], {0: pa.array([0]).to_numpy()})
    assert table.column_names == ["instance_id", "ping_status"]
    assert table.num_rows == 9  # the first document's 8 managed + 1 unmanaged nodes, not the unreachable row


def test_bad_run_arguments_name_the_field():
    with pytest.raises(ValueError, match="timezone-aware"):
        assemble_tables(
            StagedRun(()),
            None,
            **RUN,
            snapshot_date=NOW.date(),
            now=NOW.replace(tzinfo=None),
            sla_days=SLA,
            stale_after_days=7,
        )
    with pytest.raises(ValueError, match="sla_days needs"):
        assemble_tables(StagedRun(()), None, **RUN, snapshot_date=NOW.date(), now=NOW, sla_days={}, stale_after_days=7)


def test_command_records_of_the_fixture_fleet_stage_as_one_table():
    _, commands = fleet_docs()
    table = stage_commands(commands + [command_record(I[9])])
    assert table.schema == STAGED["commands"].arrow() and table.num_rows == len(commands) + 1
