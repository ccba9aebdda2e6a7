"""The MySQL IO manager against real MariaDB, in the style of dagster-duckdb-pandas' tests:
materialize twice, partitions p1, p2 then p1 again, a new column between runs, loading a subset
of columns; for both DataFrame and SqlRelation outputs."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetIn, StaticPartitionsDefinition, TableSchema, asset, materialize

from lab_assets.io_manager import KeyedRowsReplacement, MySQLIOManager, PartitionRows, SqlRelation, TableBuild
from lab_assets.mysql.resource import MySQLResource
from lab_assets.sql.statements import Column, TableDefinition, qualified_name

PARTITIONS = StaticPartitionsDefinition(["p1", "p2"])


def _resources(db):
    mysql = MySQLResource(url=db.url)
    return {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}


def _rows(db, table):
    return sorted(db.query(f"SELECT * FROM `{table}`"))


def _columns(db, table):
    return [
        r[0]
        for r in db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def _frame_asset(frame_box):
    @asset(name="frame")
    def frame() -> pd.DataFrame:
        return frame_box[0]

    return frame


def test_dataframe_materialized_twice_replaces_the_table(empty_lab_db):
    box = [pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})]
    frame = _frame_asset(box)
    materialize([frame], resources=_resources(empty_lab_db))
    box[0] = pd.DataFrame({"a": [7], "b": ["z"]})
    result = materialize([frame], resources=_resources(empty_lab_db))
    assert _rows(empty_lab_db, "frame") == [(7, "z")]
    metadata = result.asset_materializations_for_node("frame")[0].metadata
    assert metadata["dagster/row_count"].value == 1
    schema = metadata["dagster/column_schema"].value
    assert isinstance(schema, TableSchema) and [c.name for c in schema.columns] == ["a", "b"]
    assert metadata["dagster/table_name"].value == f"{empty_lab_db.name}.frame"


def test_empty_dataframe_still_creates_the_table(empty_lab_db):
    frame = _frame_asset([pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="float64")})])
    materialize([frame], resources=_resources(empty_lab_db))
    assert _columns(empty_lab_db, "frame") == ["a", "b"]
    assert _rows(empty_lab_db, "frame") == []


def test_dataframe_new_column_between_runs_is_added(empty_lab_db):
    box = [pd.DataFrame({"a": [1]})]
    frame = _frame_asset(box)
    materialize([frame], resources=_resources(empty_lab_db))
    box[0] = pd.DataFrame({"a": [2], "c": [0.5]})
    result = materialize([frame], resources=_resources(empty_lab_db))
    assert _columns(empty_lab_db, "frame") == ["a", "c"]
    assert _rows(empty_lab_db, "frame") == [(2, 0.5)]
    assert result.asset_materializations_for_node("frame")[0].metadata["columns_added"].value == "c"


def test_dataframe_static_partitions_p1_p2_then_p1_again(empty_lab_db):
    values = {"p1": [1, 2], "p2": [3]}

    @asset(partitions_def=PARTITIONS, metadata={"partition_expr": "part"})
    def parted(context) -> pd.DataFrame:
        key = context.partition_key
        return pd.DataFrame({"part": [key] * len(values[key]), "v": values[key]})

    for key in ["p1", "p2"]:
        materialize([parted], partition_key=key, resources=_resources(empty_lab_db))
    assert _rows(empty_lab_db, "parted") == [("p1", 1), ("p1", 2), ("p2", 3)]
    values["p1"] = [9]
    materialize([parted], partition_key="p1", resources=_resources(empty_lab_db))
    assert _rows(empty_lab_db, "parted") == [("p1", 9), ("p2", 3)]


def test_dataframe_loads_a_subset_of_columns(empty_lab_db):
    frame = _frame_asset([pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.1, 0.2]})])
    seen = {}

    @asset(ins={"frame": AssetIn(metadata={"columns": ["c", "a"]})})
    def downstream(frame: pd.DataFrame) -> pd.DataFrame:
        seen["frame"] = frame
        return frame

    materialize([frame, downstream], resources=_resources(empty_lab_db))
    assert list(seen["frame"].columns) == ["c", "a"]
    assert seen["frame"].sort_values("a").values.tolist() == [[0.1, 1], [0.2, 2]]


NUMBERS = TableDefinition(columns=(Column("n", "INT NOT NULL"), Column("label", "VARCHAR(20)")), primary_key=("n",))


def _numbers_relation(schema, upto, definition=NUMBERS, label="%s"):
    select = f"SELECT id AS n, CONCAT('s', %s) AS label FROM {qualified_name(schema, 'samples')} WHERE id <= %s"
    if definition is not NUMBERS:
        select = (
            f"SELECT id AS n, CONCAT('s', %s) AS label, id * 10 AS extra FROM {qualified_name(schema, 'samples')}"
            " WHERE id <= %s"
        )
    return TableBuild(select_sql=select, params=("-" + label, upto), definition=definition)


def test_relation_materialized_twice_is_swapped_in_whole(lab_db):
    upto = [5]

    @asset
    def numbers() -> TableBuild:
        return _numbers_relation(lab_db.name, upto[0])

    materialize([numbers], resources=_resources(lab_db))
    upto[0] = 3
    result = materialize([numbers], resources=_resources(lab_db))
    assert _rows(lab_db, "numbers") == [(1, "s-%s"), (2, "s-%s"), (3, "s-%s")]
    metadata = result.asset_materializations_for_node("numbers")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    tables = {r[0] for r in lab_db.query("SHOW TABLES")}
    assert not {t for t in tables if t.startswith("numbers__")}, "no staging tables are left behind"


def test_relation_new_column_between_runs(lab_db):
    definition = [NUMBERS]

    @asset
    def numbers() -> TableBuild:
        return _numbers_relation(lab_db.name, 2, definition[0])

    materialize([numbers], resources=_resources(lab_db))
    definition[0] = TableDefinition(columns=(*NUMBERS.columns, Column("extra", "INT")), primary_key=("n",))
    materialize([numbers], resources=_resources(lab_db))
    assert _columns(lab_db, "numbers") == ["n", "label", "extra"]
    assert _rows(lab_db, "numbers") == [(1, "s-%s", 10), (2, "s-%s", 20)]


def test_failed_relation_build_keeps_the_last_good_table(lab_db):
    broken = [False]

    @asset
    def numbers() -> TableBuild:
        relation = _numbers_relation(lab_db.name, 4)
        if broken[0]:
            return TableBuild(
                select_sql=relation.select_sql + " AND no_such_column = 1", params=relation.params, definition=NUMBERS
            )
        return relation

    materialize([numbers], resources=_resources(lab_db))
    before = _rows(lab_db, "numbers")
    broken[0] = True
    result = materialize([numbers], resources=_resources(lab_db), raise_on_error=False)
    assert not result.success
    assert _rows(lab_db, "numbers") == before and len(before) == 4
    assert {r[0] for r in lab_db.query("SHOW TABLES")} >= {"numbers"}
    assert not [r for r in lab_db.query("SHOW TABLES") if r[0].startswith("numbers__")]


def test_relation_partitions_p1_p2_then_p1_again_and_new_column(lab_db):
    bounds = {"p1": (1, 3), "p2": (4, 5)}
    definition = [TableDefinition(columns=(Column("part", "VARCHAR(8)"), Column("n", "INT")))]

    @asset(partitions_def=PARTITIONS, metadata={"partition_expr": "part"})
    def parted(context) -> PartitionRows:
        low, high = bounds[context.partition_key]
        extra = ", id * 2" if len(definition[0].columns) == 3 else ""
        return PartitionRows(
            select_sql=f"SELECT %s, id{extra} FROM {qualified_name(lab_db.name, 'samples')} WHERE id BETWEEN %s AND %s",
            params=(context.partition_key, low, high),
            definition=definition[0],
        )

    for key in ["p1", "p2"]:
        materialize([parted], partition_key=key, resources=_resources(lab_db))
    assert _rows(lab_db, "parted") == [("p1", 1), ("p1", 2), ("p1", 3), ("p2", 4), ("p2", 5)]
    bounds["p1"] = (10, 11)
    definition[0] = TableDefinition(columns=(*definition[0].columns, Column("twice", "INT")))
    materialize([parted], partition_key="p1", resources=_resources(lab_db))
    assert _columns(lab_db, "parted") == ["part", "n", "twice"]
    assert _rows(lab_db, "parted") == [("p1", 10, 20), ("p1", 11, 22), ("p2", 4, None), ("p2", 5, None)]


def test_relation_input_is_a_relation_and_subset_loads_only_those_columns(lab_db):
    seen = {}

    @asset
    def numbers() -> TableBuild:
        return _numbers_relation(lab_db.name, 3)

    @asset(ins={"numbers": AssetIn(metadata={"columns": ["label"]})})
    def labels(numbers: SqlRelation) -> TableBuild:
        seen["relation"] = numbers
        return TableBuild(
            select_sql=f"SELECT DISTINCT label FROM {numbers.as_from_item()} AS n",
            params=numbers.params,
            definition=TableDefinition(columns=(Column("label", "VARCHAR(20)"),)),
        )

    @asset
    def whole(numbers: SqlRelation) -> TableBuild:
        seen["whole"] = numbers
        return TableBuild(
            select_sql=f"SELECT COUNT(*) FROM {numbers.as_from_item()} AS n",
            params=numbers.params,
            definition=TableDefinition(columns=(Column("c", "INT"),)),
        )

    materialize([numbers, labels, whole], resources=_resources(lab_db))
    assert isinstance(seen["relation"], SqlRelation)
    assert "`label`" in seen["relation"].select_sql and "`n`" not in seen["relation"].select_sql
    assert seen["whole"].table_reference == (lab_db.name, "numbers")
    assert _rows(lab_db, "labels") == [("s-%s",)]
    assert _rows(lab_db, "whole") == [(3,)]


def test_dataframe_output_type_without_handler_is_a_clear_error(empty_lab_db):
    @asset
    def not_a_table() -> dict:
        return {"a": 1}

    with pytest.raises(Exception, match="does not have a handler"):
        materialize([not_a_table], resources=_resources(empty_lab_db))


def test_each_write_kind_refuses_what_it_cannot_write(lab_db):
    @asset
    def plain() -> SqlRelation:
        return SqlRelation(select_sql="SELECT 1 AS n")

    with pytest.raises(Exception, match="only says what to read"):
        materialize([plain], resources=_resources(lab_db))

    @asset(partitions_def=PARTITIONS, metadata={"partition_expr": "part"})
    def parted() -> TableBuild:
        return TableBuild(
            select_sql="SELECT 'p1' AS part", definition=TableDefinition(columns=(Column("part", "VARCHAR(8)"),))
        )

    with pytest.raises(Exception, match="is partitioned: return PartitionRows"):
        materialize([parted], partition_key="p1", resources=_resources(lab_db))

    @asset
    def unparted() -> PartitionRows:
        return PartitionRows(select_sql="SELECT 1 AS n", definition=TableDefinition(columns=(Column("n", "INT"),)))

    with pytest.raises(Exception, match="is not partitioned: return TableBuild"):
        materialize([unparted], resources=_resources(lab_db))
    tables = {r[0] for r in lab_db.query("SHOW TABLES")}
    assert not tables & {"plain", "parted", "unparted"}, "nothing was written"


def _listed_keys_replaced(lab_db, in_transaction: str, drop_after: tuple[str, ...] = ()):
    """The asset ``numbers`` again as a KeyedRowsReplacement of the keys in table ``listed``: key 2
    changed, 9 added, 4 (not produced) deleted, with ``in_transaction`` run inside its transaction."""

    @asset(name="numbers")
    def numbers_again() -> KeyedRowsReplacement:
        samples = qualified_name(lab_db.name, "samples")
        return KeyedRowsReplacement(
            select_sql=f"SELECT id AS n, CONCAT('new', id) AS label FROM {samples} WHERE id IN (2, 9)",
            definition=NUMBERS,
            keys_table="listed",
            in_transaction=(in_transaction,),
            drop_after=drop_after,
        )

    return numbers_again


def test_keyed_rows_replacement_replaces_listed_keys_in_one_transaction(lab_db):
    # Rows 1-5 built whole; then keys 2 (changed), 4 (gone from the SELECT) and 9 (new) listed.
    upto = [5]

    @asset
    def numbers() -> TableBuild:
        return _numbers_relation(lab_db.name, upto[0])

    materialize([numbers], resources=_resources(lab_db))
    lab_db.execute(
        "CREATE TABLE listed (n INT PRIMARY KEY)",
        "INSERT INTO listed VALUES (2), (4), (9)",
        "CREATE TABLE side (x INT)",
    )

    numbers_again = _listed_keys_replaced(lab_db, "INSERT INTO side VALUES (1)", drop_after=("listed",))

    result = materialize([numbers_again], resources=_resources(lab_db))
    assert _rows(lab_db, "numbers") == [(1, "s-%s"), (2, "new2"), (3, "s-%s"), (5, "s-%s"), (9, "new9")]
    metadata = result.asset_materializations_for_node("numbers")[0].metadata
    assert metadata["write"].value == "rows replaced" and metadata["rows_written"].value == 2
    assert metadata["dagster/row_count"].value == 5
    assert _rows(lab_db, "side") == [(1,)]
    assert not {r[0] for r in lab_db.query("SHOW TABLES")} & {"listed", "numbers__rows"}


def test_the_schema_setting_and_the_output_database_are_honoured(lab_db):
    def tables_in(database):
        return {
            r[0]
            for r in lab_db.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,)
            )
        }

    frame = _frame_asset([pd.DataFrame({"a": [1]})])

    @asset
    def numbers() -> TableBuild:
        return _numbers_relation(lab_db.name, 2)

    mysql = MySQLResource(url=lab_db.url)
    materialize(
        [frame, numbers],
        resources={"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql, schema=f"{lab_db.name}_io")},
    )
    assert tables_in(f"{lab_db.name}_io") == {"frame", "numbers"}
    with_output = MySQLResource(url=lab_db.url, output_database=f"{lab_db.name}_out")
    materialize([frame, numbers], resources={"mysql": with_output, "io_manager": MySQLIOManager(mysql=with_output)})
    assert tables_in(f"{lab_db.name}_out") == {"frame", "numbers"}
    assert tables_in(lab_db.name) == {"samples", "sample_measurements"}


def test_a_keyed_rows_replacement_that_fails_inside_its_transaction_changes_no_row(lab_db):
    # The delete of gone keys, the upsert and the in-transaction statements are one transaction:
    # a failure in its last statement leaves every row as it was (none deleted, none changed).
    @asset
    def numbers() -> TableBuild:
        return _numbers_relation(lab_db.name, 5)

    materialize([numbers], resources=_resources(lab_db))
    before = _rows(lab_db, "numbers")
    lab_db.execute("CREATE TABLE listed (n INT PRIMARY KEY)", "INSERT INTO listed VALUES (2), (4), (9)")

    numbers_again = _listed_keys_replaced(lab_db, "INSERT INTO no_such_table VALUES (1)")

    result = materialize([numbers_again], resources=_resources(lab_db), raise_on_error=False)
    assert not result.success
    assert _rows(lab_db, "numbers") == before, "key 4 not deleted, key 2 not changed, key 9 not added"
