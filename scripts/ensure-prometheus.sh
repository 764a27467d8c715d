#!/usr/bin/env bash
# Make sure the prometheus binary is on PATH: canarybot's demo and tests run
# the real one. Installs Debian's package when it can; otherwise says how.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
	exit 0
fi
install=(apt-get install -y --no-install-recommends prometheus)
if command -v apt-get >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		echo "prometheus not found: installing Debian's package" >&2
		apt-get update -qq && "${install[@]}" >&2 && exit 0
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		echo "prometheus not found: installing Debian's package with sudo" >&2
		sudo apt-get update -qq && sudo "${install[@]}" >&2 && exit 0
	fi
fi
cat >&2 <<'MSG'
prometheus is not installed and this script cannot install it here.
Install it, then run make again:
  Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends prometheus
  elsewhere:      download it from https://prometheus.io/download/ and put `prometheus` on PATH
MSG
exit 1
