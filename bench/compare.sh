#!/bin/sh
# compare.sh: the whole side-by-side allocator comparison, one command
# (make bench-compare). It installs the native allocators that are missing
# (Debian/Ubuntu packages, non-interactively), builds the C driver, this
# module's arenabench (with cgo when a C compiler is there) and its
# GOEXPERIMENT=arenas twin, runs every shape on every allocator, and prints
# one table. Anything it cannot get is skipped with a line saying why.
#
# Environment:
#   BENCH_QUICK=1    quick mode: 1 and 2 threads, 100 ms runs, small big
#                    live set (under 2 minutes)
#   BENCH_OUT=DIR    where binaries and results go (default bench/out):
#                    compare.txt (the table), compare.json, compare.png
#   BENCH_NO_APT=1   never run apt-get; use what is installed
#   GO, CC           the Go and C compilers (default go, gcc)
# Further arguments are passed to arenabench (e.g. -threads 1,2,4,8
# -workloads larson,xmalloc -duration 2s); see arenabench -h.
set -u

cd "$(dirname "$0")/.." || exit 1
GO=${GO:-go}
CC=${CC:-gcc}
OUT=${BENCH_OUT:-bench/out}
mkdir -p "$OUT" || exit 1

say() { echo "compare: $*" >&2; }

# Debian package and library name for each preloaded allocator.
pkg_of() {
	case $1 in
	tcmalloc) echo libtcmalloc-minimal4 ;;
	jemalloc) echo libjemalloc2 ;;
	mimalloc) echo libmimalloc2.0 ;;
	esac
}
lib_of() {
	case $1 in
	tcmalloc) echo libtcmalloc_minimal.so ;;
	jemalloc) echo libjemalloc.so ;;
	mimalloc) echo libmimalloc.so ;;
	esac
}

# find_lib prints the path of the installed shared library named $1*
# (the versioned file, as the package ships it), or nothing.
find_lib() {
	for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
		for f in "$d/$1".*; do
			[ -f "$f" ] && { echo "$f"; return; }
		done
	done
}

APT_UPDATED=
# apt_install installs packages $@, or says why it cannot and fails.
apt_install() {
	if [ -n "${BENCH_NO_APT:-}" ]; then
		say "not installing $*: BENCH_NO_APT is set"
		return 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		say "not installing $*: no apt-get"
		return 1
	fi
	if [ "$(id -u)" = 0 ]; then
		SUDO=
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO="sudo -n"
	else
		say "not installing $*: not root and no passwordless sudo"
		return 1
	fi
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >"$OUT/apt.log" 2>&1; then
		[ -n "$APT_UPDATED" ] && return 1
		APT_UPDATED=1
		say "apt-get update (for $*)"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -q >>"$OUT/apt.log" 2>&1 || return 1
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$OUT/apt.log" 2>&1 || return 1
	fi
}

# The C driver.
SHAPES=
CGO=1
if ! command -v "$CC" >/dev/null 2>&1; then
	say "no C compiler ($CC): installing gcc"
	apt_install gcc libc6-dev || say "cannot install gcc (apt-get output, if it ran: $OUT/apt.log)"
fi
if command -v "$CC" >/dev/null 2>&1; then
	if "$CC" -O2 -pthread -o "$OUT/shapes" bench/c/shapes.c; then
		SHAPES=$OUT/shapes
	else
		say "skipping native allocators: bench/c/shapes.c does not compile"
	fi
else
	say "skipping native allocators and cgo: no C compiler"
	CGO=0
fi

# The preloaded allocators.
PRELOAD=
for a in tcmalloc jemalloc mimalloc; do
	lib=$(find_lib "$(lib_of $a)")
	if [ -z "$lib" ]; then
		say "installing $(pkg_of $a) for $a"
		apt_install "$(pkg_of $a)" || say "cannot install $(pkg_of $a) (apt-get output, if it ran: $OUT/apt.log)"
		lib=$(find_lib "$(lib_of $a)")
	fi
	if [ -n "$lib" ]; then
		PRELOAD=$PRELOAD${PRELOAD:+,}$a=$lib
		say "$a: $lib ($(dpkg-query -W -f '${Package} ${Version}' "$(pkg_of $a)" 2>/dev/null || echo 'version unknown'))"
	else
		say "skipping $a: $(lib_of $a) not installed and apt-get could not install $(pkg_of $a)"
	fi
done

# arenabench, with cgo when there is a C compiler, and its arenas twin.
if ! CGO_ENABLED=$CGO "$GO" build -o "$OUT/arenabench" ./cmd/arenabench; then
	say "cannot build cmd/arenabench"
	exit 1
fi
ARENAS=
if CGO_ENABLED=$CGO GOEXPERIMENT=arenas "$GO" build -o "$OUT/arenabench-arenas" ./cmd/arenabench 2>"$OUT/arenas-build.log"; then
	ARENAS=$OUT/arenabench-arenas
else
	say "skipping go-arena: GOEXPERIMENT=arenas does not build with $($GO version) (see $OUT/arenas-build.log)"
fi

QUICK=
[ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && QUICK=-quick

set -- $QUICK -shapes "$SHAPES" -preload "$PRELOAD" -arenas "$ARENAS" \
	-json "$OUT/compare.json" -plot "$OUT/compare.png" "$@"
say "running: $OUT/arenabench $*"
"$OUT/arenabench" "$@" >"$OUT/compare.txt"
rc=$?
cat "$OUT/compare.txt"
say "results in $OUT/compare.txt, $OUT/compare.json and $OUT/compare.png"
exit $rc
