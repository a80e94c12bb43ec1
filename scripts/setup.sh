#!/usr/bin/env bash
# Installs everything the product and its tests need on a fresh Debian machine:
# system packages (only those missing), the virtualenv with pinned Python packages, and the
# front-end packages from npm. Safe to run again; it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# Binary → Debian package. ffmpeg makes the audio, chromium runs the browser tests,
# espeak-ng speaks the demo batch, systemd-analyze checks the rendered service units.
declare -A NEEDED=([ffmpeg]=ffmpeg [ffprobe]=ffmpeg [chromium]=chromium [espeak-ng]=espeak-ng
  [systemd-analyze]=systemd)
missing=()
for bin in "${!NEEDED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${NEEDED[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r "${1:-requirements-dev.txt}"

if [ -f package.json ]; then
  npm ci --silent --no-audit --no-fund
fi
