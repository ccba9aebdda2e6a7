"""Local lab database for trying lab_assets out: ``python -m lab_assets.local_lab create-if-missing``
creates the database named by LAB_DB_URL with the lab's source schema and the 20 fixed samples
(only if it does not exist yet); ``show`` prints experiment_measurements.

This is a development helper, not part of the Dagster definitions: lab_assets itself never writes
``samples`` or ``sample_measurements``."""

from __future__ import annotations

import os
import re
import sys
from importlib.resources import files

import sqlalchemy as sa

from lab_assets.lib.names import EXPERIMENT_MEASUREMENTS
from lab_assets.lib.sql import quote_identifier
from lab_assets.mysql import LAB_DB_URL_ENV, LAB_OUTPUT_DATABASE_ENV, MySQLResource, parse_url


def source_schema_statements() -> list[str]:
    text = re.sub(r"--[^\n]*", "", files("lab_assets").joinpath("source_schema.sql").read_text())
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def create_if_missing(url: str) -> None:
    parsed = parse_url(url)
    database = parsed.database
    if not database:
        raise SystemExit(f"{LAB_DB_URL_ENV} must name a database: {parsed.render_as_string()}")
    server = sa.create_engine(parsed.set(database=""), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.exec_driver_sql(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,)
        ).first()
        if exists:
            print(f"lab database {database!r} exists; left as it is")
            return
        connection.exec_driver_sql(f"CREATE DATABASE {quote_identifier(database)}")
        connection.exec_driver_sql(f"USE {quote_identifier(database)}")
        for statement in source_schema_statements():
            connection.exec_driver_sql(statement)
    print(f"created lab database {database!r} with the source schema and the 20 fixed samples")


def show(url: str) -> None:
    """Prints the flat table, from LAB_OUTPUT_DATABASE when that is set."""
    table = MySQLResource(url=url, output_database=os.environ.get(LAB_OUTPUT_DATABASE_ENV) or None).tables.qualified(
        EXPERIMENT_MEASUREMENTS
    )
    with sa.create_engine(parse_url(url)).connect() as connection:
        result = connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY sample_id LIMIT 50")
        names = list(result.keys())
        rows = [["NULL" if v is None else str(v) for v in row] for row in result]
        (total,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").one()
    widths = [max(len(n), *(len(r[i]) for r in rows)) if rows else len(n) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print(f"({total} rows{', first 50 shown' if total > 50 else ''})")


def main(argv: list[str]) -> None:
    url = os.environ.get(LAB_DB_URL_ENV)
    if not url:
        raise SystemExit(f"set {LAB_DB_URL_ENV}, e.g. mysql+pymysql://root@127.0.0.1:3306/lab")
    commands = {"create-if-missing": create_if_missing, "show": show}
    if len(argv) != 1 or argv[0] not in commands:
        raise SystemExit(f"usage: python -m lab_assets.local_lab {{{'|'.join(commands)}}}")
    commands[argv[0]](url)


if __name__ == "__main__":
    main(sys.argv[1:])
