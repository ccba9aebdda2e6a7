-- Runs once, when the MySQL 8 container initialises an empty data directory (before
-- 10-lab-source-schema.sql, which creates the lab's tables in MYSQL_DATABASE=lab).
-- Dagster's instance storage (runs, event logs, schedules, sensor ticks) gets a database and a
-- user of its own, apart from the lab data: DAGSTER_MYSQL_URL in docker-compose.yml points here.
CREATE DATABASE IF NOT EXISTS dagster CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'dagster'@'%' IDENTIFIED BY 'dagster';
GRANT ALL PRIVILEGES ON dagster.* TO 'dagster'@'%';
