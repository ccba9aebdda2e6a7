"""The binlog change feed (lab_assets/change_feed) against a private mariadbd with a row-based
binlog: each change kind's sample ids, compared whole with the ids the test wrote; transaction
boundaries; the fallbacks; the account's grants; ``LAB_CHANGE_FEED``.

One server for the module (extra_server.py); each test starts from the binlog's end as it finds
it, so the tests do not depend on each other's writes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet

import pytest
import sqlalchemy as sa

import lab_assets.change_feed.reader as change_feed_reader
from lab_assets.change_feed.access import check_binlog_access, settings_problem
from lab_assets.change_feed.mode import ChangeFeedMode, change_feed_mode, parse_change_feed_mode
from lab_assets.change_feed.position import (
    BinlogPosition,
    _gtid_went_back,
    current_position,
    load_position,
    position_gone,
    store_position,
)
from lab_assets.change_feed.reader import ChangeBatch, read_changes
from lab_assets.change_feed.statements import statement_fallback
from lab_assets.change_feed.stream import Reconnected, one_stream
from lab_assets.local_lab import source_schema_statements
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.tls import PreferredTlsConnection
from lab_assets.sources.locations import TableLocations, source_tables
from lab_assets_tests.extra_server import ExtraServer, extra_server

pytestmark = pytest.mark.integration

LAB, OUT, OTHER, LIMS = "feed_lab", "feed_out", "feed_other", "feed_lims"
TABLES = TableLocations(LAB, OUT)
# A lab that names its tables and columns otherwise, columns in another order than lab_assets'.
LIMS_TABLES = TableLocations(
    LIMS,
    OUT,
    sources=source_tables(
        "lims_sample",
        "lims_result",
        "id=sample_pk,parent_id=derived_from,experiment_id=study_id",
        "sample_id=sample_fk,measurement_type=assay,value=result",
    ),
)
LIMS_SCHEMA = (
    f"CREATE TABLE {LIMS}.lims_sample (note VARCHAR(20), study_id INT, derived_from INT,"
    " sample_pk INT PRIMARY KEY AUTO_INCREMENT)",
    f"CREATE TABLE {LIMS}.lims_result (result DECIMAL(16,6), assay VARCHAR(10), sample_fk INT, res_pk INT"
    " PRIMARY KEY AUTO_INCREMENT)",
    # A table named like lab_assets' source table, in the lab's database but not the lab's source.
    f"CREATE TABLE {LIMS}.samples (id INT PRIMARY KEY, parent_id INT)",
    f"INSERT INTO {LIMS}.lims_sample (note, study_id, derived_from) VALUES ('a', 1, NULL), ('b', 1, 1), ('c', 2, 1)",
    f"INSERT INTO {LIMS}.lims_result (result, assay, sample_fk) VALUES (1.5, 'vol', 2), (2.5, 'ph', 3)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtraServer]:
    directory = tmp_path_factory.mktemp("feed")
    options = {"log-bin": str(directory / "binlog"), "binlog-format": "ROW", "server-id": "1"}
    with extra_server(directory, options) as started:
        with started.connect() as connection, connection.cursor() as cursor:
            for database in (LAB, OUT, OTHER, LIMS):
                cursor.execute(f"CREATE DATABASE {database}")
            cursor.execute(f"USE {LAB}")
            for statement in source_schema_statements():
                cursor.execute(statement)
            cursor.execute(f"CREATE TABLE {LAB}.notes (id INT PRIMARY KEY, sample_id INT)")
            cursor.execute(f"CREATE TABLE {OTHER}.samples (id INT PRIMARY KEY, parent_id INT)")
            cursor.execute(f"CREATE TABLE {OTHER}.sample_measurements (sample_id INT, value INT)")
            for statement in LIMS_SCHEMA:
                cursor.execute(statement)
        yield started


@pytest.fixture(scope="module")
def engine(server: ExtraServer) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"{server.url}/{LAB}", isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def run(server: ExtraServer, *statements: str, user: str = "root") -> list[int]:
    """Run ``statements`` on one autocommit session; the last insert id of each."""
    ids = []
    with server.connect(LAB, user=user) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            ids.append(cursor.lastrowid)
    return ids


def end_of_binlog(engine: sa.Engine) -> BinlogPosition:
    with engine.connect() as connection:
        position = current_position(connection)
    assert position is not None
    return position


def changes(engine: sa.Engine, since: BinlogPosition, tables: TableLocations = TABLES, **options) -> ChangeBatch:
    with engine.connect() as connection:
        return read_changes(connection, tables, since, **options)


def assert_ids(
    batch: ChangeBatch,
    engine: sa.Engine,
    changed: AbstractSet[int],
    moved: AbstractSet[int] = frozenset(),
    deleted: AbstractSet[int] = frozenset(),
):
    """The whole batch: no fallback, every id set equal to what the test wrote, and the position the
    server's end (nothing else writes to this server)."""
    assert batch.fallback is None
    assert (set(batch.changed_sample_ids), set(batch.moved_sample_ids), set(batch.deleted_sample_ids)) == (
        set(changed),
        set(moved),
        set(deleted),
    )
    assert batch.caught_up
    assert batch.position == end_of_binlog(engine)


