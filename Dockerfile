# syntax=docker/dockerfile:1
# The modelship serving image: one model artifact baked in, runs as uid 10001 on a read-only root.
#   docker build --build-arg MODEL_DIR=artifacts/<version> --build-arg MODEL_VERSION=<version> \
#                --build-arg GIT_REVISION=$(git rev-parse HEAD) -t modelship:<version> .
# BASE_IMAGE swaps the runtime base, e.g. for a CUDA-capable image on the GPU pool. It must ship
# CPython 3.11 in /usr/local like the official python images, because the virtualenv points there.
ARG BASE_IMAGE=python:3.11.7-slim-bookworm

# ---- dependencies: a layer that changes only when pyproject.toml does ----------------------------
FROM python:3.11.7-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml ./
# Runtime dependencies only ([project].dependencies); the [dev] extras never enter the image.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# ---- runtime ---------------------------------------------------------------------------------------
# checkov:skip=CKV_DOCKER_7:BASE_IMAGE is an ARG whose default above is a pinned image; checkov cannot resolve ARGs
FROM ${BASE_IMAGE} AS runtime
# The default names a path that does not exist: forgetting MODEL_DIR fails the COPY below instead of
# baking the whole build context.
ARG MODEL_DIR=MODEL_DIR-build-arg-is-required
ARG MODEL_VERSION=unknown
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="modelship" \
      org.opencontainers.image.description="scikit-learn prediction service with a durable Postgres prediction log" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      dev.modelship.model.version="${MODEL_VERSION}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/modelship \
    MODELSHIP_MODEL_DIR=/app/model \
    MODELSHIP_SPOOL_DIR=/var/spool/modelship
RUN groupadd --system --gid 10001 modelship \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin modelship \
    && install -d -o 10001 -g 10001 -m 0750 /var/spool/modelship
COPY --from=deps /opt/venv /opt/venv
# Code and model stay owned by root: the service user can read them, not change them.
WORKDIR /opt/modelship
COPY model/ ./model/
COPY service/ ./service/
COPY ${MODEL_DIR}/ /app/model/
USER 10001:10001
EXPOSE 8000
# slim images have no curl; the interpreter is already there. urlopen raises on non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["uvicorn", "service.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20"]
