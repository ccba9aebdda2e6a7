"""The official Dagster database IO managers' own pandas type-handler tests, ported to
MySQLIOManager on the real test server (issue 15): dagster-duckdb-pandas
(dagster_duckdb_pandas_tests/test_type_handler.py, test_dynamic_partition.py),
dagster-snowflake-pandas (dagster_snowflake_pandas_tests/test_snowflake_pandas_type_handler.py),
dagster-gcp-pandas (dagster_gcp_pandas_tests/bigquery/test_type_handler.py) and
dagster-deltalake-pandas (dagster_deltalake_pandas_tests/test_type_handler.py), each in the
dagster-io/dagster repository.

Each case keeps its peer's assets and assertions. A case that several peers write differently
(column case, time values, ``partition_expr``) is one test with one parameter per peer
(``[duckdb]``, ``[snowflake]``, ...); a case they write alike is one test, its docstring naming
each peer's. The changes, the same everywhere:

* one IO manager per case (the peers also run a function-style ``*_io_manager.configured(...)``
  twin, which lab_assets does not have), on the test's own database: the URL's database is the
  default schema, and every schema the peer names (``my_schema``, ``a_df``, ...) is prefixed with
  the test database's name (:func:`_schema`) so the session's cleanup (conftest.py) drops it;
* the table is read back with the driver (:func:`_select_all`), as the peers read with their
  database's own client; the temporary tables of the Snowflake/BigQuery cases are fixed names
  here (each test has its own databases);
* SQL in ``partition_expr`` is MySQL's: ``CAST(time AS DATETIME)`` for ``CAST(time as TIMESTAMP)``
  (MySQL's CAST has no TIMESTAMP), ``STR_TO_DATE(`key`, '%Y-%m-%d')`` for DuckDB's
  ``strptime(key, '%Y-%m-%d')``, ``TIMESTAMP(`key`)`` for Snowflake's ``TO_TIMESTAMP(key)`` and
  BigQuery's ``TIMESTAMP(key)`` (KEY is a reserved word in MySQL, hence the backticks);
* ``context.partition_key`` and ``context.op_execution_context.op_config`` (as the deltalake
  tests write them) where older peers call ``asset_partition_key_for_output()`` and ``op_config``.

Where a peer behaviour is deliberately different here, the test says why (and README.md's IO
manager section). After the ports: what issue 15 adds (two keys with one table name, column types
that round-trip, a partition replaced in one transaction).
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    IOManagerDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    Out,
    StaticPartitionsDefinition,
    TableColumn,
    TableSchema,
    TimeWindowPartitionMapping,
    asset,
    build_input_context,
    build_output_context,
    fs_io_manager,
    graph,
    instance_for_test,
    job,
    materialize,
    op,
)
from dagster._check import CheckError
from dagster._core.storage.db_io_manager import TableSlice

from lab_assets.io_manager import DataFrameTypeHandler, MySQLDbClient, MySQLIOManager
from lab_assets.mysql.resource import MySQLResource


@pytest.fixture
def db(empty_lab_db):
    """The test's database: the URL's database, so the default schema of these IO managers."""
    return empty_lab_db


def _schema(db, name: str) -> str:
    """The peer's schema ``name`` as a database of this test (dropped with the session's)."""
    return f"{db.name}_{name}"


def _io_manager(db, **config: Any) -> MySQLIOManager:
    return MySQLIOManager(mysql=MySQLResource(url=db.url), **config)


def _select_all(db, schema: str, table: str) -> pd.DataFrame:
    """``SELECT *`` read with the driver alone, not through the IO manager."""
    with db.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM `{schema}`.`{table}`")
        return pd.DataFrame([tuple(r) for r in cursor.fetchall()], columns=[d[0] for d in cursor.description])


def _config(name: str, **values: str) -> dict:
    return {"ops": {name: {"config": values}}}


def _day(key: str) -> dt.date:
    """deltalake's ``datetime.strptime(partition_key, DELTA_DATE_FORMAT).date()``."""
    return dt.datetime.strptime(key, "%Y-%m-%d").date()


# ---------------------------------------------------------------------------------------------
# dagster-duckdb-pandas and dagster-deltalake-pandas: the same unpartitioned cases
# ---------------------------------------------------------------------------------------------


def test_io_manager_with_ops(db):
    """test_duckdb_io_manager_with_ops / test_deltalake_io_manager_with_ops: an op's output is the
    table ``result`` in the schema its metadata names."""

    @op(out=Out(metadata={"schema": _schema(db, "a_df")}))
    def a_df() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})

    @op(out=Out(metadata={"schema": _schema(db, "add_one")}))
    def add_one(df: pd.DataFrame):
        return df + 1

    @graph
    def add_one_to_dataframe():
        add_one(a_df())

    job_def = add_one_to_dataframe.to_job(resource_defs={"io_manager": _io_manager(db)})
    # run the job twice to ensure that tables get properly deleted
    for _ in range(2):
        res = job_def.execute_in_process()
        assert res.success
        assert _select_all(db, _schema(db, "a_df"), "result")["a"].tolist() == [1, 2, 3]
        assert _select_all(db, _schema(db, "add_one"), "result")["a"].tolist() == [2, 3, 4]


def _b_df_assets(db, columns: list[str] | None = None):
    prefix = [_schema(db, "my_schema")]

    @asset(key_prefix=prefix)
    def b_df() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})

    if columns is None:

        @asset(key_prefix=prefix)
        def b_plus_one(b_df: pd.DataFrame) -> pd.DataFrame:
            return b_df + 1

        return b_df, b_plus_one

    @asset(key_prefix=prefix, ins={"b_df": AssetIn("b_df", metadata={"columns": columns})})
    def b_plus_one_columns(b_df: pd.DataFrame) -> pd.DataFrame:
        return b_df + 1

    return b_df, b_plus_one_columns


