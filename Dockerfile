# The modelship serving image: one model artifact baked in, runs as uid 10001 on a read-only root.
# `make image MODEL_DIR=artifacts/<version>` passes every build arg below from the artifact's manifest and the
# git checkout. By hand (BuildKit is required: a 20.10 client with DOCKER_BUILDKIT=1, or buildx):
#   DOCKER_BUILDKIT=1 docker build --build-arg MODEL_DIR=artifacts/<version> \
#     --build-arg MODEL_VERSION=<manifest "version"> --build-arg MODEL_SHA256=<manifest "artifact.sha256"> \
#     --build-arg GIT_REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#     -t modelship:<version> .
# Behind a private index or a TLS-intercepting proxy, add either or both of these BuildKit secrets. pip reads
# them while installing; they are mounted for that one step only and never written to a layer:
#   --secret id=pip_conf,src=$HOME/.config/pip/pip.conf --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
# There is no `# syntax=` line on purpose: BuildKit's built-in frontend does all this file needs, while a
# syntax line makes every build fetch a frontend image from Docker Hub, which fails offline and behind mirrors.

# python:3.11.16-slim-bookworm, the current CPython 3.11 patch release, pinned by the digest of its
# multi-platform index as docker-library/repo-info publishes it (repos/python/remote/3.11-slim-bookworm.md,
# build of 2026-08-25). Renovate (renovate.json) proposes new digests for review.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b
# BASE_IMAGE swaps the runtime base, e.g. for a CUDA-capable image on the GPU pool. It must ship CPython 3.11
# in /usr/local like the official python images, because the virtualenv points there: the build checks it.
ARG BASE_IMAGE=${PYTHON_IMAGE}

# checkov:skip=CKV_DOCKER_7:PYTHON_IMAGE is an ARG whose default above is pinned by digest; checkov cannot resolve ARGs
# ---- lock: the runtime subset of uv.lock, exported as requirements with hashes ----------------------------
FROM ${PYTHON_IMAGE} AS lock
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN --mount=type=secret,id=pip_conf --mount=type=secret,id=ca_bundle \
    if [ -f /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi; \
    if [ -f /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    pip install --no-cache-dir --target /opt/uv "uv==${UV_VERSION}"
WORKDIR /build
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv export --frozen --no-dev --no-emit-project --no-header --format requirements-txt \
        -o requirements.txt

# ---- deps: the runtime venv. Its only input is that export, so a pyproject.toml edit that leaves the
# runtime pins alone (a ruff setting, a dev dependency) reuses this layer.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY --from=lock /build/requirements.txt /tmp/requirements.txt
# A venv without pip or setuptools, filled by the base's pip; tests folders are dropped (about 65 MB).
RUN --mount=type=secret,id=pip_conf --mount=type=secret,id=ca_bundle \
    if [ -f /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi; \
    if [ -f /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.txt \
    && find /opt/venv -depth -type d \( -name tests -o -name test \) -exec rm -rf '{}' +

# ---- app: code and model with explicit modes. A checkout or a training run under umask 077 leaves 0600
# files and 0700 folders that uid 10001 could not read; here they become root-owned and world-readable.
FROM ${PYTHON_IMAGE} AS app
# The default names a path that does not exist: forgetting MODEL_DIR fails the COPY below instead of
# baking the whole build context.
ARG MODEL_DIR=MODEL_DIR-build-arg-is-required
# Only the artifact contract of model/ serves (tests/service/test_run.py derives this list from service's imports).
COPY model/__init__.py model/artifact.py model/manifest.py model/drift.py /out/opt/modelship/model/
COPY service/ /out/opt/modelship/service/
COPY ${MODEL_DIR}/ /out/app/model/
RUN chown -R 0:0 /out && chmod -R u=rwX,go=rX /out

# ---- runtime ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE
ARG MODEL_VERSION=""
ARG MODEL_SHA256=""
ARG GIT_REVISION=""
ARG CREATED=""
# The repository URL (`git config remote.origin.url`, which `make image` passes); empty for a checkout without one.
ARG SOURCE=""
LABEL org.opencontainers.image.title="modelship" \
      org.opencontainers.image.description="scikit-learn prediction service with a durable Postgres prediction log" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      dev.modelship.model.version="${MODEL_VERSION}" \
      dev.modelship.model.sha256="${MODEL_SHA256}"
# MODELSHIP_ALLOWED_ARTIFACT_SHA256 pins the baked model: an image whose model.joblib was swapped later,
# even with a manifest updated to match, refuses to load it. The Deployment and compose pin it too.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/modelship \
    MODELSHIP_MODEL_DIR=/app/model \
    MODELSHIP_SPOOL_DIR=/var/spool/modelship \
    MODELSHIP_ALLOWED_ARTIFACT_SHA256=${MODEL_SHA256}
RUN groupadd --system --gid 10001 modelship \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin modelship \
    && install -d -o 10001 -g 10001 -m 0750 /var/spool/modelship
COPY --from=deps /opt/venv /opt/venv
# Code and model stay owned by root: the service user can read them, not change them.
COPY --from=app /out/ /
WORKDIR /opt/modelship
# Fails the build, rather than the first start, on a base without CPython 3.11 in /usr/local, a service
# that does not import, an artifact that fails its checks, or labels that contradict the manifest.
RUN ["/opt/venv/bin/python", "-m", "service.buildcheck"]
USER 10001:10001
EXPOSE 8000
# slim images have no curl; the interpreter is already there. urlopen raises on non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["uvicorn", "service.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20"]