# --- each change kind -----------------------------------------------------------------------------


def test_insert_sample(server, engine):
    since = end_of_binlog(engine)
    (new_id,) = run(server, "INSERT INTO samples (parent_id, experiment_id) VALUES (1, 7)")
    assert_ids(changes(engine, since), engine, {new_id})


def test_update_measurement_value(server, engine):
    since = end_of_binlog(engine)
    run(
        server,
        "UPDATE sample_measurements SET value = value + 1 WHERE measurement_type = 'vol' AND sample_id IN (2, 3)",
    )
    assert_ids(changes(engine, since), engine, {2, 3})


def test_delete_measurement(server, engine):
    since = end_of_binlog(engine)
    run(server, "DELETE FROM sample_measurements WHERE sample_id = 6 AND measurement_type = 'ph'")
    assert_ids(changes(engine, since), engine, {6})


def test_insert_measurement_of_a_new_type(server, engine):
    since = end_of_binlog(engine)
    run(server, "INSERT INTO sample_measurements VALUES (9, 'mass', 1.25), (12, 'mass', 2.5)")
    assert_ids(changes(engine, since), engine, {9, 12})


def test_reparent_is_moved_other_sample_changes_are_not(server, engine):
    since = end_of_binlog(engine)
    run(
        server,
        "UPDATE samples SET parent_id = 13 WHERE id = 11",
        "UPDATE samples SET experiment_id = 5 WHERE id = 14",
        "UPDATE samples SET parent_id = parent_id WHERE id = 15",  # no row changes: nothing logged
    )
    assert_ids(changes(engine, since), engine, {11, 14}, moved={11})


def test_delete_sample_reports_it_deleted_not_its_cascaded_children(server, engine):
    """InnoDB's ON DELETE CASCADE removes sample 12's measurements without a binlog row: the feed
    reports the deleted sample as deleted, the refresh takes its stored subtree from there."""
    (new_id,) = run(server, "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 8)")
    run(server, f"INSERT INTO samples (parent_id, experiment_id) VALUES ({new_id}, 8)")
    since = end_of_binlog(engine)
    run(server, f"DELETE FROM samples WHERE id = {new_id}")
    assert_ids(changes(engine, since), engine, {new_id}, deleted={new_id})


def test_transaction_touching_both_tables(server, engine):
    since = end_of_binlog(engine)
    ids = run(
        server,
        "START TRANSACTION",
        "INSERT INTO samples (parent_id, experiment_id) VALUES (2, 1)",
        "INSERT INTO sample_measurements VALUES (LAST_INSERT_ID(), 'vol', 3)",
        "UPDATE sample_measurements SET value = 8 WHERE sample_id = 20 AND measurement_type = 'ph'",
        "UPDATE samples SET parent_id = 5 WHERE id = 16",
        "UPDATE sample_measurements SET sample_id = 4 WHERE sample_id = 3 AND measurement_type = 'ph'",
        "COMMIT",
    )
    assert_ids(changes(engine, since), engine, {ids[1], 20, 16, 3, 4}, moved={16})