def test_io_manager_with_assets(db):
    """test_duckdb_io_manager_with_assets / test_deltalake_io_manager_with_assets: the key prefix
    is the schema."""
    schema = _schema(db, "my_schema")
    # materialize asset twice to ensure that tables get properly deleted
    for _ in range(2):
        res = materialize(_b_df_assets(db), resources={"io_manager": _io_manager(db)})
        assert res.success
        assert _select_all(db, schema, "b_df")["a"].tolist() == [1, 2, 3]
        assert _select_all(db, schema, "b_plus_one")["a"].tolist() == [2, 3, 4]


def test_io_manager_with_schema(db):
    """test_duckdb_io_manager_with_schema / test_deltalake_io_manager_with_schema: the IO
    manager's ``schema`` setting places unprefixed assets (issue 15: it was ignored)."""

    @asset
    def my_df() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})

    @asset
    def my_df_plus_one(my_df: pd.DataFrame) -> pd.DataFrame:
        return my_df + 1

    schema = _schema(db, "custom_schema")
    # materialize asset twice to ensure that tables get properly deleted
    for _ in range(2):
        res = materialize([my_df, my_df_plus_one], resources={"io_manager": _io_manager(db, schema=schema)})
        assert res.success
        assert _select_all(db, schema, "my_df")["a"].tolist() == [1, 2, 3]
        assert _select_all(db, schema, "my_df_plus_one")["a"].tolist() == [2, 3, 4]
    assert not db.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE 'my%%'",
        (db.name,),
    ), "nothing lands in the URL's database"


def test_loading_columns(db):
    """test_loading_columns (duckdb, deltalake): ``columns`` input metadata loads only those."""
    schema = _schema(db, "my_schema")
    # materialize asset twice to ensure that tables get properly deleted
    for _ in range(2):
        res = materialize(_b_df_assets(db, columns=["a"]), resources={"io_manager": _io_manager(db)})
        assert res.success
        assert _select_all(db, schema, "b_df")["a"].tolist() == [1, 2, 3]
        out_df = _select_all(db, schema, "b_plus_one_columns")
        assert out_df["a"].tolist() == [2, 3, 4]
        assert out_df.shape[1] == 1


def test_not_supported_type(db):
    """test_not_supported_type (duckdb, deltalake): only the IO manager's name in the message."""

    @op
    def non_supported_type() -> int:
        return 1

    @graph
    def not_supported():
        non_supported_type()

    job_def = not_supported.to_job(resource_defs={"io_manager": _io_manager(db)})
    with pytest.raises(CheckError, match="MySQLIOManager does not have a handler for type '<class 'int'>'"):
        job_def.execute_in_process()


# ---------------------------------------------------------------------------------------------
# Snowflake and BigQuery: an op writing into a named schema, timestamps, asset metadata
# ---------------------------------------------------------------------------------------------


def test_io_manager_with_pandas(db):
    """test_io_manager_with_snowflake_pandas / test_io_manager_with_bigquery_pandas: written by
    one op under its output name in the metadata's schema, read back by the next; twice."""
    table_name = "test_io_manager"

    @op(out={table_name: Out(io_manager_key="mysql", metadata={"schema": _schema(db, "SCHEMA")})})
    def emit_pandas_df() -> pd.DataFrame:
        return pd.DataFrame({"foo": ["bar", "baz"], "quux": [1, 2]})

    @op
    def read_pandas_df(df: pd.DataFrame) -> None:
        assert set(df.columns) == {"foo", "quux"}
        assert len(df.index) == 2

    @job(resource_defs={"mysql": _io_manager(db)})
    def io_manager_test_job():
        read_pandas_df(emit_pandas_df())

    assert io_manager_test_job.execute_in_process().success
    # run again to ensure table is properly deleted
    assert io_manager_test_job.execute_in_process().success
    assert len(_select_all(db, _schema(db, "SCHEMA"), table_name)) == 2


def test_io_manager_with_timestamp_data(db):
    """test_io_manager_with_snowflake_pandas_timestamp_data / test_io_manager_with_timestamp_
    conversion: times with milliseconds come back equal (DATETIME(6)). Deliberately different:
    the Snowflake case's second half (``store_timestamps_as_strings=True`` refused on a TIMESTAMP
    column) has no counterpart: times are always stored as DATETIME(6), there is no such setting."""
    table_name = "test_io_manager"
    time_df = pd.DataFrame(
        {
            "foo": ["bar", "baz"],
            "date": [pd.Timestamp("2017-01-01T12:30:45.350"), pd.Timestamp("2017-02-01T12:30:45.350")],
        }
    )

    @op(out={table_name: Out(io_manager_key="mysql", metadata={"schema": _schema(db, "SCHEMA")})})
    def emit_time_df(_):
        return time_df

    @op
    def read_time_df(df: pd.DataFrame):
        assert set(df.columns) == {"foo", "date"}
        assert (df["date"] == time_df["date"]).all()

    @job(resource_defs={"mysql": _io_manager(db)})
    def io_manager_timestamp_test_job():
        read_time_df(emit_time_df())

    assert io_manager_timestamp_test_job.execute_in_process().success


def test_io_manager_asset_metadata(db):
    """bigquery test_io_manager_asset_metadata: the materialization names the table. Deliberately
    different: Dagster 1.13 calls the entry ``dagster/table_name`` (it was
    ``dagster/relation_identifier``), and a MySQL table is ``database.table`` (no project)."""
    schema = _schema(db, "SCHEMA")

    @asset(key_prefix=schema, name="test_io_manager")
    def my_pandas_df() -> pd.DataFrame:
        return pd.DataFrame({"foo": ["bar", "baz"], "quux": [1, 2]})

    res = materialize([my_pandas_df], resources={"io_manager": _io_manager(db)})
    assert res.success
    mats = res.get_asset_materialization_events()
    assert len(mats) == 1
    assert mats[0].materialization.metadata["dagster/table_name"].value == f"{schema}.test_io_manager"


