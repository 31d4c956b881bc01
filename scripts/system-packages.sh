#!/usr/bin/env bash
# Install the Debian packages the test suite needs, when they are missing:
# redis-server (a second server implementation), chromium (the widget's browser test).
# Needs root and apt-get; elsewhere it says what is missing and leaves the tests to skip.
set -euo pipefail
packages=(redis-server redis-sentinel chromium fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "not installing ${missing[*]}: needs root and apt-get; tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts redis-server as a service on install; the tests start their own servers.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server 2>/dev/null || true; fi
pkill -x redis-server 2>/dev/null || true
