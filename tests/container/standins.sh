#!/usr/bin/env bash
# Stand-in base images for a machine where Docker Hub cannot be reached (`make container-standins`).
# Built once per machine: a tag that already exists is kept. Every tag and label says "stand-in";
# nothing here is shipped: the Dockerfile's default BASE_IMAGE stays the real, digest-pinned upstream.
#   modelship-standin/debian:bookworm-minbase      debootstrap --variant=minbase bookworm
#   modelship-standin/python:3.11-slim-bookworm    + CPython 3.11 in /usr/local, as python:3.11-slim-bookworm
#   modelship-standin/postgres:15-bookworm         Debian's postgresql with the official image's env contract
set -euo pipefail

# A docker client that does BuildKit: a newer CLI without the buildx plugin refuses, Debian's 20.10 does it.
if [[ -z ${DOCKER:-} ]]; then
    DOCKER=docker
    docker buildx version >/dev/null 2>&1 || DOCKER=/usr/bin/docker
fi
HERE=$(cd "$(dirname "$0")" && pwd)
DEBIAN_TAG=modelship-standin/debian:bookworm-minbase
PYTHON_TAG=modelship-standin/python:3.11-slim-bookworm
POSTGRES_TAG=modelship-standin/postgres:15-bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The runtime libraries python:3.11-slim-bookworm installs for CPython's extension modules
# (docker-library/python 3.11/slim-bookworm/Dockerfile), minus Tk.
PY_LIBS=ca-certificates,netbase,tzdata,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,zlib1g,libuuid1,libncursesw6,libreadline8,libexpat1,libtirpc3,libnsl2,libcrypt1,libgdbm6

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

rootfs=""
cleanup() { [[ -n $rootfs ]] && rm -rf "$rootfs"; return 0; }
trap cleanup EXIT

# CPython 3.11 copied from this machine (the honest fast path: building it costs minutes on 2 cores).
# It keeps the official layout: /usr/local/bin/python3.11, /usr/local/lib/python3.11, libpython in
# /usr/local/lib; tests, Tk and IDLE are left out as the official slim image leaves them out.
copy_cpython() {
    local dest=$1 src
    src=$(python3.11 -c 'import sys; print(sys.base_prefix)')
    tar -C "$src" -cf - --exclude=site-packages --exclude=test --exclude=tests --exclude=idle_test \
        --exclude=__pycache__ --exclude=tkinter --exclude='_tkinter*' --exclude=idlelib --exclude=turtledemo \
        bin/python3.11 lib/python3.11 lib/libpython3.11.so.1.0 lib/libpython3.11.so lib/libpython3.so \
        | tar -C "$dest/usr/local" -xf -
    ln -sf python3.11 "$dest/usr/local/bin/python3"
    ln -sf python3 "$dest/usr/local/bin/python"
    chroot "$dest" ldconfig
    PIP_ROOT_USER_ACTION=ignore chroot "$dest" /usr/local/bin/python3.11 -m ensurepip --default-pip >/dev/null
    ln -sf pip3 "$dest/usr/local/bin/pip"
}

if ! have "$DEBIAN_TAG" || ! have "$PYTHON_TAG"; then
    rootfs=$(mktemp -d /var/tmp/modelship-standin.XXXXXX)
    echo "stand-in: debootstrap --variant=minbase bookworm (once per machine)"
    debootstrap --variant=minbase --include="$PY_LIBS" bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; exit 1; }
    rm -f "$rootfs.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | "$DOCKER" import \
        --change 'LABEL dev.modelship.standin="debootstrap --variant=minbase bookworm; not an upstream image"' \
        --change 'CMD ["bash"]' - "$DEBIAN_TAG" >/dev/null
    copy_cpython "$rootfs"
    version=$(chroot "$rootfs" /usr/local/bin/python3 -c 'import platform; print(platform.python_version())')
    tar -C "$rootfs" -c . | "$DOCKER" import \
        --change "LABEL dev.modelship.standin=\"stand-in for python:3.11-slim-bookworm: debootstrap bookworm + CPython $version copied from the build machine\"" \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "ENV PYTHON_VERSION=$version" \
        --change 'CMD ["python3"]' - "$PYTHON_TAG" >/dev/null
    echo "stand-in: built $DEBIAN_TAG and $PYTHON_TAG (CPython $version)"
fi

if ! have "$POSTGRES_TAG"; then
    echo "stand-in: building $POSTGRES_TAG from Debian's postgresql"
    DOCKER_BUILDKIT=1 "$DOCKER" build -q --build-arg BASE="$DEBIAN_TAG" -t "$POSTGRES_TAG" \
        "$HERE/standin-postgres" >/dev/null
fi
echo "stand-in images: $PYTHON_TAG, $POSTGRES_TAG (local stand-ins: Docker Hub is unreachable here)"
