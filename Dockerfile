# One image for both processes: `scoreboard serve` (the default) and `scoreboard worker`.
# Built in two stages: the first installs the locked dependencies and the wheel into a virtual
# environment, the second copies only that onto a clean slim Python (no pip cache, no build
# files). No container engine runs on the development machine, so the tests do not build it:
# tests/test_deployment_docker.py checks this file against the project (stages, user, ports,
# commands), and tests/test_package.py runs the same pip steps and the installed commands.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/scoreboard
WORKDIR /src
# The lock first, so that a change to the code alone reuses this layer.
COPY requirements.txt ./
RUN /opt/scoreboard/bin/pip install --require-hashes -r requirements.txt
COPY pyproject.toml README.md ./
COPY scoreboard ./scoreboard
RUN /opt/scoreboard/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/scoreboard/bin/pip install --no-deps /wheels/scoreboard-*.whl

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PATH=/opt/scoreboard/bin:$PATH
# A numeric user, so that Kubernetes' runAsNonRoot can check it.
RUN useradd --system --uid 10001 --no-log-init --no-create-home --shell /usr/sbin/nologin scoreboard
COPY --from=build /opt/scoreboard /opt/scoreboard
USER 10001
# PORT (web: API, Socket.IO, /healthz, /readyz, /metrics) and METRICS_PORT (worker) defaults.
EXPOSE 3000 9464
# Whichever process this container runs answers /healthz: the web node on PORT, else the worker
# on METRICS_PORT. Orchestrators with probes of their own (Kubernetes) ignore this.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["scoreboard", "healthcheck"]
CMD ["scoreboard", "serve"]
