"""The resources of the definitions: the lab database named by ``LAB_DB_URL``, the optional
output database ``LAB_OUTPUT_DATABASE``, and the MySQL IO manager writing into the latter."""

import os

from dagster import EnvVar

from lab_assets.io_manager import MySQLIOManager
from lab_assets.mysql import LAB_OUTPUT_DATABASE_ENV, MySQLResource
from lab_assets.sessions import LAB_DB_URL_ENV

mysql = MySQLResource(url=EnvVar(LAB_DB_URL_ENV), output_database=os.environ.get(LAB_OUTPUT_DATABASE_ENV) or None)
RESOURCES = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}
