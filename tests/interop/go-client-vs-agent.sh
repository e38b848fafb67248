#!/usr/bin/env bash
# The Go ttrpc client (containerd/ttrpc + code generated from proto/*.proto)
# against our agent: tests/interop/go-client-vs-agent.sh KATA_AGENT TTRPC_PEER
# shellcheck source=tests/interop/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -eq 2 ]] || fail "usage: $0 KATA_AGENT TTRPC_PEER"
AGENT=$1 PEER=$2
[[ -x $AGENT ]] || fail "no agent binary at $AGENT"
[[ -x $PEER ]] || fail "no ttrpc-peer at $PEER (run interop/build-peer)"

SOCK=$KA_TMP/agent.sock
start agent "$AGENT" --server-addr "unix://$SOCK" --cmdline-file /dev/null
AGENT_PID=$STARTED_PID
wait_for_socket "$SOCK" "$AGENT_PID"

rc=0
timeout 60 "$PEER" client "unix://$SOCK" || rc=$?
[[ $rc -eq 124 ]] && fail "ttrpc-peer client timed out"
[[ $rc -eq 0 ]] || fail "ttrpc-peer client: status $rc"
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died during the checks"

stop "$AGENT_PID"
[[ $STOP_RC -eq 0 ]] || fail "agent exit status $STOP_RC after SIGTERM, want 0"
[[ ! -e $SOCK ]] || log "note: the agent left $SOCK behind"
log "PASS"
