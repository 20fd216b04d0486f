#!/usr/bin/env bash
# Set up everything hakeeper needs on a fresh Debian machine: system packages (when root) and a local
# virtualenv with the project and its development tools. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  resource-agents            # real OCF agents: ocf:heartbeat:Dummy, IPaddr2, ...
  pacemaker-resource-agents  # ocf:pacemaker:Stateful, ping, attribute
  pacemaker-cli-utils        # crm_simulate: the peer our policy engine is compared with
  fence-agents               # real fence agents (fence_dummy) for fencing tests
  iproute2 iputils-ping arping curl   # curl: the lab client namespace asks the service through the VIP
  chromium chromium-driver   # headless browser test of the web dashboard (Selenium + Debian's chromedriver)
)

install_debian_packages() {
  command -v dpkg-query >/dev/null || return 0
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: not root, skipping Debian packages: ${missing[*]} (tests that need them will be skipped)" >&2
    return 0
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  local venv=.venv
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -e '.[dev]'
    touch "$venv/.installed"
  fi
}

install_debian_packages
setup_venv
