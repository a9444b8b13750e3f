# syntax=docker/dockerfile:1
# One image for every voicecall role, chosen by the command:
#   docker run IMAGE                                   the API on port 8000 (default)
#   docker run IMAGE worker --processes 2 --threads 8  Dramatiq workers, metrics on 9191
#   docker run IMAGE scheduler                         the scheduler alone (optional)
#   docker run IMAGE esms-sim --host 0.0.0.0 --port 8081   the eSMS simulator (demos)
# Settings are environment variables (docs: voicecall/config/settings.py). Every command this file
# runs is exercised by tests/test_dockerfile_commands.py; hadolint lints it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install voicecall and its dependencies into a virtualenv (wheels only) -------
# The dependencies are exactly requirements/image.txt (the api, worker, sim and otel extras; `make
# lock`), hash-checked, in a layer of their own that a rebuild reuses until the lock changes.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all:
WORKDIR /src
COPY requirements/image.txt ./requirements/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --no-compile --require-hashes -r /src/requirements/image.txt
COPY pyproject.toml ./
COPY voicecall ./voicecall
COPY producer ./producer
COPY worker ./worker
COPY simulator ./simulator
RUN /opt/venv/bin/pip install --no-cache-dir --no-compile --no-deps /src

# --- runtime: the virtualenv and the healthcheck, no build tools, not root ---------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="voicecall" \
      org.opencontainers.image.description="Outbound voice calls through eSMS.vn: API, Dramatiq workers, scheduler, simulator"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    METRICS_PORT=9191 \
    METRICS_HOST=0.0.0.0
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /usr/local/bin/voicecall-healthcheck
WORKDIR /app
# A numeric user with no entry in /etc/passwd: Kubernetes' runAsNonRoot can verify it.
# Writable paths: /tmp only (Prometheus multiprocess files); mount an emptyDir there.
USER 10001:10001
EXPOSE 8000 9191 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/voicecall-healthcheck"]
ENTRYPOINT ["voicecall"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
