#!/usr/bin/env bash
# Install what the enclave needs on a fresh Debian machine of this kind: a system Python with
# venv (usable by unprivileged sandbox users), node + npm (the JupyterHub proxy), bubblewrap (the
# workspace sandbox), and, for the tests, the PostgreSQL server binaries. Installs only what is
# missing; needs root to install.
set -euo pipefail

need=()
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The workspace sandbox (enclave/sandbox): bubblewrap; setpriv, prlimit, unshare come with util-linux.
[ -x /usr/bin/bwrap ] || need+=(bubblewrap)
if [ "${1:-}" = "--test" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # Headless Chromium for the portal's browser tests (Playwright cannot download one here).
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]} (install them as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian postgresql package starts a cluster of its own; the tests start their own.
  if printf '%s\n' "${need[@]}" | grep -qx postgresql; then
    (command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | while read -r v c _; do
      pg_ctlcluster "$v" "$c" stop || true; done) || true
  fi
fi

# The node tools (configurable-http-proxy 5, oidc-provider 9, the DSFR build) need Node.js 20 or
# newer; Debian 12's own nodejs is 18, so an older node is refused here with the reason rather
# than failing later inside npm or the proxy.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version 2>/dev/null || echo '(none)') is too old: the enclave's node tools need Node.js 20 or newer (Debian 12's nodejs package is 18; install a Node.js 20+ package for this machine, then run this again)" >&2
  exit 1
fi
