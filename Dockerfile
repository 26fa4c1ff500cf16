# syntax=docker/dockerfile:1
# CPU image of the digit service: ONNX Runtime on the CPU, the committed model store, no TensorFlow.
#
#   docker build -t digit-serving .
#   docker run --rm -p 8000:8000 digit-serving
#   docker run --rm -p 8000:8000 -e DIGITS_WORKERS=2 -e DIGITS_LOG_LEVEL=debug digit-serving
#
# Every setting is a DIGITS_* environment variable (see service/settings.py and the README).
# scripts/replay_dockerfile.py replays these steps in a fresh virtual environment, without Docker.
# PYTHON_IMAGE may be any image with `python` and `pip` on PATH (a local Debian base: see README
# "Deploying"). buildah keeps HEALTHCHECK only with `--format docker` (OCI images have no such field).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# An unprivileged user to run as; it owns nothing in /app, so code and models are read-only to it.
RUN groupadd --system --gid 10001 digits \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin digits

# Dependencies before the source, so this layer is rebuilt only when the lock file changes.
# The lock pins the `serve` extra and everything it pulls in: no TensorFlow, no training code.
# PIP_CERT (unset by default) names a CA bundle mounted for the build only, for a package index
# reached through a proxy with its own certificate authority; the bundle is never copied in:
#   buildah bud --format docker -v /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro \
#     --build-arg PIP_CERT=/run/build-ca.crt -t digit-serving .
ARG PIP_CERT
COPY requirements/serve.lock requirements/serve.lock
RUN pip install --no-compile -r requirements/serve.lock

COPY digit_contract/ digit_contract/
COPY digit_frontend/ digit_frontend/
COPY service/ service/
COPY model_store/ model_store/

ENV DIGITS_HOST=0.0.0.0 \
    DIGITS_PORT=8000 \
    DIGITS_MODEL_STORE=/app/model_store \
    DIGITS_DEVICE=cpu \
    ORT_DISABLE_TELEMETRY=1

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 8001: the Open Inference Protocol's gRPC port, served when DIGITS_GRPC_PORT=8001 is set.
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "service.server.healthcheck"]
# Exec form: the server is PID 1 and gets SIGTERM directly (graceful shutdown).
CMD ["python", "-m", "service"]
