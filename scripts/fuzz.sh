#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 3s), one
# at a time: `make fuzz`, and the last step of `make test`. A target that
# fails leaves its input in the package's testdata/fuzz/<target>/; commit
# it with the fix, and plain `go test` replays it from then on.
#
# Targets are found by `go test -list '^Fuzz'` over the packages whose
# test files declare one, so a file excluded by build tags is left out.
# GOFLAGS must carry -tags=kustomize_disable_go_plugin_support (the
# Makefile exports it). FUZZMINIMIZETIME bounds the minimizing of each
# input that finds new coverage or fails (default 50x: 50 runs); Go's own
# default, 60s, would spend a short run minimizing instead of fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-50x}

mapfile -t dirs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	xargs -r -n1 dirname | sort -u)
if [ ${#dirs[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

# `go test -list` prints a package's test names, then "ok <package> <time>".
listing=$($GO test -list '^Fuzz' "${dirs[@]}")
targets=()
names=()
while read -r first second _; do
	case "$first" in
	Fuzz*) names+=("$first") ;;
	ok)
		for n in "${names[@]}"; do targets+=("$second $n"); done
		names=()
		;;
	esac
done <<<"$listing"

start=$(date +%s)
failed=()
out=$(mktemp)
marker=$(mktemp)
trap 'rm -f "$out" "$marker"' EXIT
# fuzz_once runs one target; it fails only on a real failure. Go's fuzzing
# engine can report "context deadline exceeded" when -fuzztime ends while
# a worker is busy on a slow, loaded machine: no input failed and none is
# written to testdata/fuzz/. That is retried once rather than reported.
fuzz_once() {
	local pkg=$1 name=$2 attempt
	for attempt in 1 2; do
		touch "$marker"
		if $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" >"$out" 2>&1; then
			cat "$out"
			return 0
		fi
		cat "$out"
		local dir
		dir="$($GO list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name"
		if [ "$attempt" = 2 ] || ! grep -q 'context deadline exceeded' "$out" ||
			[ -n "$(find "$dir" -newer "$marker" -type f 2>/dev/null)" ] || grep -q 'Failing input written' "$out"; then
			return 1
		fi
		echo "fuzz: $name stopped at its deadline with no failing input; once more"
	done
}
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "==> fuzz $name ($pkg) for $FUZZTIME"
	fuzz_once "$pkg" "$name" || failed+=("$name ($pkg)")
done
echo "fuzz: ${#targets[@]} targets in $(($(date +%s) - start))s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
