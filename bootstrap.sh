#!/usr/bin/env bash
# bootstrap.sh — install viking on this Debian/Ubuntu machine (as root) and
# run a one-host cluster serving vikingfiles/hello. Safe to run twice: what
# is installed is kept, a running cluster is reused, hello is pushed again.
# The first run makes the cluster's first API token and saves it with the
# API URL in ~/.config/viking/config.json (mode 0600), where the CLI finds it.
#
#   VIKING_DATA=/var/lib/viking      data dir (etcd, pushed sources, logs)
#   VIKING_ROUTER_PORT=80            front router port
#   VIKING_API_PORT=8791             /v1 API port
#   VIKING_ETCD_PORT=2379            etcd client port of viking up
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
DATA=${VIKING_DATA:-/var/lib/viking}
ROUTER_PORT=${VIKING_ROUTER_PORT:-80}
API_PORT=${VIKING_API_PORT:-8791}
API=http://127.0.0.1:$API_PORT
LOG=$DATA/viking.log

step() { printf '\n-----> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then echo "bootstrap.sh: run as root (sudo ./bootstrap.sh)" >&2; exit 1; fi
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "bootstrap.sh: viking needs Node.js 20 or newer on the PATH" >&2; exit 1
fi

step "Installing Docker, etcd, the registry and busybox from Debian"
bash scripts/install-deps.sh

step "Installing viking's npm dependencies and building"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
ln -sf "$ROOT/bin/viking.js" /usr/local/bin/viking
echo "viking is on the PATH: $(command -v viking)"

step "Making the base images offline (docker import)"
viking base-images

mkdir -p "$DATA"
if curl -sf "$API/v1/ping" >/dev/null 2>&1; then
  step "viking is already running (API $API): reusing it"
else
  step "Starting viking up in the background (log $LOG)"
  nohup viking up --data-dir "$DATA" --router-port "$ROUTER_PORT" --api-port "$API_PORT" --etcd-port "${VIKING_ETCD_PORT:-2379}" >>"$LOG" 2>&1 &
  echo $! >"$DATA/viking-up.pid"
  for _ in $(seq 1 60); do
    curl -sf "$API/v1/ping" >/dev/null 2>&1 && break
    if ! kill -0 "$(cat "$DATA/viking-up.pid")" 2>/dev/null; then
      echo "viking up exited; the end of $LOG:" >&2; tail -20 "$LOG" >&2; exit 1
    fi
    sleep 0.5
  done
  curl -sf "$API/v1/ping" >/dev/null || { echo "viking up did not answer on $API; see $LOG" >&2; exit 1; }
fi

step "Checking the CLI's API token"
if viking info --api "$API" >/dev/null 2>&1; then
  echo "the CLI's token works (viking configure shows where it is kept)"
else
  # A cluster from an earlier run whose token this user does not have: make one through etcd.
  viking token create "bootstrap-$(date +%s)" --etcd "http://127.0.0.1:${VIKING_ETCD_PORT:-2379}" --api "$API" --save >/dev/null
  viking info --api "$API" >/dev/null
  echo "made a new API token and saved it in the CLI config"
fi

step "Pushing vikingfiles/hello"
viking push vikingfiles/hello --api "$API"

step "Checking it answers through the router"
for _ in $(seq 1 20); do
  if body=$(curl -sf -H 'Host: hello.local' "http://127.0.0.1:$ROUTER_PORT/"); then break; fi
  sleep 0.5
done
echo "$body"
echo
echo "viking is up. Try it:"
echo "  curl -H 'Host: hello.local' http://127.0.0.1:$ROUTER_PORT/"
echo "  viking ps                          # the CLI reads the API and token from ~/.config/viking/config.json"
echo "  viking logs hello web -f           # both replicas' logs as they are written"
echo "  viking scale hello web=3"
echo "  viking env hello set GREETING=Howdy"
echo "  viking rollback hello"
echo "Stop it with: kill \$(cat $DATA/viking-up.pid)"
