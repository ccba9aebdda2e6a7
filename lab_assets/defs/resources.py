"""The resources of the definitions: the lab database named by ``LAB_DB_URL``, the optional
output database ``LAB_OUTPUT_DATABASE``, the lab's names of its tables and columns
(``LAB_SAMPLES_TABLE``, ``LAB_MEASUREMENTS_TABLE``, ``LAB_SAMPLE_COLUMNS``,
``LAB_MEASUREMENT_COLUMNS``; a malformed one stops the definitions from loading, as does a
``LAB_CHANGE_FEED`` other than auto, binlog or scan), and the MySQL IO manager writing into the
output database."""

import os

from dagster import EnvVar

from lab_assets.change_feed.mode import change_feed_mode
from lab_assets.io_manager import MySQLIOManager
from lab_assets.mysql.resource import LAB_OUTPUT_DATABASE_ENV, MySQLResource
from lab_assets.mysql.sessions import LAB_DB_URL_ENV
from lab_assets.sources.locations import source_settings

names = source_settings(os.environ)
change_feed_mode(os.environ)  # read again by each run; a typo stops the definitions from loading
mysql = MySQLResource(
    url=EnvVar(LAB_DB_URL_ENV),
    output_database=os.environ.get(LAB_OUTPUT_DATABASE_ENV) or None,
    samples_table=names["samples_table"],
    measurements_table=names["measurements_table"],
    sample_columns=names["sample_columns"],
    measurement_columns=names["measurement_columns"],
)
RESOURCES = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}
