#!/usr/bin/env bash
# viking-supervise.sh — keeps this server's `viking up` running where systemd
# does not run (containers, minimal VMs, the test lab's namespaces). Where
# systemd is PID 1, bootstrap.sh installs scripts/viking.service instead,
# which runs `viking-supervise.sh exec` under systemd's own restart policy.
#
#   viking-supervise.sh start    start the restart loop in the background (pidfile)
#   viking-supervise.sh stop     stop the loop and the server (SIGTERM, then wait)
#   viking-supervise.sh status   exit 0 while the loop runs
#   viking-supervise.sh exec     run `viking up` once in the foreground (systemd's ExecStart)
#
# What to run is in $VIKING_DATA/supervise.env (written by bootstrap.sh, mode
# 0600: it may hold the join token): VIKING_UP_ARGS=(...) and the environment
# (DOCKER_HOST, VIKING_TOKEN, HOME). The loop's pidfile and log are
# $VIKING_DATA/viking-supervise.pid and $VIKING_DATA/viking.log.
#
# Each `viking up` runs in a session of its own; when it dies, whatever it
# left (its etcd member, after a crash) is killed with its process group
# before the next start, so the new one finds its ports free.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${VIKING_DATA:-/var/lib/viking}
ENV_FILE=$DATA/supervise.env
PIDFILE=$DATA/viking-supervise.pid
CHILD_PIDFILE=$DATA/viking-up.pid
LOG=$DATA/viking.log

load() {
  [ -r "$ENV_FILE" ] || { echo "viking-supervise: no $ENV_FILE (run bootstrap.sh first)" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$ENV_FILE"
}

# The pidfile's pid is ours only while it runs this script's loop: after a
# reboot the number may belong to any other process.
alive() {
  [ -s "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'viking-supervise.sh loop'
}

loop() {
  load
  local child=0 stopping=0 delay=1 started
  trap 'stopping=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null || true' TERM INT
  while [ "$stopping" -eq 0 ]; do
    started=$(date +%s)
    setsid node "$ROOT/bin/viking.js" up "${VIKING_UP_ARGS[@]}" &
    child=$!
    echo "$child" >"$CHILD_PIDFILE"
    set +e
    wait "$child"; code=$?
    # `wait` returns early when a trapped signal arrives: wait for the server itself.
    while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
    set -e
    # Its process group: an etcd member left behind by a crash.
    kill -KILL -- "-$child" 2>/dev/null || true
    rm -f "$CHILD_PIDFILE"
    [ "$stopping" -eq 1 ] && break
    # Quick crashes back off up to 30 s; a run that lasted a minute starts again at 1 s.
    if [ $(( $(date +%s) - started )) -ge 60 ]; then delay=1; else delay=$(( delay * 2 > 30 ? 30 : delay * 2 )); fi
    echo "$(date -u +%FT%TZ) viking-supervise: viking up exited with $code; starting it again in ${delay}s"
    sleep "$delay" & wait $! || true
  done
  echo "$(date -u +%FT%TZ) viking-supervise: stopped"
}

case "${1:-}" in
  start)
    mkdir -p "$DATA"
    if alive; then echo "viking-supervise: already running (pid $(cat "$PIDFILE"))"; exit 0; fi
    load
    nohup "$0" loop >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    echo "viking-supervise: started (pid $!, log $LOG)"
    ;;
  loop) loop ;;
  stop)
    if ! alive; then echo "viking-supervise: not running"; rm -f "$PIDFILE"; exit 0; fi
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then echo "viking-supervise: still running after 60 s (pid $pid)" >&2; exit 1; fi
    rm -f "$PIDFILE"
    echo "viking-supervise: stopped"
    ;;
  status)
    if alive; then echo "viking-supervise: running (pid $(cat "$PIDFILE"))"; else echo "viking-supervise: not running"; exit 3; fi
    ;;
  exec)
    load
    exec node "$ROOT/bin/viking.js" up "${VIKING_UP_ARGS[@]}"
    ;;
  *) echo "usage: $0 start|stop|status|exec" >&2; exit 2 ;;
esac
