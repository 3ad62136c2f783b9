#!/usr/bin/env bash
# Debian packages mjreinforce needs: libosmesa6 for offscreen MuJoCo rendering without a GPU (video).
set -euo pipefail
if dpkg -s libosmesa6 >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libosmesa6 >/dev/null
