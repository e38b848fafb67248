#!/usr/bin/env bash
# Our agent-ctl against the Go ttrpc server (containerd/ttrpc):
# tests/interop/agent-ctl-vs-go-server.sh AGENT_CTL TTRPC_PEER
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -eq 2 ]] || fail "usage: $0 AGENT_CTL TTRPC_PEER"
CTL=$1 PEER=$2
[[ -x $CTL ]] || fail "no agent-ctl binary at $CTL"
[[ -x $PEER ]] || fail "no ttrpc-peer at $PEER (run interop/build-peer)"

SOCK=$KA_TMP/go.sock
start go-server "$PEER" server "unix://$SOCK"
SERVER_PID=$STARTED_PID
wait_for_socket "$SOCK" "$SERVER_PID"
A=(--addr "unix://$SOCK" --timeout 30)

expect_rc 0 "$CTL" "${A[@]}" check
expect_match "$OUT" '"status": "SERVING"' "check"
log "ok check: SERVING"

expect_rc 0 "$CTL" "${A[@]}" --compact version
expect_match "$OUT" '"agent_version":"go-ttrpc-peer"' "version"
expect_match "$OUT" '"grpc_version":"0.0.1"' "version"
log "ok version: $OUT"

expect_rc 0 "$CTL" "${A[@]}" call grpc.Health/Check '{"service":"x"}'
expect_match "$OUT" '"status": "SERVING"' "call grpc.Health/Check"
log "ok call grpc.Health/Check"

# A reply with a nested message and repeated strings, printed as JSON.
expect_rc 0 "$CTL" "${A[@]}" call GetGuestDetails '{"mem_block_size":true}'
echo "$OUT"
compact=$(tr -d ' \n' <<<"$OUT")
expect_match "$compact" '"mem_block_size_bytes":"?134217728"?' "GetGuestDetails"
expect_match "$compact" '"agent_details":\{[^}]*"version":"go-ttrpc-peer"' "GetGuestDetails"
expect_match "$compact" '"device_handlers":\["blk","scsi"\]' "GetGuestDetails"
expect_match "$compact" '"storage_handlers":\["9p","virtio-fs","ephemeral"\]' "GetGuestDetails"
expect_match "$compact" '"extra_features":\["interop"\]' "GetGuestDetails"
if grep -q support_mem_hotplug_probe <<<"$compact"; then
  fail "GetGuestDetails: false bool printed without --defaults"
fi
log "ok GetGuestDetails (nested reply)"

expect_rc 0 "$CTL" "${A[@]}" --defaults --compact call GetGuestDetails '{"mem_hotplug_probe":true}'
expect_match "$OUT" '"mem_block_size_bytes":"?0"?' "GetGuestDetails --defaults"
expect_match "$OUT" '"support_mem_hotplug_probe":true' "GetGuestDetails --defaults"
expect_match "$OUT" '"init_daemon":false' "GetGuestDetails --defaults"
log "ok GetGuestDetails --defaults"

# Methods the Go server does not register: ttrpc's own UNIMPLEMENTED.
expect_rc 1 "$CTL" "${A[@]}" call ResizeVolume '{"volume_guest_path":"/x","size":1}'
expect_match "$ERR" 'UNIMPLEMENTED \(12\)' "ResizeVolume"
log "ok ResizeVolume: $ERR"
expect_rc 1 "$CTL" "${A[@]}" call CreateContainer '{"container_id":"c1","OCI":{"Version":"1.0.2","Linux":{"CgroupsPath":"/x"}}}'
expect_match "$ERR" 'UNIMPLEMENTED \(12\)' "CreateContainer"
log "ok CreateContainer: $ERR"

# Pipelined calls on one connection; the Go server answers them in any order.
# (Kept small: agent-ctl sends every request before reading any reply.)
expect_rc 0 "$CTL" "${A[@]}" --repeat 64 check
expect_match "$OUT" '^\{"sent":64,"ok":64,"failed":0\}$' "--repeat 64"
log "ok --repeat 64: $OUT"

kill -0 "$SERVER_PID" 2>/dev/null || fail "the Go server died"
stop "$SERVER_PID"
[[ $STOP_RC -eq 0 ]] || fail "Go server exit status $STOP_RC after SIGTERM"
log "PASS"
