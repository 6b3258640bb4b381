# The one image every process of the production stack runs (serve, relay, projector,
# worker); docker-compose.yml picks the command. Not built on the development machine
# (no Docker engine; tests/unit/test_deployment_files.py checks it); the hosted
# workflow builds it (.github/workflows/ci.yml); see docs/production.md.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY domain domain
COPY application application
COPY infrastructure infrastructure
COPY projections projections
COPY api api
RUN pip install --no-cache-dir '.[production,api]'
RUN useradd --create-home bulk && mkdir -p /data && chown bulk /data
USER bulk
ENV BULK_DATA_DIR=/data
ENTRYPOINT ["bulkactions"]