# ---------------------------------------------------------------------------------------------
# Snowflake's unit cases, on the server instead of mocks
# ---------------------------------------------------------------------------------------------


def test_handle_output(db):
    """snowflake test_handle_output, with a real connection instead of a MagicMock. Deliberately
    different: the metadata are Dagster's standard entries (``dagster/row_count``,
    ``dagster/column_schema`` with the SQL types the columns got) instead of Snowflake's
    ``row_count`` and ``dataframe_columns`` with pandas dtypes."""
    handler = DataFrameTypeHandler()
    df = pd.DataFrame([{"col1": "a", "col2": 1}])
    table_slice = TableSlice(table="my_table", schema=db.name, database=db.name, columns=None, partition_dimensions=[])
    with MySQLResource(url=db.url).connect() as connection:
        metadata = handler.handle_output(build_output_context(), table_slice, df, connection)
    assert metadata["dagster/row_count"] == 1
    assert metadata["dagster/column_schema"] == TableSchema(
        columns=[TableColumn("col1", "TEXT"), TableColumn("col2", "BIGINT")]
    )
    assert _select_all(db, db.name, "my_table").values.tolist() == [["a", 1]]


def test_load_input(db):
    """snowflake test_load_input, on a real table instead of a patched ``pd.read_sql``: the SELECT
    and the frame. Deliberately different: column names come back as written (``COL1``), not
    lower-cased; Snowflake lower-cases because it upper-cases unquoted names, MySQL keeps them."""
    db.execute("CREATE TABLE my_table (COL1 TEXT, COL2 BIGINT)", "INSERT INTO my_table VALUES ('a', 1)")
    table_slice = TableSlice(table="my_table", schema=db.name, database=db.name, columns=None, partition_dimensions=[])
    # the statement the loader runs, as the peer checks read_sql's
    assert MySQLDbClient.get_select_statement(table_slice) == f"SELECT * FROM `{db.name}`.`my_table`"
    with MySQLResource(url=db.url).connect() as connection:
        df = DataFrameTypeHandler().load_input(build_input_context(), table_slice, connection)
    assert df.equals(pd.DataFrame([{"COL1": "a", "COL2": 1}]))


