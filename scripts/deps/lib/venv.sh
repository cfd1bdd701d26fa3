# Sourced by scripts/deps/*.sh (a folder of its own, so install-deps.sh,
# which runs every scripts/deps/*.sh, does not run it):
# `ensure_venv DIR` makes a Python venv at DIR, installing Debian's
# python3-venv first when python3 cannot make one (Debian's python3 has
# ensurepip only with it). apt gets its own TMPDIR because parallel test
# runs here may clean /tmp under it.
ensure_venv() {
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "installing Debian package: python3-venv"
    export TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  if [ ! -x "$1/bin/python" ]; then
    python3 -m venv "$1"
  fi
}
