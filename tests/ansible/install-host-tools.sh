#!/usr/bin/env bash
# Installs what tests/ansible needs on a fresh Debian 12 machine (run as root), then builds the
# host image and the artefact mirror so the test run itself starts warm. ~6 minutes on 2 cores.
#   bash tests/ansible/install-host-tools.sh [VENV]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${FRAUDWATCH_ANSIBLE_VENV:-/tmp/venv-ansible}}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq podman runc debootstrap maven openjdk-17-jre-headless >/dev/null
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/python" "$here/debian_rootfs.py"
"$venv/bin/python" "$here/artifact_mirror.py"
