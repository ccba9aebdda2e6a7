"""The plain-SQL reference build of the flat table: what lab_assets' full refresh is timed
against, written independently of lab_assets' SQL builders."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pymysql

from bench.lib.server import connect, one_row

REFERENCE_TABLE = "experiment_measurements_reference"


@dataclass
class ReferenceRun:
    seconds: float  # with ``killed``: the time limit it was killed at
    steps: dict[str, float]
    killed: bool = False


# MariaDB / MySQL: "Query execution was interrupted" (KILL QUERY, max_statement_time).
ER_QUERY_INTERRUPTED = 1317


def reference_build(database: str, timeout: float | None = None) -> ReferenceRun:
    """The straightforward build: one recursive CTE, one MAX(CASE) pivot, one INSERT ... SELECT.
    Written independently of lab_assets' SQL builders. The INSERT ... SELECT is killed (KILL QUERY
    from a second connection) once the build has run ``timeout`` seconds; its table is then
    dropped (whatever the rollback left)."""
    steps: dict[str, float] = {}
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS `{REFERENCE_TABLE}`")
        started = time.monotonic()
        cursor.execute("SELECT DISTINCT measurement_type FROM sample_measurements WHERE measurement_type IS NOT NULL")
        types = sorted(r[0] for r in cursor.fetchall())
        assert all(t.isidentifier() and t.islower() for t in types), types  # the generator's types only
        cursor.execute("SELECT COUNT(*) FROM samples")
        (count,) = one_row(cursor)
        cursor.execute("SELECT @@version")
        mariadb = "mariadb" in one_row(cursor)[0].lower()
        variable = "max_recursive_iterations" if mariadb else "cte_max_recursion_depth"
        cursor.execute(f"SET SESSION {variable} = {count + 1}")
        measurement_columns = [f"measurement_{t}" for t in types]
        cursor.execute(
            f"CREATE TABLE `{REFERENCE_TABLE}` (experiment_id INT NULL, top_parent_id INT NULL,"
            " sample_id INT NOT NULL, "
            + "".join(f"`{c}` DECIMAL(16,6) NULL, " for c in measurement_columns)
            + "PRIMARY KEY (sample_id), KEY (top_parent_id), KEY (experiment_id))"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
        steps["prepare"] = round(time.monotonic() - started, 2)
        pivots = ", ".join(
            f"MAX(CASE WHEN measurement_type = '{t}' THEN value END) AS `measurement_{t}`" for t in types
        )
        column_list = "".join(f", `{c}`" for c in measurement_columns)
        insert_sql = f"""INSERT INTO `{REFERENCE_TABLE}` (experiment_id, top_parent_id, sample_id{column_list})
WITH RECURSIVE tree (sample_id, top_parent_id) AS (
  SELECT id, id FROM samples WHERE parent_id IS NULL
  UNION ALL
  SELECT child.id, tree.top_parent_id FROM tree JOIN samples AS child ON child.parent_id = tree.sample_id
)
SELECT s.experiment_id, tree.top_parent_id, s.id{"".join(f", pivot.`{c}`" for c in measurement_columns)}
FROM samples AS s
LEFT JOIN tree ON tree.sample_id = s.id
LEFT JOIN (SELECT sample_id, {pivots} FROM sample_measurements GROUP BY sample_id) AS pivot ON pivot.sample_id = s.id"""
        step_started = time.monotonic()
        killer, state = None, {"running": True, "killed": False}
        lock = threading.Lock()
        if timeout:
            thread_id = connection.thread_id()

            def kill() -> None:
                with lock:
                    if not state["running"]:
                        return
                    state["killed"] = True
                    with connect() as second, second.cursor() as other:
                        other.execute(f"KILL QUERY {int(thread_id)}")

            killer = threading.Timer(max(0.0, timeout - (step_started - started)), kill)
            killer.daemon = True
            killer.start()
        try:
            cursor.execute(insert_sql)
        except pymysql.err.OperationalError as error:
            if not (state["killed"] and error.args[0] == ER_QUERY_INTERRUPTED):
                raise
        finally:
            with lock:
                state["running"] = False
            if killer is not None:
                killer.cancel()
        steps["insert_select"] = round(time.monotonic() - step_started, 2)
        if state["killed"]:
            # Seconds until the statement came back (the rollback of the partial INSERT included).
            steps["until_killed_statement_returned"] = steps.pop("insert_select")
            cursor.execute(f"DROP TABLE IF EXISTS `{REFERENCE_TABLE}`")
            return ReferenceRun(float(timeout or 0), steps, killed=True)
        return ReferenceRun(time.monotonic() - started, steps)
