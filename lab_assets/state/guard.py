"""What every step that writes lab_assets' tables does first (:func:`guarded_build`): check its
privileges (lab_assets.mysql.grants), that every source table and column it reads is there by the
names the settings give them (:func:`check_sources`: a missing one stops the step with one
sentence naming it, before any write), then take the output database's build lock
(lab_assets.state.build_lock) for the whole step, computation and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagster import AssetExecutionContext, DagsterLogManager, Failure

from lab_assets.mysql.catalog import source_drift
from lab_assets.mysql.errors import explaining
from lab_assets.mysql.grants import check_privileges
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import FULL_REFRESH_TAG, FULL_REFRESH_VALUE
from lab_assets.state.build_lock import build_lock, holder_of


def check_sources(mysql: MySQLResource) -> None:
    """Raises ``Failure`` with one sentence naming a missing source table or column (the
    variable that names it, what the table has instead), before anything is written: a lab
    that renamed a column would otherwise meet a raw ``1054 Unknown column`` in the middle of a
    build. After the grant check, since information_schema hides what the account may not read."""
    tables = mysql.tables
    with mysql.connect() as connection:
        drift = source_drift(connection, tables)
    if drift is not None:
        raise Failure(
            description=f"{drift}; nothing was written.", metadata={"source_database": tables.source_database}
        )


@contextmanager
def guarded_build(
    log: DagsterLogManager, mysql: MySQLResource, run_id: str, step: str, io_manager_schema: str | None = None
) -> Iterator[Callable[[], None]]:
    """Privileges checked, output database present, build lock held: wrap every step that writes.
    Yields :func:`build_lock`'s check, to call before each write. ``io_manager_schema``: where the
    IO manager writes these assets' tables, which must be the resource's output database (the
    refresh's work tables live there too)."""
    with explaining():
        output = mysql.tables.output_database  # reads the server (the parent index)
    if io_manager_schema is not None and io_manager_schema != output:
        raise Failure(
            description=f"the IO manager writes into database {io_manager_schema} but lab_assets' refresh works"
            f" in {output}: set the output database once, with LAB_OUTPUT_DATABASE (MySQLResource.output_database),"
            " and leave MySQLIOManager's schema unset. Nothing was written."
        )
    with explaining():
        check_privileges(log, mysql)
        check_sources(mysql)
        mysql.ensure_output_database()
        with build_lock(log, mysql, holder_of(run_id, step)) as still_held:
            yield still_held


def io_manager_schema(context: AssetExecutionContext) -> str | None:
    """The database the run's IO manager writes into, when it is lab_assets' MySQL IO manager."""
    return getattr(getattr(context.resources, "io_manager", None), "schema", None)


def should_full_refresh(context: AssetExecutionContext) -> bool:
    """The run asks for a full refresh (tag ``lab_assets/refresh=full``): every table is rebuilt
    whole from the sources instead of refreshed incrementally."""
    return context.run.tags.get(FULL_REFRESH_TAG) == FULL_REFRESH_VALUE
