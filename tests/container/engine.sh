#!/usr/bin/env bash
# Idempotent: make a Docker engine answer on this machine (`make docker-engine`).
# Installs Debian's docker.io (20.10), docker-compose (1.29) and debootstrap when missing, and starts
# dockerd in the background when no daemon answers. A daemon someone else started is left alone.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/modelship-dockerd.log}

# A machine with its own engine (Docker CE on a CI runner) keeps it: docker.io would conflict with it.
wanted=(debootstrap)
command -v dockerd >/dev/null || wanted+=(docker.io)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || wanted+=(docker-compose)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "docker-engine: installing ${missing[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    # Other jobs on a shared machine may hold the dpkg lock: wait for it instead of failing.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! pgrep -x dockerd >/dev/null; then
    echo "docker-engine: starting dockerd (log: $LOG)"
    nohup /usr/sbin/dockerd >"$LOG" 2>&1 </dev/null &
fi
for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
done
echo "docker-engine: dockerd did not answer within 60 s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