def test_transaction_of_100k_rows(server, engine):
    """Every id of a 100k-row transaction, and the position after its COMMIT; a smaller cap gives
    the fallback instead of the ids."""
    since = end_of_binlog(engine)
    run(
        server,
        "START TRANSACTION",
        "INSERT INTO samples (parent_id, experiment_id) SELECT NULL, 100000 FROM seq_1_to_100000",
        "COMMIT",
    )
    with server.connect(LAB) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM samples WHERE experiment_id = 100000")
        written = {row[0] for row in cursor.fetchall()}
    assert len(written) == 100_000
    assert_ids(changes(engine, since), engine, written)
    capped = changes(engine, since, max_changed_ids=99_999)
    assert capped.fallback is not None and capped.fallback.startswith("more than 99,999 sample ids changed")
    assert (capped.position, capped.changed_sample_ids) == (since, frozenset())


def test_renamed_tables_and_mapped_columns(server, engine):
    since = end_of_binlog(engine)
    run(
        server,
        f"INSERT INTO {LIMS}.lims_sample (note, study_id, derived_from) VALUES ('d', 3, 2)",
        f"UPDATE {LIMS}.lims_sample SET derived_from = 3 WHERE sample_pk = 2",
        f"UPDATE {LIMS}.lims_result SET result = 9 WHERE sample_fk = 3",
        f"INSERT INTO {LIMS}.samples VALUES (1000, NULL)",  # not the lab's table, though named so
    )
    (new_id,) = [row[0] for row in _query(server, f"SELECT MAX(sample_pk) FROM {LIMS}.lims_sample")]
    assert_ids(changes(engine, since, LIMS_TABLES), engine, {new_id, 2, 3}, moved={2})


def test_other_tables_and_databases_ignored(server, engine):
    since = end_of_binlog(engine)
    run(
        server,
        f"INSERT INTO {OTHER}.samples VALUES (1, NULL), (2, 1)",
        f"INSERT INTO {OTHER}.sample_measurements VALUES (1, 5)",
        f"INSERT INTO {LAB}.notes VALUES (1, 3)",
        f"CREATE TABLE {OTHER}.scratch (id INT)",
        f"DROP TABLE {OTHER}.scratch",
        f"TRUNCATE {OTHER}.samples",
    )
    assert_ids(changes(engine, since), engine, set())


def _query(server: ExtraServer, sql: str) -> list[tuple]:
    with server.connect(LAB) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


# --- fallbacks ------------------------------------------------------------------------------------


def assert_fallback(batch: ChangeBatch, since: BinlogPosition, *phrases: str) -> None:
    """A fallback whose sentence holds each phrase, with the stored position left as it was."""
    assert batch.fallback is not None
    for phrase in phrases:
        assert phrase in batch.fallback
    assert (batch.position, batch.changed_sample_ids, batch.caught_up) == (since, frozenset(), False)


def test_truncate_falls_back_naming_it(server, engine):
    since = end_of_binlog(engine)
    run(server, f"CREATE TABLE {LAB}.samples_copy LIKE {OTHER}.samples", f"TRUNCATE TABLE {LAB}.sample_measurements")
    assert_fallback(changes(engine, since), since, "TRUNCATE statement on feed_lab.sample_measurements")
    run(server, *[s for s in source_schema_statements() if s.startswith("INSERT INTO sample_measurements")])


def test_alter_falls_back(server, engine):
    since = end_of_binlog(engine)
    run(server, "ALTER TABLE `samples` ADD COLUMN note VARCHAR(10)")
    assert_fallback(changes(engine, since), since, "ALTER statement on feed_lab.samples")
    run(server, "ALTER TABLE samples DROP COLUMN note")