def _round_trip(db, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` written and loaded back by the IO manager."""
    loaded = {}

    @asset(name=name)
    def written() -> pd.DataFrame:
        return frame

    @asset(ins={"written": AssetIn(name)})
    def reader(written: pd.DataFrame) -> None:
        loaded["frame"] = written

    materialize([written, reader], resources={"io_manager": _io_manager(db)})
    return loaded["frame"]


def test_type_conversions(db):
    """snowflake test_type_conversions, through the table instead of Snowflake's private
    string-conversion helpers (there are none here: times are stored as times): numbers stay
    numbers, times with fractions of a second come back equal, text that is not a time stays text."""
    no_time = pd.Series([1, 2, 3, 4, 5])
    with_time = pd.Series(
        [
            pd.Timestamp("2017-01-01T12:30:45.35"),
            pd.Timestamp("2017-02-01T12:30:45.35"),
            pd.Timestamp("2017-03-01T12:30:45.35"),
        ]
    )
    string_data = pd.Series(["not", "a", "timestamp"])
    converted = _round_trip(db, pd.DataFrame({"no_time": no_time}), "no_time")["no_time"]
    assert (converted == no_time).all()
    time_converted = _round_trip(db, pd.DataFrame({"with_time": with_time}), "with_time")["with_time"]
    assert (with_time == time_converted).all()
    strings = _round_trip(db, pd.DataFrame({"string_data": string_data}), "string_data")["string_data"]
    assert (strings == string_data).all()


def test_timezone_conversions(db):
    """snowflake test_timezone_conversions, through the table: Snowflake localizes naive times to
    UTC and stores them without a zone (TIMESTAMP_NTZ), so they load back naive. Same here: naive
    times load back unchanged, and tz-aware ones are stored converted to UTC in DATETIME(6) (MySQL
    has no zone type) and load back naive UTC, as Snowflake's do."""
    no_time = pd.Series([1, 2, 3, 4, 5])
    assert (_round_trip(db, pd.DataFrame({"v": no_time}), "no_time")["v"] == no_time).all()
    with_time = pd.Series(
        [
            pd.Timestamp("2017-01-01T12:30:45.35"),
            pd.Timestamp("2017-02-01T12:30:45.35"),
            pd.Timestamp("2017-03-01T12:30:45.35"),
        ]
    )
    time_converted = _round_trip(db, pd.DataFrame({"v": with_time.dt.tz_localize("UTC")}), "utc")["v"]
    assert (with_time == time_converted).all()
    in_kolkata = with_time.dt.tz_localize("Asia/Kolkata")
    kolkata_converted = _round_trip(db, pd.DataFrame({"v": in_kolkata}), "kolkata")["v"]
    assert (in_kolkata.dt.tz_convert("UTC").dt.tz_localize(None) == kolkata_converted).all()
    assert _select_all(db, db.name, "kolkata")["v"][0] == dt.datetime(2017, 1, 1, 7, 0, 45, 350000)


def test_build_mysql_io_manager(db):
    """snowflake test_build_snowflake_pandas_io_manager: the IO manager is an
    IOManagerDefinition (there is no build_*_io_manager function here)."""
    assert isinstance(_io_manager(db).get_resource_definition(), IOManagerDefinition)


# ---------------------------------------------------------------------------------------------
# Partitions: time window, static, multi, dynamic, self-dependent, multi to single dimension
# ---------------------------------------------------------------------------------------------

# How each peer writes its partitioned frames: column names (Snowflake and BigQuery upper-case
# theirs), the time value, and the partition_expr.
UPPER = {"time": "TIME", "color": "COLOR", "a": "A", "b": "B"}


def _cased(peer: str, name: str) -> str:
    return UPPER.get(name, name) if peer in ("snowflake", "bigquery") else name


def _time_value(peer: str, key: str) -> Any:
    return _day(key) if peer == "deltalake" else pd.Timestamp(key)


def _downstream(peer: str, partitions_def, schema: str, table_name: str) -> list:
    """Snowflake's and BigQuery's ``downstream_partitioned`` (stored with fs_io_manager): it loads
    the partition just written and finds its 3 rows. DuckDB and deltalake have none."""
    if peer not in ("snowflake", "bigquery"):
        return []

    @asset(
        partitions_def=partitions_def,
        key_prefix=[schema],
        ins={"df": AssetIn([schema, table_name])},
        io_manager_key="fs_io",
    )
    def downstream_partitioned(df: pd.DataFrame) -> None:
        # assert that we only get the columns created in the partitioned asset
        assert len(df.index) == 3

    return [downstream_partitioned]


@pytest.mark.parametrize("peer", ["duckdb", "snowflake", "bigquery", "deltalake"])
def test_time_window_partitioned_asset(db, peer):
    """test_time_window_partitioned_asset of each peer: 2022-01-01, 2022-01-02, then 2022-01-01
    again replaces its rows. DuckDB, Snowflake and BigQuery write pd.Timestamp values (DATETIME(6)
    column), deltalake ``datetime.date`` (DATE column; issue 15: it was TEXT, so the window
    compared strings, the third run appended and loading found nothing). Snowflake and BigQuery
    also load each partition downstream (3 rows); BigQuery checks dagster/partition_row_count."""
    schema = _schema(db, "SCHEMA" if peer in ("snowflake", "bigquery") else "my_schema")
    table_name = "daily_partitioned"
    partitions_def = DailyPartitionsDefinition(start_date="2022-01-01")
    time_col, a_col, b_col = (_cased(peer, c) for c in ("time", "a", "b"))

    @asset(
        partitions_def=partitions_def,
        key_prefix=[schema],
        metadata={"partition_expr": "time"},
        config_schema={"value": str},
        name=table_name,
    )
    def daily_partitioned(context: AssetExecutionContext) -> pd.DataFrame:
        partition = _time_value(peer, context.partition_key)
        value = context.op_execution_context.op_config["value"]
        return pd.DataFrame({time_col: [partition, partition, partition], a_col: [value] * 3, b_col: [4, 5, 6]})

    assets = [daily_partitioned, *_downstream(peer, partitions_def, schema, table_name)]
    resource_defs = {"io_manager": _io_manager(db), "fs_io": fs_io_manager}
    op_name = f"{schema}__{table_name}"

    result = materialize(
        assets, partition_key="2022-01-01", resources=resource_defs, run_config=_config(op_name, value="1")
    )
    if peer == "bigquery":
        materialization = result.asset_materializations_for_node(op_name)[0]
        assert materialization.metadata["dagster/partition_row_count"].value == 3
    assert _select_all(db, schema, table_name)[a_col].tolist() == ["1", "1", "1"]

    materialize(assets, partition_key="2022-01-02", resources=resource_defs, run_config=_config(op_name, value="2"))
    assert sorted(_select_all(db, schema, table_name)[a_col].tolist()) == ["1", "1", "1", "2", "2", "2"]

    materialize(assets, partition_key="2022-01-01", resources=resource_defs, run_config=_config(op_name, value="3"))
    assert sorted(_select_all(db, schema, table_name)[a_col].tolist()) == ["2", "2", "2", "3", "3", "3"]


def test_load_partitioned_asset(db):
    """deltalake test_load_partitioned_asset: a downstream asset of the same partitions loads just
    the partition's 3 rows (``datetime.date`` partition column), on the first day and the next."""
    schema = _schema(db, "my_schema")
    partitions_def = DailyPartitionsDefinition(start_date="2022-01-01")

    @asset(
        partitions_def=partitions_def,
        key_prefix=[schema],
        metadata={"partition_expr": "time"},
        config_schema={"value": str},
    )
    def daily_partitioned(context: AssetExecutionContext) -> pd.DataFrame:
        partition = _day(context.partition_key)
        value = context.op_execution_context.op_config["value"]
        return pd.DataFrame({"time": [partition, partition, partition], "a": [value] * 3, "b": [4, 5, 6]})

    @asset(partitions_def=partitions_def, key_prefix=[schema], metadata={"partition_expr": "time"})
    def load_partitioned(context, daily_partitioned: pd.DataFrame) -> pd.DataFrame:
        return daily_partitioned

    for key, value in [("2022-01-01", "1"), ("2022-01-02", "2")]:
        res = materialize(
            [daily_partitioned, load_partitioned],
            partition_key=key,
            resources={"io_manager": _io_manager(db)},
            run_config=_config(f"{schema}__daily_partitioned", value=value),
        )
        assert res.success
        table = res.asset_value([schema, "load_partitioned"])
        assert table.shape[0] == 3
        assert table["time"].tolist() == [_day(key)] * 3, "dates come back as dates"


@pytest.mark.parametrize("peer", ["duckdb", "snowflake", "bigquery", "deltalake"])
def test_static_partitioned_asset(db, peer):
    """test_static_partitioned_asset of each peer: red, blue, then red again replaces its rows."""
    schema = _schema(db, "SCHEMA" if peer in ("snowflake", "bigquery") else "my_schema")
    table_name = "static_partitioned"
    partitions_def = StaticPartitionsDefinition(["red", "yellow", "blue"])
    color_col, a_col, b_col = (_cased(peer, c) for c in ("color", "a", "b"))

    @asset(
        partitions_def=partitions_def,
        key_prefix=[schema],
        metadata={"partition_expr": "color"},
        config_schema={"value": str},
        name=table_name,
    )
    def static_partitioned(context: AssetExecutionContext) -> pd.DataFrame:
        partition = context.partition_key
        value = context.op_execution_context.op_config["value"]
        return pd.DataFrame({color_col: [partition] * 3, a_col: [value] * 3, b_col: [4, 5, 6]})

    assets = [static_partitioned, *_downstream(peer, partitions_def, schema, table_name)]
    resource_defs = {"io_manager": _io_manager(db), "fs_io": fs_io_manager}
    op_name = f"{schema}__{table_name}"

    materialize(assets, partition_key="red", resources=resource_defs, run_config=_config(op_name, value="1"))
    assert _select_all(db, schema, table_name)[a_col].tolist() == ["1", "1", "1"]
    materialize(assets, partition_key="blue", resources=resource_defs, run_config=_config(op_name, value="2"))
    assert sorted(_select_all(db, schema, table_name)[a_col].tolist()) == ["1", "1", "1", "2", "2", "2"]
    materialize(assets, partition_key="red", resources=resource_defs, run_config=_config(op_name, value="3"))
    assert sorted(_select_all(db, schema, table_name)[a_col].tolist()) == ["2", "2", "2", "3", "3", "3"]


# How each peer writes the multi-partitioned frame: the time column's values and partition_expr.
MULTI_PEERS: dict[str, tuple[Callable[[str], Any], dict[str, str]]] = {
    # text "2022-01-01" in the table, compared as a time by the expression
    "duckdb": (str, {"time": "CAST(time AS DATETIME)", "color": "color"}),
    "snowflake": (str, {"time": "CAST(time AS DATETIME)", "color": "color"}),
    # upper-case columns, pd.Timestamp values
    "bigquery": (pd.Timestamp, {"time": "TIME", "color": "COLOR"}),
    # datetime.date values
    "deltalake": (_day, {"time": "time", "color": "color"}),
}


@pytest.mark.parametrize("peer", list(MULTI_PEERS))
def test_multi_partitioned_asset(db, peer):
    """test_multi_partitioned_asset of each peer: (2022-01-01, red), (2022-01-01, blue),
    (2022-01-02, red), then (2022-01-01, red) again replaces only its rows. Snowflake's frame has
    lower-case columns and reads ``A`` (Snowflake upper-cases): read as ``a`` here."""
    schema = _schema(db, "SCHEMA" if peer in ("snowflake", "bigquery") else "my_schema")
    table_name = "multi_partitioned"
    time_value, partition_expr = MULTI_PEERS[peer]
    color_col, time_col, a_col = (_cased(peer, c) for c in ("color", "time", "a"))
    partitions_def = MultiPartitionsDefinition(
        {
            "time": DailyPartitionsDefinition(start_date="2022-01-01"),
            "color": StaticPartitionsDefinition(["red", "yellow", "blue"]),
        }
    )

    @asset(
        partitions_def=partitions_def,
        key_prefix=[schema],
        metadata={"partition_expr": partition_expr},
        config_schema={"value": str},
        name=table_name,
    )
    def multi_partitioned(context) -> pd.DataFrame:
        partition = context.partition_key.keys_by_dimension
        value = context.op_execution_context.op_config["value"]
        return pd.DataFrame(
            {
                color_col: [partition["color"]] * 3,
                time_col: [time_value(partition["time"])] * 3,
                a_col: [value] * 3,
            }
        )

    assets = [multi_partitioned, *_downstream(peer, partitions_def, schema, table_name)]
    resource_defs = {"io_manager": _io_manager(db), "fs_io": fs_io_manager}
    op_name = f"{schema}__{table_name}"

    def run(time: str, color: str, value: str, with_downstream: bool = True) -> list[str]:
        materialize(
            assets if with_downstream else assets[:1],
            partition_key=MultiPartitionKey({"time": time, "color": color}),
            resources=resource_defs,
            run_config=_config(op_name, value=value),
        )
        return sorted(_select_all(db, schema, table_name)[a_col].tolist())

    assert run("2022-01-01", "red", "1") == ["1", "1", "1"]
    assert run("2022-01-01", "blue", "2") == ["1", "1", "1", "2", "2", "2"]
    assert run("2022-01-02", "red", "3") == ["1", "1", "1", "2", "2", "2", "3", "3", "3"]
    assert run("2022-01-01", "red", "4", with_downstream=peer != "bigquery") == [
        *["2", "2", "2"],
        *["3", "3", "3"],
        *["4", "4", "4"],
    ]


@pytest.mark.parametrize("peer", ["duckdb", "snowflake", "bigquery", "deltalake"])
def test_dynamic_partition(db, peer):
    """test_dynamic_partition (duckdb, deltalake) / test_dynamic_partitions (snowflake) /
    test_dynamic_partitioned_asset (bigquery): apple, orange, then apple again. Snowflake and
    BigQuery name the column ``FRUIT`` in partition_expr and ``fruit`` in the frame, and read
    ``A`` (read as ``a`` here): MySQL column names are case-insensitive too."""
    schema = _schema(db, "SCHEMA" if peer in ("snowflake", "bigquery") else "my_schema")
    table_name = "dynamic_partitioned"
    dynamic_fruits = DynamicPartitionsDefinition(name="dynamic_fruits")

    @asset(
        partitions_def=dynamic_fruits,
        key_prefix=[schema],
        metadata={"partition_expr": "FRUIT" if peer in ("snowflake", "bigquery") else "fruit"},
        config_schema={"value": str},
        name=table_name,
    )
    def dynamic_partitioned(context: AssetExecutionContext) -> pd.DataFrame:
        partition = context.partition_key
        value = context.op_execution_context.op_config["value"]
        return pd.DataFrame({"fruit": [partition] * 3, "a": [value] * 3})

    assets = [dynamic_partitioned, *_downstream(peer, dynamic_fruits, schema, table_name)]
    resource_defs = {"io_manager": _io_manager(db), "fs_io": fs_io_manager}
    op_name = f"{schema}__{table_name}"
    with instance_for_test() as instance:
        assert dynamic_fruits.name is not None  # defined with a name
        instance.add_dynamic_partitions(dynamic_fruits.name, ["apple"])
        materialize(
            assets,
            partition_key="apple",
            resources=resource_defs,
            instance=instance,
            run_config=_config(op_name, value="1"),
        )
        assert _select_all(db, schema, table_name)["a"].tolist() == ["1", "1", "1"]

        instance.add_dynamic_partitions(dynamic_fruits.name, ["orange"])
        materialize(
            assets,
            partition_key="orange",
            resources=resource_defs,
            instance=instance,
            run_config=_config(op_name, value="2"),
        )
        assert sorted(_select_all(db, schema, table_name)["a"].tolist()) == ["1", "1", "1", "2", "2", "2"]

        materialize(
            assets,
            partition_key="apple",
            resources=resource_defs,
            instance=instance,
            run_config=_config(op_name, value="3"),
        )
        assert sorted(_select_all(db, schema, table_name)["a"].tolist()) == ["2", "2", "2", "3", "3", "3"]


def test_dynamic_partition_plant_data(db):
    """duckdb test_dynamic_partition.py::test_dynamic_partition: a dynamic partition added, then
    materialized under the ``vehicles`` prefix. The peer reads a CSV from a developer's home
    directory; the same frame is inline here."""
    dynamic_regions = DynamicPartitionsDefinition(name="dynamic_regions")
    schema = _schema(db, "vehicles")

    @asset(partitions_def=dynamic_regions, key_prefix=[schema], metadata={"partition_expr": "region"})
    def plant_data(context) -> pd.DataFrame:
        data = pd.DataFrame({"plant": ["p1", "p2"], "output": [1.5, 2.5]})
        data["region"] = context.partition_key
        return data

    with instance_for_test() as instance:
        assert dynamic_regions.name is not None  # defined with a name
        instance.add_dynamic_partitions(dynamic_regions.name, ["northeast"])
        assert materialize(
            [plant_data], partition_key="northeast", resources={"io_manager": _io_manager(db)}, instance=instance
        ).success
    assert _select_all(db, schema, "plant_data").values.tolist() == [["p1", 1.5, "northeast"], ["p2", 2.5, "northeast"]]


# The self-dependent asset's key column and partition_expr, as each peer writes them (KEY is a
# reserved word in MySQL, so the column is quoted in SQL). DuckDB's partition_expr has '%' in it
# (issue 15: it raised "unsupported format character").
SELF_DEPENDENT_PEERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "duckdb": (str, "STR_TO_DATE(`key`, '%Y-%m-%d')"),
    "snowflake": (str, "TIMESTAMP(`key`)"),
    "bigquery": (str, "TIMESTAMP(`key`)"),
    # skipped upstream ("handle creating empty tables - how to get schema a-priori?"): passes here
    "deltalake": (_day, "key"),
}


@pytest.mark.parametrize("peer", list(SELF_DEPENDENT_PEERS))
def test_self_dependent_asset(db, peer):
    """test_self_dependent_asset of each peer: the first day loads the day before from a table
    that does not exist yet and gets an empty frame (issue 15: it raised 1146); the next day
    loads the first day's 3 rows."""
    schema = _schema(db, "SCHEMA" if peer in ("snowflake", "bigquery") else "my_schema")
    table_name = "self_dependent_asset"
    key_value, partition_expr = SELF_DEPENDENT_PEERS[peer]
    daily_partitions = DailyPartitionsDefinition(start_date="2023-01-01")

    @asset(
        partitions_def=daily_partitions,
        key_prefix=[schema],
        ins={
            "self_dependent_asset": AssetIn(
                key=AssetKey([schema, table_name]),
                partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
            ),
        },
        metadata={"partition_expr": partition_expr},
        config_schema={"value": str, "last_partition_key": str},
        name=table_name,
    )
    def self_dependent_asset(context: AssetExecutionContext, self_dependent_asset: pd.DataFrame) -> pd.DataFrame:
        key = context.partition_key
        config = context.op_execution_context.op_config
        if not self_dependent_asset.empty:
            assert len(self_dependent_asset.index) == 3
            assert (self_dependent_asset["key"] == key_value(config["last_partition_key"])).all()
        else:
            assert config["last_partition_key"] == "NA"
        value = config["value"]
        return pd.DataFrame({"key": [key_value(key)] * 3, "a": [value] * 3})

    op_name = f"{schema}__{table_name}"
    resource_defs = {"io_manager": _io_manager(db)}
    materialize(
        [self_dependent_asset],
        partition_key="2023-01-01",
        resources=resource_defs,
        run_config=_config(op_name, value="1", last_partition_key="NA"),
    )
    assert _select_all(db, schema, table_name)["a"].tolist() == ["1", "1", "1"]
    materialize(
        [self_dependent_asset],
        partition_key="2023-01-02",
        resources=resource_defs,
        run_config=_config(op_name, value="2", last_partition_key="2023-01-01"),
    )
    assert _select_all(db, schema, table_name)["a"].tolist() == ["1", "1", "1", "2", "2", "2"]


@pytest.mark.parametrize("peer", ["duckdb", "snowflake", "bigquery"])
def test_multi_partitioned_asset_with_downstream_mapping(db, peer):
    """test_multi_partitioned_asset_with_downstream_mapping (duckdb, snowflake, bigquery): a daily
    asset loads every color of its day (MultiToSingleDimensionPartitionMapping) through the time
    dimension's expression over a text column."""
    schema = _schema(db, "SCHEMA" if peer in ("snowflake", "bigquery") else "my_schema")
    partitions_def = MultiPartitionsDefinition(
        {
            "time": DailyPartitionsDefinition(start_date="2022-01-01"),
            "color": StaticPartitionsDefinition(["red", "yellow", "blue"]),
        }
    )

    @asset(
        partitions_def=partitions_def,
        key_prefix=[schema],
        metadata={"partition_expr": {"time": "CAST(time AS DATETIME)", "color": "color"}},
        config_schema={"value": str},
    )
    def multi_partitioned(context) -> pd.DataFrame:
        partition = context.partition_key.keys_by_dimension
        value = context.op_execution_context.op_config["value"]
        return pd.DataFrame({"color": [partition["color"]] * 3, "time": [partition["time"]] * 3, "a": [value] * 3})

    @asset(
        ins={
            "multi_partitioned": AssetIn(
                key="multi_partitioned",
                partition_mapping=MultiToSingleDimensionPartitionMapping(partition_dimension_name="time"),
            ),
        },
        key_prefix=None if peer == "duckdb" else [schema],
        partitions_def=DailyPartitionsDefinition(start_date="2022-01-01"),
        metadata={"partition_expr": "CAST(time AS DATETIME)"},
    )
    def downstream_of_multi_partitioned(context, multi_partitioned: pd.DataFrame) -> None:
        partition = context.partition_key
        assert "red" in list(multi_partitioned.color)
        assert "blue" in list(multi_partitioned.color)
        assert partition in list(multi_partitioned.time)
        return None

    resource_defs = {"io_manager": _io_manager(db)}
    op_name = f"{schema}__multi_partitioned"
    with instance_for_test() as inst:
        for color in ["red", "blue"]:
            materialize(
                [multi_partitioned],
                partition_key=MultiPartitionKey({"time": "2022-01-01", "color": color}),
                resources=resource_defs,
                run_config=_config(op_name, value="1"),
                instance=inst,
            )
        assert materialize(
            [multi_partitioned.to_source_asset(), downstream_of_multi_partitioned],
            partition_key="2022-01-01",
            resources=resource_defs,
            instance=inst,
        ).success


# ---------------------------------------------------------------------------------------------
# What issue 15 adds beyond the ports
# ---------------------------------------------------------------------------------------------


def _tables(db, schema: str) -> set[str]:
    return {
        r[0] for r in db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
    }


def test_one_name_under_two_prefixes_is_two_tables(db):
    """["a", "t"] and ["b", "t"] are two tables, a.t and b.t (issue 15: both wrote <db>.t, the
    second silently replacing the first). Databases that do not exist are created."""
    a, b = _schema(db, "a"), _schema(db, "b")

    @asset(key_prefix=[a], name="t")
    def a_t() -> pd.DataFrame:
        return pd.DataFrame({"v": [1]})

    @asset(key_prefix=[b], name="t")
    def b_t() -> pd.DataFrame:
        return pd.DataFrame({"v": [2, 3]})

    materialize([a_t, b_t], resources={"io_manager": _io_manager(db)})
    assert _select_all(db, a, "t")["v"].tolist() == [1]
    assert _select_all(db, b, "t")["v"].tolist() == [2, 3]
    assert "t" not in _tables(db, db.name)


def test_where_each_table_goes(db):
    """Table naming exactly as the peers' (Dagster's DbIOManager): output metadata ``schema``,
    else the IO manager's ``schema`` setting, else the key's prefix, else the default database
    (the resource's output database, else the URL's): where lab_assets' own assets (no prefix)
    have always been written."""

    def frame_asset(name: str, prefix: list[str] | None = None, schema: str | None = None):
        @asset(name=name, key_prefix=prefix, metadata={"schema": schema} if schema else None)
        def _asset() -> pd.DataFrame:
            return pd.DataFrame({"v": [1]})

        return _asset

    plain = frame_asset("plain")
    prefixed = frame_asset("prefixed", prefix=[_schema(db, "prefix")])
    named = frame_asset("named", prefix=[_schema(db, "prefix")], schema=_schema(db, "named"))
    materialize([plain, prefixed, named], resources={"io_manager": _io_manager(db)})
    assert {"plain"} <= _tables(db, db.name)
    assert _tables(db, _schema(db, "prefix")) == {"prefixed"}
    assert _tables(db, _schema(db, "named")) == {"named"}

    out = _schema(db, "out")
    with_output = MySQLResource(url=db.url, output_database=out)
    materialize([plain, prefixed], resources={"io_manager": MySQLIOManager(mysql=with_output)})
    assert _tables(db, out) == {"plain"}, "unprefixed assets go to the output database (lab_assets' own)"

    setting = _schema(db, "setting")
    materialize([plain, prefixed, named], resources={"io_manager": _io_manager(db, schema=setting)})
    assert _tables(db, setting) == {"plain", "prefixed"}, "the setting comes before the key prefix"
    assert _tables(db, _schema(db, "named")) == {"named"}, "metadata comes first"


def test_the_io_manager_says_where_unprefixed_assets_go_without_connecting(db):
    """lab_assets' refresh refuses an IO manager writing elsewhere than its output database: it
    reads the IO manager's ``schema`` (refresh/derivations.io_manager_schema). That is where an
    asset without prefix or ``schema`` metadata goes; creating the IO manager reads no server."""
    from dagster import build_init_resource_context

    unreachable = "mysql+pymysql://nobody@127.0.0.1:1/lab"
    created = MySQLIOManager(mysql=MySQLResource(url=unreachable)).create_io_manager(build_init_resource_context())
    assert created.schema == "lab"
    out = MySQLResource(url=unreachable, output_database="lab_out")
    assert MySQLIOManager(mysql=out).create_io_manager(build_init_resource_context()).schema == "lab_out"
    setting = MySQLIOManager(mysql=out, schema="elsewhere").create_io_manager(build_init_resource_context())
    assert setting.schema == "elsewhere"


def test_column_types_follow_the_dtypes_and_round_trip(db):
    """bool, integers, floats, strings, dates, naive and tz-aware times, and every kind of missing
    value (NaN, None, NaT, pd.NA) come back as they went in; tz-aware times as naive UTC
    (DATETIME has no zone), times to the microsecond (DATETIME(6))."""
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "maybe": pd.array([True, None, False], dtype="boolean"),
            "n": [1, 2, 3],
            "n_na": pd.array([1, None, 3], dtype="Int64"),
            "x": [0.5, float("nan"), 2.25],
            "s": ["a", None, "100%"],
            "day": [dt.date(2022, 1, 1), None, dt.date(2024, 2, 29)],
            "at": pd.to_datetime(["2020-01-01 12:00:00.123456", None, "2021-06-30 23:59:59.000000"]),
            "at_tz": pd.to_datetime(["2020-01-01 12:00:00", "2020-07-01 00:30:00", None]).tz_localize("Asia/Karachi"),
        }
    )
    loaded = _round_trip(db, frame, "typed")
    types = dict(
        db.query(
            "SELECT column_name, column_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'typed'",
            (db.name,),
        )
    )
    assert types == {
        "flag": "tinyint(1)",
        "maybe": "tinyint(1)",
        "n": "bigint(20)",
        "n_na": "bigint(20)",
        "x": "double",
        "s": "text",
        "day": "date",
        "at": "datetime(6)",
        "at_tz": "datetime(6)",
    }
    assert loaded["flag"].dtype == bool and loaded["flag"].tolist() == [True, False, True]
    assert loaded["maybe"].dtype == "boolean" and loaded["maybe"].tolist() == [True, pd.NA, False]
    assert loaded["n"].tolist() == [1, 2, 3]
    assert loaded["n_na"].tolist()[0::2] == [1, 3] and pd.isna(loaded["n_na"].iloc[1])
    assert loaded["x"].tolist()[0::2] == [0.5, 2.25] and pd.isna(loaded["x"].iloc[1])
    assert loaded["s"].tolist()[0::2] == ["a", "100%"] and pd.isna(loaded["s"].iloc[1])
    assert loaded["day"].tolist() == [dt.date(2022, 1, 1), None, dt.date(2024, 2, 29)]
    assert pd.api.types.is_datetime64_dtype(loaded["at"])
    assert loaded["at"].tolist()[0::2] == frame["at"].tolist()[0::2] and pd.isna(loaded["at"].iloc[1])
    expected_utc = frame["at_tz"].dt.tz_convert("UTC").dt.tz_localize(None)
    assert loaded["at_tz"].tolist()[:2] == expected_utc.tolist()[:2] and pd.isna(loaded["at_tz"].iloc[2])
    assert loaded["at_tz"][0] == pd.Timestamp("2020-01-01 07:00:00")


def test_a_time_window_partition_column_is_a_time_whatever_the_frame_holds(db):
    """The partition column of a time window is DATE or DATETIME(6) even when the frame holds its
    days as text (the server converts them), so the window's bounds compare as times: the day
    written again replaces its rows and loads back."""
    schema = _schema(db, "my_schema")
    partitions_def = DailyPartitionsDefinition(start_date="2022-01-01")
    values = {"2022-01-01": [1, 2], "2022-01-02": [3]}
    seen = {}

    @asset(partitions_def=partitions_def, key_prefix=[schema], metadata={"partition_expr": "day"})
    def text_days(context: AssetExecutionContext) -> pd.DataFrame:
        key = context.partition_key
        return pd.DataFrame({"day": [key] * len(values[key]), "v": values[key]})

    @asset(partitions_def=partitions_def, key_prefix=[schema])
    def reader(text_days: pd.DataFrame) -> None:
        seen["frame"] = text_days

    for key in ["2022-01-01", "2022-01-02"]:
        materialize([text_days, reader], partition_key=key, resources={"io_manager": _io_manager(db)})
    values["2022-01-01"] = [9]
    materialize([text_days, reader], partition_key="2022-01-01", resources={"io_manager": _io_manager(db)})
    assert db.query(
        "SELECT column_type FROM information_schema.columns WHERE table_schema = %s AND column_name = 'day'",
        (schema,),
    ) == [("datetime(6)",)]
    assert sorted(_select_all(db, schema, "text_days")["v"].tolist()) == [3, 9]
    assert seen["frame"]["v"].tolist() == [9]
    assert seen["frame"]["day"].tolist() == [pd.Timestamp("2022-01-01")]


def test_a_table_not_written_yet_loads_as_an_empty_frame(db):
    """A partition loaded from a table that does not exist yet (the day before exists in the
    partitions, but was never materialized) is an empty frame, not error 1146."""
    schema = _schema(db, "my_schema")
    seen = {}

    @asset(
        partitions_def=DailyPartitionsDefinition(start_date="2023-01-01"),
        key_prefix=[schema],
        ins={
            "previous": AssetIn(
                key=AssetKey([schema, "running"]),
                partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
                metadata={"columns": ["day", "v"]},
            )
        },
        metadata={"partition_expr": "day"},
    )
    def running(context: AssetExecutionContext, previous: pd.DataFrame) -> pd.DataFrame:
        seen["previous"] = previous
        return pd.DataFrame({"day": [_day(context.partition_key)], "v": [len(previous) + 1]})

    materialize([running], partition_key="2023-01-02", resources={"io_manager": _io_manager(db)})
    assert seen["previous"].empty and list(seen["previous"].columns) == ["day", "v"]
    materialize([running], partition_key="2023-01-03", resources={"io_manager": _io_manager(db)})
    assert seen["previous"]["day"].tolist() == [dt.date(2023, 1, 2)]


def test_a_partition_is_replaced_in_one_transaction(db):
    """A partition's old rows are deleted and the new ones inserted in one transaction: when the
    insert fails (a duplicate primary key here), the partition keeps its old rows."""
    schema = _schema(db, "my_schema")
    rows = {"red": [1, 2]}

    @asset(
        partitions_def=StaticPartitionsDefinition(["red", "blue"]),
        key_prefix=[schema],
        metadata={"partition_expr": "color", "primary_key": ["color", "n"]},
    )
    def keyed(context: AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"color": [context.partition_key] * len(rows["red"]), "n": rows["red"]})

    materialize([keyed], partition_key="red", resources={"io_manager": _io_manager(db)})
    rows["red"] = [7, 7]
    result = materialize([keyed], partition_key="red", resources={"io_manager": _io_manager(db)}, raise_on_error=False)
    assert not result.success
    assert sorted(_select_all(db, schema, "keyed")["n"].tolist()) == [1, 2]
