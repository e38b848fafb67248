#!/usr/bin/env bash
# Build the Go ttrpc interop peer: tests/interop/build.sh OUTDIR
#
# From Debian packages only, offline, GOPATH mode (see TOOLCHAIN.md, "An
# independent ttrpc peer from Debian packages"):
#   1. protoc-gen-gogottrpc from /usr/share/gocode (containerd/ttrpc 1.1)
#   2. Go code from the project's proto/*.proto into OUTDIR/gopath/src/kaproto/
#      (package grpc: agent, oci, csi, health; package types: types.proto)
#   3. OUTDIR/ttrpc-peer from tests/interop/peer/*.go
# Nothing is written outside OUTDIR (the Go build cache is OUTDIR/gocache).
# A no-op when a hash of every input matches the last successful build.
set -euo pipefail

die() { echo "build.sh: error: $*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ROOT=$(cd "$HERE/../.." && pwd)
PROTO_DIR=$SRC_ROOT/proto
PEER_DIR=$HERE/peer
GOCODE=${KA_GOCODE:-/usr/share/gocode}
PROTO_INCLUDE=${KA_PROTO_INCLUDE:-/usr/include}

mkdir -p "$1"
OUT=$(cd "$1" && pwd)
case "$OUT/" in
  "$HERE"/*|"$PROTO_DIR"/*) die "OUTDIR must not be inside the source tree ($OUT)";;
esac

command -v go >/dev/null || die "go not found (apt-get install golang-go)"
command -v protoc >/dev/null || die "protoc not found (apt-get install protobuf-compiler)"
[[ -d $GOCODE/src/github.com/containerd/ttrpc/cmd/protoc-gen-gogottrpc ]] ||
  die "$GOCODE has no containerd/ttrpc (apt-get install golang-github-containerd-ttrpc-dev)"
[[ -f $PROTO_INCLUDE/google/protobuf/empty.proto ]] ||
  die "$PROTO_INCLUDE/google/protobuf/empty.proto missing (apt-get install libprotobuf-dev)"

# One build at a time per OUTDIR (ctest -j, bench and tests sharing a dir).
exec 9>"$OUT/.build.lock"
flock 9

GRPC_PROTOS=(agent.proto oci.proto csi.proto health.proto)
TYPES_PROTOS=(types.proto)

inputs_hash() {
  {
    echo "build.sh"; cat "${BASH_SOURCE[0]}"
    for f in "${GRPC_PROTOS[@]}" "${TYPES_PROTOS[@]}"; do echo "$f"; cat "$PROTO_DIR/$f"; done
    for f in "$PEER_DIR"/*.go; do echo "${f##*/}"; cat "$f"; done
    go version; protoc --version; echo "$GOCODE $PROTO_INCLUDE"
    if command -v dpkg-query >/dev/null; then
      dpkg-query -W golang-go golang-github-containerd-ttrpc-dev golang-github-gogo-protobuf-dev \
        golang-google-grpc-dev golang-google-genproto-dev golang-golang-x-sys-dev 2>/dev/null || true
    fi
  } | sha256sum | cut -d' ' -f1
}

STAMP=$OUT/.inputs.sha256
HASH=$(inputs_hash)
if [[ -x $OUT/ttrpc-peer && -f $STAMP && $(cat "$STAMP") == "$HASH" ]]; then
  echo "build.sh: $OUT/ttrpc-peer is up to date"
  exit 0
fi
rm -f "$STAMP"

export GO111MODULE=off GOPROXY=off GOFLAGS='' GOENV=off CGO_ENABLED=0 GOTOOLCHAIN=local
export GOPATH=$OUT/gopath:$GOCODE GOCACHE=$OUT/gocache GOTMPDIR=''
export PATH=$OUT/bin:$PATH
mkdir -p "$OUT/bin" "$OUT/gocache"

start=$(date +%s)
echo "build.sh: protoc-gen-gogottrpc"
go build -o "$OUT/bin/protoc-gen-gogottrpc" github.com/containerd/ttrpc/cmd/protoc-gen-gogottrpc

echo "build.sh: generating Go code from $PROTO_DIR"
GEN=$OUT/gopath/src/kaproto
rm -rf "$GEN"
mkdir -p "$GEN/grpc" "$GEN/types"
MAP=Mtypes.proto=kaproto/types,Mgoogle/protobuf/empty.proto=github.com/gogo/protobuf/types
for f in "${GRPC_PROTOS[@]}"; do MAP+=",M$f=kaproto/grpc"; done
protoc -I "$PROTO_DIR" -I "$PROTO_INCLUDE" \
  --gogottrpc_out="plugins=ttrpc,paths=source_relative,$MAP:$GEN/types" "${TYPES_PROTOS[@]}"
protoc -I "$PROTO_DIR" -I "$PROTO_INCLUDE" \
  --gogottrpc_out="plugins=ttrpc,paths=source_relative,$MAP:$GEN/grpc" "${GRPC_PROTOS[@]}"

echo "build.sh: ttrpc-peer"
PEER_PKG=$OUT/gopath/src/ttrpc-peer
rm -rf "$PEER_PKG"
mkdir -p "$PEER_PKG"
cp "$PEER_DIR"/*.go "$PEER_PKG/"
(cd "$PEER_PKG" && go vet . && go build -o "$OUT/ttrpc-peer.tmp" .)
mv -f "$OUT/ttrpc-peer.tmp" "$OUT/ttrpc-peer"

echo "$HASH" >"$STAMP"
echo "build.sh: built $OUT/ttrpc-peer in $(( $(date +%s) - start )) s"
