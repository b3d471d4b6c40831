#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only those that are missing.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# libseccomp2: the sandbox's syscall filter; iproute2: the network-namespace test hosts;
# docker-compose: validates docker/compose.yml without a Docker engine; npm: axe-core and the editor bundle
for pkg in chromium bubblewrap postgresql redis-server libseccomp2 iproute2 docker-compose; do
  have_pkg "$pkg" || need+=("$pkg")
done
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "Installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