@pytest.mark.parametrize("binlog_format", ["STATEMENT", "MIXED"])
def test_statement_format_write_falls_back(server, engine, binlog_format):
    """A session's STATEMENT or MIXED format (MIXED logs a deterministic UPDATE as a statement)."""
    since = end_of_binlog(engine)
    run(
        server,
        f"SET SESSION binlog_format = '{binlog_format}'",
        "UPDATE sample_measurements SET value = value * 2 WHERE sample_id = 8",
    )
    assert_fallback(changes(engine, since), since, "UPDATE logged as a statement", "value * 2")


def test_a_statement_format_write_through_a_view_falls_back(server, engine):
    """The statement names only the view: any write logged as a statement stops the feed."""
    run(server, f"CREATE OR REPLACE VIEW {LAB}.measurements_view AS SELECT * FROM {LAB}.sample_measurements")
    since = end_of_binlog(engine)
    run(
        server,
        "SET SESSION binlog_format = 'STATEMENT'",
        "UPDATE measurements_view SET value = value + 1 WHERE sample_id = 8",
    )
    assert_fallback(changes(engine, since), since, "UPDATE logged as a statement", "measurements_view")
    run(server, f"DROP VIEW {LAB}.measurements_view")


def test_an_xa_commit_of_rows_prepared_before_the_position_falls_back(server, engine):
    """MariaDB logs an XA transaction's rows at XA PREPARE: read from after it, the commit alone
    would name no row."""
    run(
        server,
        "XA START 'feed_xa'",
        "UPDATE sample_measurements SET value = value + 3 WHERE sample_id = 9",
        "XA END 'feed_xa'",
        "XA PREPARE 'feed_xa'",
    )
    since = end_of_binlog(engine)
    run(server, "XA COMMIT 'feed_xa'")
    # The binlog spells the xid in hex: 'feed_xa' is X'666565645f7861'.
    assert_fallback(changes(engine, since), since, "XA COMMIT X'666565645f7861'", "prepared earlier")


def test_a_gtid_position_that_went_back_means_a_reset_binlog():
    assert _gtid_went_back("0-1-50", "0-1-3") == "domain 0: 50 -> 3"
    assert _gtid_went_back("0-1-50,1-2-7", "0-1-60,1-2-6") == "domain 1: 7 -> 6"
    assert _gtid_went_back("0-1-3", "0-1-50") is None
    assert _gtid_went_back("0-1-3", None) is None
    assert (
        _gtid_went_back("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-2") is None
    )
    stored = BinlogPosition(1, None, "binlog.000001", 4000, "0-1-50")
    now = BinlogPosition(1, None, "binlog.000001", 5000, "0-1-2")
    assert "went back (domain 0: 50 -> 2)" in str(position_gone(stored, {"binlog.000001": 9000}, now))


