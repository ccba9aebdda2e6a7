# One image for the Dagster webserver and the daemon (docker-compose.yml runs both).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/dagster/app

# The package (pyproject.toml pins dagster, dagster-webserver and dagster-mysql).
COPY pyproject.toml README.md ./
COPY lab_assets ./lab_assets
RUN pip install .

# The instance configuration: the repository's dagster.yaml (run queue, pools), the one every way
# lab_assets runs uses, with the MySQL storage of docker/storage-mysql.yaml appended. And the code location.
COPY dagster.yaml docker/storage-mysql.yaml ./instance/
RUN mkdir -p ${DAGSTER_HOME} && cat instance/dagster.yaml instance/storage-mysql.yaml > ${DAGSTER_HOME}/dagster.yaml
COPY workspace.yaml ./workspace.yaml

EXPOSE 3000
