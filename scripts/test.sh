#!/usr/bin/env bash
# The test command: installs what the tests need (Mosquitto, InfluxDB 1.x, Chromium, and OpenSSL
# for scripts/make-certs.sh, from Debian; Python packages into .venv), checks style, and runs the
# whole suite against real servers.
#
# `bash scripts/test.sh --fast` is the quick loop: style and type checks, then only the tests that need
# no server, no model and are not slow (README: the quick loop), on every core. It installs nothing
# once .venv has the test extra (the first run installs the Python packages, not the servers). Any
# other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  export YOLO_OFFLINE=1 YOLO_VERBOSE=False
  # A .venv from before pytest-xdist joined the test extra gets it too.
  .venv/bin/python -c "import xdist" 2>/dev/null || EXTRAS=test bash scripts/install.sh
  .venv/bin/python -m ruff check .
  .venv/bin/python -m ruff format --check .
  bash scripts/typecheck.sh
  exec .venv/bin/python -m pytest -q -n auto -m "not servers and not model and not slow" "$@"
fi
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
EXTRAS=export,test bash scripts/install.sh
export YOLO_OFFLINE=1 YOLO_VERBOSE=False
export YOLO_CONFIG_DIR=${YOLO_CONFIG_DIR:-$PWD/.venv/yolo-config}
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
bash scripts/typecheck.sh
.venv/bin/python -m pytest "$@"
