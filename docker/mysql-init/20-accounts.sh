# shellcheck shell=bash
# The accounts of the compose deployment, set up as README's "Pointing lab_assets at a production
# lab system" tells a lab's DBA to:
#   - LAB_ASSETS_DB_USER (lab_assets) may SELECT the lab's two tables in MYSQL_DATABASE (lab) and
#     nothing else there (no write, no DDL), and has on LAB_OUTPUT_DATABASE (lab_assets) exactly
#     what lab_assets' tables need (OUTPUT_PRIVILEGES in lab_assets/refresh/guard.py);
#   - DAGSTER_DB_USER (dagster) has Dagster's storage database DAGSTER_DB (dagster) and nothing else.
# Neither has any global privilege. The official image's own MYSQL_USER is not used: the image
# grants that account ALL on MYSQL_DATABASE.
#
# Run by the official MySQL image's entrypoint once, on an empty data directory, after
# 10-lab-source-schema.sql (init files run in name order; a table grant needs its table). This
# file is sourced (it is not executable), so it runs in the entrypoint's shell, with its
# docker_process_sql (SQL as root on the init server, which listens on no TCP port) and mysql_error.
# A .sh rather than a .sql: the passwords come from .env through docker-compose.yml's environment,
# which .sql init files cannot read. The SQL is valid on MySQL 8 and MariaDB;
# lab_assets_tests/test_deployment.py runs this file the same way against MariaDB.

lab_assets_create_accounts() {
	local name
	# Identifiers and passwords go into SQL (and the passwords into URLs) unquoted: refuse anything
	# that would need quoting or URL-encoding, naming the variable and never printing a password.
	for name in MYSQL_DATABASE LAB_OUTPUT_DATABASE LAB_ASSETS_DB_USER DAGSTER_DB DAGSTER_DB_USER; do
		if ! [[ ${!name:-} =~ ^[A-Za-z0-9_]+$ ]]; then
			mysql_error "$name must be ASCII letters, digits and _ (docker-compose.yml): '${!name:-}'"
		fi
	done
	for name in LAB_ASSETS_DB_PASSWORD DAGSTER_DB_PASSWORD; do
		if ! [[ ${!name:-} =~ ^[A-Za-z0-9._~-]+$ ]]; then
			mysql_error "$name (.env) must be ASCII letters, digits and - . _ ~ only: it goes into a URL unencoded (README.md, Docker)"
		fi
	done
	# In a database-level GRANT, _ and % are wildcards: escaped, the grant names one database only.
	local output_pattern=${LAB_OUTPUT_DATABASE//_/\\_} dagster_pattern=${DAGSTER_DB//_/\\_}
	local lab_assets="'${LAB_ASSETS_DB_USER}'@'%'" dagster="'${DAGSTER_DB_USER}'@'%'"

	mysql_note "Creating ${LAB_ASSETS_DB_USER} (SELECT on two tables of ${MYSQL_DATABASE}, its own ${LAB_OUTPUT_DATABASE}) and ${DAGSTER_DB_USER} (${DAGSTER_DB} only)"
	# No quote characters in the SQL comments below: the client splits statements on its own.
	docker_process_sql <<EOSQL
-- The output database (LAB_OUTPUT_DATABASE): every table lab_assets creates lives there.
CREATE DATABASE IF NOT EXISTS \`${LAB_OUTPUT_DATABASE}\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS ${lab_assets} IDENTIFIED BY '${LAB_ASSETS_DB_PASSWORD}';
-- The two lab tables: read only.
GRANT SELECT ON \`${MYSQL_DATABASE}\`.\`samples\` TO ${lab_assets};
GRANT SELECT ON \`${MYSQL_DATABASE}\`.\`sample_measurements\` TO ${lab_assets};
-- Its own tables: staging tables, swaps, indexes, writes (OUTPUT_PRIVILEGES).
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON \`${output_pattern}\`.* TO ${lab_assets};
-- The binlog change feed (LAB_CHANGE_FEED, default auto): reading the binlog and its position
-- takes these two global privileges; MySQL 8 writes a ROW binlog by default. Revoke them (or set
-- LAB_CHANGE_FEED=scan) to have lab_assets scan the two tables instead.
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${lab_assets};

-- Dagster storage (DAGSTER_MYSQL_URL): runs, event logs, schedules, sensor ticks; dagster-mysql
-- creates and migrates its tables there.
CREATE DATABASE IF NOT EXISTS \`${DAGSTER_DB}\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS ${dagster} IDENTIFIED BY '${DAGSTER_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON \`${dagster_pattern}\`.* TO ${dagster};
EOSQL
}

lab_assets_create_accounts
