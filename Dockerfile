# syntax=docker/dockerfile:1
# kafka-connect-exporter container image.
#   docker build -t kafka-connect-exporter .
#   docker run -p 9838:9838 -v ./config.yml:/etc/kafka-connect-exporter/config.yml:ro kafka-connect-exporter

# ---- builder: install the package and its dependencies into a self-contained venv ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY simulator ./simulator

# Build a wheel first so the runtime venv holds a normal (non-editable) install and no source tree.
RUN python -m venv /opt/venv \
    && python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir /wheels/*.whl

# ---- runtime ----
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="kafka-connect-exporter" \
      org.opencontainers.image.description="Prometheus exporter, dashboards, alerts and auto-healer for Kafka Connect and Confluent Cloud connectors" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXPORTER_HEALTHCHECK_URL="http://127.0.0.1:9838/healthz"

# Fixed, unprivileged UID/GID so mounted config and secrets can be granted to it explicitly.
RUN groupadd --system --gid 10001 exporter \
    && useradd --system --no-log-init --uid 10001 --gid exporter --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
    && mkdir -p /etc/kafka-connect-exporter

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
EXPOSE 9838

# slim has no curl; the venv's python does the probe. Override EXPORTER_HEALTHCHECK_URL if the listen port changes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['EXPORTER_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["kafka-connect-exporter"]
CMD ["--config.file=/etc/kafka-connect-exporter/config.yml"]
