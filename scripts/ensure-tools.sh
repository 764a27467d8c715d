#!/usr/bin/env bash
# Make sure the programs canarybot's demo and tests run for real are on
# PATH. Installs Debian's packages when it can (as root, or with
# passwordless sudo); otherwise says exactly how.
#
#   ensure-tools.sh          make test: prometheus and promtool (Debian's
#                            prometheus) and docker-registry (Distribution);
#                            chromium for the status page's browser test,
#                            which skips without it unless
#                            CANARYBOT_REQUIRE_BROWSER is set (CI sets it)
#   ensure-tools.sh --demo   make demo: prometheus and promtool
#   ensure-tools.sh --e2e    make e2e: prometheus and promtool, Debian's
#                            redis-server, and kubectl
#
# kubectl is not in Debian's archive at a usable version (bookworm's
# kubernetes-client is 1.20; the e2e suite's kube-apiserver is the one
# scripts/e2e-tools.sh builds), so --e2e never installs it: when it is
# missing, it says how to install the matching upstream release.
set -euo pipefail
mode=${1:-}
case "$mode" in
"" | --demo | --e2e) ;;
*)
	echo "usage: $0 [--demo | --e2e]" >&2
	exit 2
	;;
esac

need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
case "$mode" in
"") command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry) ;;
--e2e) command -v redis-server >/dev/null 2>&1 || need+=(redis-server) ;;
esac
browser=
if [ "$mode" = "" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
	! command -v google-chrome >/dev/null 2>&1; then
	browser=chromium
fi
missing_kubectl=
if [ "$mode" = --e2e ] && ! command -v kubectl >/dev/null 2>&1; then
	missing_kubectl=1
fi

# install installs need[@] from Debian's archive when this machine can.
install() {
	command -v apt-get >/dev/null 2>&1 || return 1
	local cmd=(apt-get install -y --no-install-recommends "${need[@]}")
	if [ "$(id -u)" = 0 ]; then
		echo "installing Debian packages: ${need[*]}" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${cmd[@]}" >&2
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		echo "installing Debian packages with sudo: ${need[*]}" >&2
		sudo apt-get update -qq && sudo "${cmd[@]}" >&2
	else
		return 1
	fi
}

failed=0
if [ ${#need[@]} -gt 0 ] && ! install; then
	failed=1
	{
		echo "missing: ${need[*]}, and this script cannot install them here."
		echo "Install them, then run make again:"
		echo "  Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends ${need[*]}"
		echo "  elsewhere:      prometheus and promtool from https://prometheus.io/download/"
		case "$mode" in
		"") echo "                  docker-registry (Distribution 2.x) from https://github.com/distribution/distribution/releases" ;;
		--e2e) echo "                  redis-server from https://redis.io/downloads/" ;;
		esac
	} >&2
fi

# chromium drives the status page's browser test (pkg/statuspage). Without
# it that test skips, unless CANARYBOT_REQUIRE_BROWSER is set, as CI does.
if [ -n "$browser" ]; then
	need=(chromium)
	if ! install; then
		if [ -n "${CANARYBOT_REQUIRE_BROWSER:-}" ]; then
			failed=1
			echo "missing: chromium, which the status page's browser test needs (CANARYBOT_REQUIRE_BROWSER is set)." >&2
		else
			echo "note: no chromium, so the status page's browser test will skip." >&2
		fi
		echo "  Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends chromium" >&2
	fi
fi

if [ -n "$missing_kubectl" ]; then
	failed=1
	# The kube-apiserver version scripts/e2e-tools.sh builds.
	version=$(sed -n 's/^[[:space:]]*"kube-apiserver \(v[0-9][0-9.]*\) .*/\1/p' "$(dirname "$0")/e2e-tools.sh" 2>/dev/null || true)
	version=${version:-v1.35.4}
	case "$(uname -m)" in
	aarch64 | arm64) arch=arm64 ;;
	*) arch=amd64 ;;
	esac
	url="https://dl.k8s.io/release/$version/bin/linux/$arch/kubectl"
	cat >&2 <<MSG
missing: kubectl, which make e2e runs against kube-apiserver $version. Debian's
archive has no kubectl that recent (bookworm's kubernetes-client is 1.20), so
install Kubernetes' release binary, then run make again:
  curl -fsSLo kubectl $url
  echo "\$(curl -fsSL $url.sha256)  kubectl" | sha256sum --check
  sudo install -m 0755 kubectl /usr/local/bin/kubectl
(or Kubernetes' own apt repository, pkgs.k8s.io:
https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/#install-using-native-package-management)
MSG
fi
exit $failed
