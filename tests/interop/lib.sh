# Helpers for the interop test scripts (sourced, bash). Every script gets a
# private temp dir and a trap that stops whatever it started, even on failure.
# STARTED_PID, STOP_RC, OUT and ERR are set here and read by the scripts:
# shellcheck disable=SC2034
set -euo pipefail

# Unix socket paths must fit in sun_path (108 bytes): keep the dir short.
_base=${TMPDIR:-/tmp}
((${#_base} <= 60)) || _base=/tmp
KA_TMP=$(mktemp -d "$_base/ka-interop.XXXXXX")
KA_PIDS=()
KA_LOGS=()
KA_NAME=${0##*/}
# Set by the helpers below, read by the scripts.
STARTED_PID='' STOP_RC='' OUT='' ERR=''

log() { echo "[$KA_NAME] $*" >&2; }

dump_logs() {
  local f
  for f in "${KA_LOGS[@]}"; do
    [[ -s $f ]] || continue
    echo "----- ${f##*/} (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2
  done
}

fail() {
  echo "[$KA_NAME] FAIL: $*" >&2
  dump_logs
  exit 1
}

_cleanup() {
  local rc=$? pid i
  trap - EXIT
  for pid in "${KA_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ -n ${KA_KEEP_TMP:-} ]]; then
    log "kept $KA_TMP"
  else
    rm -rf "$KA_TMP"
  fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# start NAME CMD... : run CMD in the background, output to $KA_TMP/NAME.log.
# Sets STARTED_PID.
start() {
  local name=$1
  shift
  "$@" >"$KA_TMP/$name.log" 2>&1 &
  STARTED_PID=$!
  KA_PIDS+=("$STARTED_PID")
  KA_LOGS+=("$KA_TMP/$name.log")
  log "started $name (pid $STARTED_PID): $*"
}

# wait_for_socket PATH PID [SECONDS]: until PATH is a socket; fail if PID dies.
wait_for_socket() {
  local path=$1 pid=$2 secs=${3:-10} i
  for ((i = 0; i < secs * 20; i++)); do
    [[ -S $path ]] && return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" && rc=0 || rc=$?; fail "pid $pid exited (status $rc) before $path appeared"; }
    sleep 0.05
  done
  fail "$path did not appear within ${secs}s"
}

# stop PID [SECONDS]: SIGTERM, wait; sets STOP_RC to its exit status (KILL after the timeout).
stop() {
  local pid=$1 secs=${2:-10} i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    fail "pid $pid did not exit within ${secs}s of SIGTERM"
  fi
  STOP_RC=0
  wait "$pid" || STOP_RC=$?
}

# expect_rc WANT CMD... : run CMD (with a timeout), capture stdout/stderr in OUT/ERR.
expect_rc() {
  local want=$1 rc=0
  shift
  OUT=$(timeout 60 "$@" 2>"$KA_TMP/stderr") || rc=$?
  ERR=$(cat "$KA_TMP/stderr")
  if [[ $rc -ne $want ]]; then
    echo "stdout: $OUT" >&2
    echo "stderr: $ERR" >&2
    [[ $rc -eq 124 ]] && fail "timed out: $*"
    fail "exit status $rc, want $want: $*"
  fi
}

# expect_match TEXT REGEX WHAT
expect_match() {
  if ! grep -Eq -- "$2" <<<"$1"; then
    echo "got: $1" >&2
    fail "$3: no match for /$2/"
  fi
}