def test_a_compressed_binlog_is_refused(tmp_path):
    options = {"log-bin": str(tmp_path / "binlog"), "binlog-format": "ROW", "server-id": "1", "log-bin-compress": "ON"}
    with extra_server(tmp_path, options) as compressed:
        engine = sa.create_engine(compressed.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                access = check_binlog_access(connection)
        finally:
            engine.dispose()
    assert not access.usable and "log_bin_compress=ON" in str(access.problem)


def test_purged_position_falls_back(server, engine):
    since = end_of_binlog(engine)
    run(server, "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 9)", "FLUSH BINARY LOGS")
    now = end_of_binlog(engine)
    # MariaDB keeps a binlog until InnoDB has checkpointed its transactions: purge until it is gone.
    deadline = time.monotonic() + 20
    while since.binlog_file in (files := [row[0] for row in _query(server, "SHOW BINARY LOGS")]):
        assert time.monotonic() < deadline, f"{since.binlog_file} still there: {files}"
        run(server, "FLUSH BINARY LOGS", f"PURGE BINARY LOGS TO '{now.binlog_file}'")
        time.sleep(0.2)
    assert_fallback(changes(engine, since), since, f"{since.binlog_file}:{since.binlog_position}", "was purged")


def test_another_server_falls_back(server, engine):
    since = end_of_binlog(engine)
    elsewhere = BinlogPosition(since.server_id + 1, None, since.binlog_file, since.binlog_position)
    assert_fallback(changes(engine, elsewhere), elsewhere, "from another server")


def test_a_read_across_a_rotation_continues_in_the_next_file(server, engine):
    since = end_of_binlog(engine)
    ids = run(
        server,
        "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 10)",
        "FLUSH BINARY LOGS",
        "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 10)",
    )
    batch = changes(engine, since)
    assert_ids(batch, engine, {ids[0], ids[2]})
    assert batch.position.binlog_file != since.binlog_file


def test_the_stream_shares_the_engines_preferred_tls_context(server, engine, monkeypatch):
    """With no TLS settings in the URL, the binlog reader's connections use the TLS context the
    engine's connections share (built once per process), not one built per connection."""
    opened: list[object] = []

    def recording(connect):
        def opening(**settings):
            opened.append(connect(**settings))
            return opened[-1]

        return one_stream(opening)

    monkeypatch.setattr(change_feed_reader, "one_stream", recording)
    since = end_of_binlog(engine)
    (sample,) = run(server, "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 11)")
    assert_ids(changes(engine, since), engine, {sample})
    with MySQLResource(url=f"{server.url}/{LAB}").connect() as connection:
        shared = getattr(connection.connection.dbapi_connection, "ctx", None)
    assert opened and shared is not None
    assert [(type(c), getattr(c, "ctx", None)) for c in opened] == [(PreferredTlsConnection, shared)] * len(opened)


def test_minimal_row_image(server, engine):
    """MINIMAL logs samples' primary key before and assigned columns after; the measurements table
    has no primary key, so its before image holds sample_id. An assigned parent_id is moved."""
    run(server, "INSERT INTO sample_measurements VALUES (19, 'mass', 10), (10, 'mass', 10)")
    since = end_of_binlog(engine)
    run(
        server,
        "SET SESSION binlog_row_image = 'MINIMAL'",
        "UPDATE samples SET parent_id = 2 WHERE id = 4",
        "UPDATE samples SET experiment_id = 6 WHERE id = 5",
        "UPDATE sample_measurements SET value = 1 WHERE sample_id = 19",
        "DELETE FROM sample_measurements WHERE sample_id = 10 AND measurement_type = 'mass'",
    )
    assert_ids(changes(engine, since), engine, {4, 5, 19, 10}, moved={4})


# --- access, positions, mode ----------------------------------------------------------------------


def test_account_without_grants(server, engine):
    """An account with SELECT on the lab and its own output database, without the binlog grants:
    access names both missing grants and the GRANT; the reader falls back. Once granted, it reads."""
    run(
        server,
        "CREATE USER IF NOT EXISTS 'feed_reader'@'%'",
        f"GRANT SELECT ON {LAB}.* TO 'feed_reader'@'%'",
        f"GRANT ALL ON {OUT}.* TO 'feed_reader'@'%'",
    )
    reader = sa.create_engine(
        f"mysql+pymysql://feed_reader@127.0.0.1:{server.port}/{LAB}", isolation_level="AUTOCOMMIT"
    )
    try:
        since = end_of_binlog(engine)
        with reader.connect() as connection:
            access = check_binlog_access(connection)
        assert access.problem == (
            "the account feed_reader@% lacks REPLICATION SLAVE and BINLOG MONITOR (REPLICATION CLIENT is its older"
            " name), which reading the binlog needs: run GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO"
            " 'feed_reader'@'%'"
        )
        assert_fallback(changes(reader, since), since, "cannot be read by this account", "REPLICATION SLAVE")
        run(server, "GRANT BINLOG MONITOR ON *.* TO 'feed_reader'@'%'")
        reader.dispose()  # global privileges apply to new sessions only
        with reader.connect() as connection:
            access = check_binlog_access(connection)
        assert access.problem is not None and "lacks REPLICATION SLAVE," in access.problem
        assert_fallback(changes(reader, since), since, "REPLICATION SLAVE")
        run(server, "GRANT REPLICATION SLAVE ON *.* TO 'feed_reader'@'%'")
        reader.dispose()
        with reader.connect() as connection:
            assert check_binlog_access(connection).usable
        (new_id,) = run(server, "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 11)")
        assert_ids(changes(reader, since), engine, {new_id})
    finally:
        reader.dispose()
        run(server, "DROP USER 'feed_reader'@'%'")


def test_server_settings_named_with_their_fix():
    problem = settings_problem("OFF", "ROW", "FULL")
    assert problem is not None and "log_bin is OFF" in problem
    for binlog_format in ("STATEMENT", "MIXED"):
        problem = settings_problem(1, binlog_format, "FULL")
        assert problem is not None
        assert f"binlog_format is {binlog_format}" in problem and "SET GLOBAL binlog_format=ROW" in problem
    assert [settings_problem(1, "ROW", image) for image in ("FULL", "NOBLOB", "MINIMAL")] == [None] * 3


def test_root_has_access_and_positions_round_trip(engine):
    with engine.connect() as connection:
        assert check_binlog_access(connection).problem is None
        assert load_position(connection, TABLES) is None
        position = current_position(connection)
        assert position is not None and position.server_id == 1 and position.server_uuid is None
        assert re.fullmatch(r"0-1-\d+", position.gtid or "")
        store_position(connection, TABLES, position)
        assert load_position(connection, TABLES) == position
        later = BinlogPosition(1, None, "binlog.000009", 4, None)
        store_position(connection, TABLES, later)
        assert load_position(connection, TABLES) == later
        assert connection.exec_driver_sql(f"SELECT COUNT(*) FROM {OUT}.lab_change_feed_position").scalar() == 1


def test_nothing_to_read(engine):
    since = end_of_binlog(engine)
    assert changes(engine, since) == ChangeBatch(position=since)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        (None, ChangeFeedMode.AUTO),
        ("", ChangeFeedMode.AUTO),
        (" Binlog ", ChangeFeedMode.BINLOG),
        ("scan", ChangeFeedMode.SCAN),
    ],
)
def test_mode(text, mode):
    assert parse_change_feed_mode(text) == mode
    assert change_feed_mode({} if text is None else {"LAB_CHANGE_FEED": text}) == mode


