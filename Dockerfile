# Central services: ingest, analytics and the dashboards CLI: the `server` extra (DuckDB, matplotlib,
# Grafana SDK/client), no model stack (no torch, no OpenCV).
#   docker build -t footfall .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY edge edge
COPY ingest ingest
COPY analytics analytics
COPY dashboards dashboards
COPY footfall footfall
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[server]"

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/footfall --create-home footfall
USER footfall
WORKDIR /var/lib/footfall
ENTRYPOINT []
CMD ["footfall", "--help"]
