#!/usr/bin/env bash
# deps.sh [extra-package ...]: install, on Debian 12 as root, every package
# proxyfs-c needs to build, test and run. Idempotent and quiet when all is
# present; runs apt-get update only when something is missing.
# The list here is the one place packages are named (the Dockerfile calls
# this script too).
set -euo pipefail

PFS_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl
  clang libclang-rt-14-dev                       # fuzzing (libFuzzer)
  libssl-dev openssl libcurl4-openssl-dev libjansson-dev
  libmicrohttpd-dev liblmdb-dev libcmocka-dev
  libfuse3-dev fuse3
  python3 procps psmisc
  chromium                                       # HTML page tests (headless)
)

missing=()
for p in "${PFS_PACKAGES[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install)" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