def test_mode_invalid():
    with pytest.raises(ValueError) as raised:
        change_feed_mode({"LAB_CHANGE_FEED": "bin-log"})
    assert str(raised.value) == "LAB_CHANGE_FEED is 'bin-log': set it to one of auto, binlog, scan (unset means auto)."


@pytest.mark.parametrize(
    ("query", "schema", "touched"),
    [
        ("TRUNCATE samples", LAB, True),
        ("TRUNCATE samples", OTHER, False),
        (f"TRUNCATE {OTHER}.samples", LAB, False),
        (f"ALTER TABLE `{LAB}`.`Samples` ADD x INT", OTHER, True),
        (f"RENAME TABLE {LAB}.samples TO {LAB}.samples_old", OTHER, True),
        (f"DROP DATABASE `{LAB}`", OTHER, True),
        (f"DROP DATABASE {OTHER}", LAB, False),
        ("CREATE TABLE samples_copy (id INT)", LAB, False),
        ("/* lab */ INSERT INTO sample_measurements VALUES (1, 'a', 2)", LAB, True),
        ("ANALYZE TABLE samples", LAB, False),
        ("COMMIT", LAB, False),
    ],
)
def test_statement_detection(query, schema, touched):
    assert (statement_fallback(query, schema, LAB, ["samples", "sample_measurements"]) is not None) == touched


def test_the_library_may_not_reconnect_mid_read():
    """A second stream connection (the library's own reconnect, which resumes mid-transaction) is
    refused; the library's control connection (information_schema) is not counted."""
    opened = []
    connect = one_stream(lambda **settings: opened.append(settings) or len(opened))
    assert connect(host="h") == 1
    assert connect(host="h", db="information_schema") == 2
    assert opened[1] == {"host": "h", "database": "information_schema"}
    with pytest.raises(Reconnected):
        connect(host="h")
