"""The resources of the definitions: the lab database named by ``LAB_DB_URL`` and the MySQL IO
manager writing into it."""

from dagster import EnvVar

from lab_assets.io_manager import MySQLIOManager
from lab_assets.mysql import LAB_DB_URL_ENV, MySQLResource

mysql = MySQLResource(url=EnvVar(LAB_DB_URL_ENV))
RESOURCES = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}
