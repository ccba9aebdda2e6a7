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

# The instance configuration (MySQL storage, run queue, pools) and the code location.
COPY docker/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
COPY workspace.yaml ./workspace.yaml

EXPOSE 3000
