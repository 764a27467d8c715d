#!/usr/bin/env bash
# Make sure the programs canarybot's demo and tests run for real are on
# PATH: prometheus and promtool (Debian's prometheus package) and
# docker-registry (Distribution). Installs Debian's packages when it can;
# otherwise says exactly how.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ "${1:-}" != "--demo" ]; then
	command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
fi
[ ${#need[@]} -eq 0 ] && exit 0
install=(apt-get install -y --no-install-recommends "${need[@]}")
if command -v apt-get >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		echo "installing Debian packages: ${need[*]}" >&2
		apt-get update -qq && "${install[@]}" >&2 && exit 0
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		echo "installing Debian packages with sudo: ${need[*]}" >&2
		sudo apt-get update -qq && sudo "${install[@]}" >&2 && exit 0
	fi
fi
cat >&2 <<MSG
missing: ${need[*]}, and this script cannot install them here.
Install them, then run make again:
  Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends ${need[*]}
  elsewhere:      prometheus and promtool from https://prometheus.io/download/,
                  docker-registry (Distribution 2.x) from https://github.com/distribution/distribution/releases
MSG
exit 1
