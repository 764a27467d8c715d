#!/usr/bin/env bash
# Builds the binaries `make e2e` runs — etcd, kube-apiserver, Argo CD and
# the kustomize CLI — from the Go module proxy, through the wrapper modules
# in e2e/tools/, one at a time (two 2 GB links at once thrash two cores).
# Each lands in $CANARYBOT_TOOLS/<name>-<version>-<hash>/bin/<name>, keyed
# by the wrapper's go.mod and go.sum, outside the clone; what is there is
# reused. Prints the directory of each binary, one per line, on stdout
# (progress goes to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${CANARYBOT_TOOLS:-$HOME/.cache/canarybot/tools}
mkdir -p "$cache"
start=$(date +%s)
say() { echo "e2e-tools [$(( $(date +%s) - start ))s] $*" >&2; }

# name version package ldflags
tools=(
	"etcd v3.6.16 . "
	"kustomize v5.8.2 sigs.k8s.io/kustomize/kustomize/v5 "
	"kube-apiserver v1.35.4 k8s.io/kubernetes/cmd/kube-apiserver -X k8s.io/component-base/version.gitVersion=v1.35.4 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=v1.35.4 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=35 -X k8s.io/client-go/pkg/version.gitTreeState=clean"
	"argocd v2.14.21 github.com/argoproj/argo-cd/v2/cmd "
)

build() {
	local name=$1 version=$2 pkg=$3 ldflags=$4
	local dir="$root/e2e/tools/$name"
	local key
	key=$(cat "$dir/go.mod" "$dir/go.sum" 2>/dev/null | sha256sum | cut -c1-12)
	local out="$cache/$name-$version-$key/bin"
	if [ -x "$out/$name" ]; then
		say "$name $version: cached in $out"
		echo "$out"
		return
	fi
	say "$name $version: building (cold: etcd ~2 min, kustomize ~1 min, kube-apiserver ~9 min, argocd ~8 min on 2 cores)…"
	mkdir -p "$out"
	local tmp="$out/.$name.tmp.$$"
	( cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg" )
	mv "$tmp" "$out/$name"
	say "$name $version: built"
	echo "$out"
}

for t in "${tools[@]}"; do
	read -r name version pkg ldflags <<<"$t"
	build "$name" "$version" "$pkg" "${ldflags:-}"
done
