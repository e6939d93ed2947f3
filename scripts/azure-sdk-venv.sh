#!/usr/bin/env bash
# Creates the Python virtual environment the Azure SDK test drives (tests/it/azure_sdk.rs
# runs tests/azure_sdk/sdk_e2e.py with it): Microsoft's azure-mgmt-security 7.0.0 and
# azure-core, pinned in tests/azure_sdk/requirements.txt, installed with pip from PyPI.
# Where: $STEWARD_AZURE_SDK_VENV, else .venv-azure-sdk at the workspace root (the test
# looks in the same place). Idempotent: does nothing when the environment already holds
# every pinned version. Called by .ci/install-deps; needs python3 (and, on Debian, its
# venv module, which it installs with apt when run as root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${STEWARD_AZURE_SDK_VENV:-$root/.venv-azure-sdk}"
req="$root/tests/azure_sdk/requirements.txt"
python="$(command -v python3 || true)"
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
[ -n "$python" ] || { echo "python3 is missing: install it (apt-get install python3)" >&2; exit 1; }

# Every pinned `name==version` of the requirements is what the venv holds.
satisfied() {
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" - "$req" <<'PY'
import importlib.metadata as md, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, version = line.partition("==")
    try:
        if md.version(name) != version:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
PY
}

if satisfied; then
  echo "azure SDK venv present: $venv"
  exit 0
fi
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "python3's venv module is missing: apt-get install python3-venv (as root), then run $0 again" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
satisfied || { echo "the azure SDK venv at $venv does not hold $req after pip install" >&2; exit 1; }
echo "azure SDK venv ready: $venv"
