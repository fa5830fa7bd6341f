#!/usr/bin/env bash
# Builds the release binaries: static (CGO_ENABLED=0), reproducible
# (-trimpath, -buildvcs=false, version and commit stamped with -X, so the same
# source, version and Go toolchain give the same bytes on any machine, with or
# without a .git directory).
#
#   scripts/release.sh [--out DIR]        every binary for every target into DIR
#                                         (default dist/), with SHA256SUMS,
#                                         LICENSE, NOTICE, THIRD_PARTY_LICENSES.md
#   scripts/release.sh --one OS/ARCH CMD OUT
#                                         one binary (CMD: ivschatd or
#                                         ivschat-bench) to the path OUT; the
#                                         Dockerfile builds with this
#
# VERSION and COMMIT come from the environment when set (the Dockerfile passes
# them as build arguments: a build context has no .git), else from git:
# `git describe --tags --always --dirty` and `git rev-parse HEAD`.
# Nothing is published: uploading dist/ is a separate, manual step.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(linux/amd64 linux/arm64 darwin/arm64 windows/amd64)
commands=(ivschatd ivschat-bench)

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo "(devel)")}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}

# build OS/ARCH CMD OUT: the one build command, shared by both modes.
build() {
	local os=${1%/*} arch=${1#*/}
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOFLAGS=-mod=readonly \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit" \
		-o "$3" "./cmd/$2"
}

case "${1:-}" in
--one)
	[ $# -eq 4 ] || { echo "usage: $0 --one OS/ARCH CMD OUT" >&2; exit 2; }
	build "$2" "$3" "$4"
	exit 0
	;;
--out)
	[ $# -eq 2 ] || { echo "usage: $0 [--out DIR]" >&2; exit 2; }
	out=$2
	;;
"")
	out=dist
	;;
*)
	echo "usage: $0 [--out DIR] | --one OS/ARCH CMD OUT" >&2
	exit 2
	;;
esac

mkdir -p "$out"
for t in "${targets[@]}"; do
	for c in "${commands[@]}"; do
		name="$c-${t%/*}-${t#*/}"
		[ "${t%/*}" = windows ] && name+=.exe
		build "$t" "$c" "$out/$name"
		echo "built $out/$name"
	done
done
cp LICENSE NOTICE THIRD_PARTY_LICENSES.md "$out/"
(cd "$out" && sha256sum ivschatd-* ivschat-bench-* >SHA256SUMS)
echo "$version ($commit): $out/SHA256SUMS"
