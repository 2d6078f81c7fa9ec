#!/usr/bin/env bash
# Install the Debian packages the tests use, only those missing (needs root or sudo):
# GDAL's command-line tools (ogrinfo/ogr2ogr OAPIF: the client QGIS uses), Chromium for
# browser tests, CJK fonts so Chinese renders in screenshots and reports.
set -euo pipefail
pkgs=(gdal-bin chromium fonts-noto-cjk)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "system.sh: all of ${pkgs[*]} present" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "system.sh: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
