#!/usr/bin/env bash
# bootstrap.sh — install viking on this Debian/Ubuntu server (as root) and run it.
#
#   ./bootstrap.sh [--ip ADDR] [--name N] [--tags a,b] [--no-example]
#       the first server (the seed): etcd, the cluster registry and a master host,
#       serving vikingfiles/hello (unless --no-example). With a non-loopback --ip
#       the cluster is joinable: etcd, the API, the router and the registry listen
#       on ADDR. Its first API token is saved with the API URL in
#       ~/.config/viking/config.json (mode 0600).
#   ./bootstrap.sh --join http://FIRST:2379 [--ip ADDR] [--name N] [--tags a,b] [--token T] [--no-router]
#       another server: trusts the cluster registry in Docker, then joins (an etcd
#       member while the cluster has fewer than 3, a client after). The token
#       (--token or VIKING_TOKEN) is one of the cluster's: `viking token create NAME`
#       on the first server makes one. --no-router: this server runs containers and
#       the API but no HTTP router (point DNS and load balancers at the others).
#
# Either way the server runs under a supervisor that restarts it: the systemd
# unit viking.service where systemd is PID 1, scripts/viking-supervise.sh
# (a background restart loop, pidfile and log in the data dir) elsewhere.
# Safe to run twice: what is installed is kept, a running server is reused.
#
#   VIKING_DATA=/var/lib/viking        data dir (etcd, join state, pushed sources, logs)
#   VIKING_ROUTER_PORT=80  VIKING_API_PORT=8791  VIKING_ETCD_PORT=2379  VIKING_REGISTRY_PORT=5000
#   VIKING_DOCKER_CONFIG=/etc/docker/daemon.json   where Docker's config is
#   VIKING_DOCKER_RESTART="cmd"        how to restart dockerd when that file changed
#   VIKING_SUPERVISOR=script           viking-supervise.sh even where systemd runs (no viking.service)
#   VIKING_SKIP_INSTALL=1              no apt, no npm ci/build, no /usr/local/bin link (a built checkout)
#   VIKING_ROUTER_ENGINE=nginx         the router's data path in nginx (installs Debian's nginx; see README)
#   DOCKER_HOST=unix:///path           another Docker Engine socket
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VIKING=("node" "$ROOT/bin/viking.js")
DATA=${VIKING_DATA:-/var/lib/viking}
ROUTER_PORT=${VIKING_ROUTER_PORT:-80}
ROUTER_ENGINE=${VIKING_ROUTER_ENGINE:-node}
case "$ROUTER_ENGINE" in node|nginx) ;; *) echo "bootstrap: VIKING_ROUTER_ENGINE must be node or nginx, not $ROUTER_ENGINE" >&2; exit 2 ;; esac
API_PORT=${VIKING_API_PORT:-8791}
ETCD_PORT=${VIKING_ETCD_PORT:-2379}
REGISTRY_PORT=${VIKING_REGISTRY_PORT:-5000}
DOCKER_CONFIG_FILE=${VIKING_DOCKER_CONFIG:-/etc/docker/daemon.json}
LOG=$DATA/viking.log
IP=127.0.0.1 NAME="" TAGS="" JOIN="" TOKEN=${VIKING_TOKEN:-} EXAMPLE=1 ROUTER=1

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --ip) IP=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --tags) TAGS=$2; shift 2 ;;
    --join) JOIN=$2; shift 2 ;;
    --token) TOKEN=$2; shift 2 ;;
    --no-example) EXAMPLE=0; shift ;;
    --no-router) ROUTER=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "bootstrap.sh: unknown option $1" >&2; usage 2 ;;
  esac
done
[ -n "$NAME" ] || NAME=$(hostname | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9-]\{1,\}/-/g; s/^-*//; s/-*$//' | cut -c1-63)
[ -n "$NAME" ] || NAME=viking
case "$IP" in 127.*) LOOPBACK=1 ;; *) LOOPBACK=0 ;; esac
if [ "$LOOPBACK" = 1 ]; then API_HOST=127.0.0.1; [ "$IP" = 127.0.0.1 ] || API_HOST=$IP; else API_HOST=$IP; fi
API=http://$API_HOST:$API_PORT

step() { printf '\n-----> %s\n' "$*"; }
viking() { "${VIKING[@]}" "$@"; }
# VIKING_SUPERVISOR=script: use scripts/viking-supervise.sh even where systemd
# runs (the test harness must never install a viking.service on its machine).
pid1_systemd() { [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }
systemd_runs() { [ "${VIKING_SUPERVISOR:-}" != script ] && pid1_systemd; }

if [ "$(id -u)" -ne 0 ]; then echo "bootstrap.sh: run as root (sudo ./bootstrap.sh)" >&2; exit 1; fi
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "bootstrap.sh: viking needs Node.js 20 or newer on the PATH" >&2; exit 1
fi
if [ -n "$JOIN" ] && [ -z "$TOKEN" ]; then
  echo "bootstrap.sh: --join needs a token of the cluster: --token T or VIKING_TOKEN (on the first server: viking token create $NAME)" >&2; exit 1
fi
if [ -n "$JOIN" ] && [ "$LOOPBACK" = 1 ] && [ "$IP" = 127.0.0.1 ]; then
  echo "bootstrap.sh: --join needs --ip ADDR, this server's address the others reach it on" >&2; exit 1
fi

if [ "${VIKING_SKIP_INSTALL:-0}" != 1 ]; then
  step "Installing Docker, etcd, the registry and busybox from Debian"
  if [ "$ROUTER_ENGINE" = nginx ]; then bash scripts/install-deps.sh nginx; else bash scripts/install-deps.sh; fi
  step "Installing viking's npm dependencies and building"
  npm ci --no-audit --no-fund --loglevel=error
  npm run build --silent
  ln -sf "$ROOT/bin/viking.js" /usr/local/bin/viking
  echo "viking is on the PATH: $(command -v viking)"
fi

restart_dockerd() {
  if [ -n "${VIKING_DOCKER_RESTART:-}" ]; then
    echo "restarting dockerd: $VIKING_DOCKER_RESTART"; bash -c "$VIKING_DOCKER_RESTART"
  elif pid1_systemd; then
    echo "restarting dockerd: systemctl restart docker"; systemctl restart docker
  else
    # The dockerd scripts/install-deps.sh started (pidfile /var/run/docker.pid).
    local pid; pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    echo "restarting dockerd (pid ${pid:-none})"
    if [ -n "$pid" ]; then kill -TERM "$pid"; for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done; fi
    nohup dockerd >>/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker_ok && return 0; sleep 0.5; done
  echo "bootstrap.sh: dockerd did not come back after its restart" >&2; exit 1
}
docker_ok() {
  local sock=/var/run/docker.sock
  case "${DOCKER_HOST:-}" in unix://*) sock=${DOCKER_HOST#unix://} ;; esac
  curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}

# Docker must trust the cluster registry (plain HTTP) before this server pulls from it.
trust() {
  local out
  out=$(viking trust-registry "$@" --docker-config "$DOCKER_CONFIG_FILE" --json)
  if [ "$(node -p "JSON.parse(process.argv[1]).changed" "$out")" = true ]; then
    echo "$DOCKER_CONFIG_FILE now trusts $(node -p "JSON.parse(process.argv[1]).registry" "$out"): Docker must restart to see it"
    restart_dockerd
  else
    echo "$DOCKER_CONFIG_FILE already trusts $(node -p "JSON.parse(process.argv[1]).registry" "$out"); dockerd left running"
  fi
}

step "Making the base images offline (docker import)"
viking base-images

mkdir -p "$DATA"
if [ -n "$JOIN" ]; then
  step "Trusting the cluster registry in Docker ($DOCKER_CONFIG_FILE)"
  trust --etcd "$JOIN"
elif [ "$LOOPBACK" = 0 ] && [ "$REGISTRY_PORT" != 0 ]; then
  step "Trusting this server's cluster registry $IP:$REGISTRY_PORT in Docker ($DOCKER_CONFIG_FILE)"
  trust --registry "$IP:$REGISTRY_PORT"
fi

# What the supervisor runs: one file, read by viking-supervise.sh (and so by viking.service).
UP_ARGS=(--data-dir "$DATA" --name "$NAME" --ip "$IP" --api-port "$API_PORT" --etcd-port "$ETCD_PORT" --registry-port "$REGISTRY_PORT")
# viking up refuses a router port with --no-router (VIKING_E_FLAG_CONFLICT).
if [ "$ROUTER" = 1 ]; then UP_ARGS+=(--router-port "$ROUTER_PORT" --router-engine "$ROUTER_ENGINE"); else UP_ARGS+=(--no-router); fi
[ -n "$TAGS" ] && UP_ARGS+=(--tags "$TAGS")
[ -n "$JOIN" ] && UP_ARGS+=(--join "$JOIN")
umask 077
{
  echo "# written by bootstrap.sh $(date -u +%FT%TZ); read by scripts/viking-supervise.sh"
  printf 'VIKING_UP_ARGS=('; printf '%q ' "${UP_ARGS[@]}"; echo ')'
  printf 'export HOME=%q\n' "$HOME"
  [ -n "${DOCKER_HOST:-}" ] && printf 'export DOCKER_HOST=%q\n' "$DOCKER_HOST"
  [ -n "${VIKING_CONFIG:-}" ] && printf 'export VIKING_CONFIG=%q\n' "$VIKING_CONFIG"
  [ -n "$TOKEN" ] && printf 'export VIKING_TOKEN=%q\n' "$TOKEN"
  printf 'export PATH=%q\n' "$PATH"
} >"$DATA/supervise.env"
umask 022

if curl -sf "$API/v1/ping" >/dev/null 2>&1; then
  step "viking is already running (API $API): reusing it"
elif systemd_runs; then
  step "Starting viking under systemd (viking.service; journalctl -u viking)"
  sed -e "s|@ROOT@|$ROOT|g" -e "s|@DATA@|$DATA|g" scripts/viking.service >/etc/systemd/system/viking.service
  systemctl daemon-reload
  systemctl enable --now viking.service
else
  step "Starting viking under scripts/viking-supervise.sh (log $LOG)"
  VIKING_DATA="$DATA" scripts/viking-supervise.sh start
fi
for _ in $(seq 1 240); do
  curl -sf "$API/v1/ping" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "$API/v1/ping" >/dev/null || { echo "viking did not answer on $API; the end of $LOG:" >&2; tail -30 "$LOG" >&2; exit 1; }

step "Checking the CLI's API token"
if [ -n "$TOKEN" ]; then
  viking configure --api "$API" --token "$TOKEN" >/dev/null
  echo "saved the token and $API in the CLI config"
elif viking info --api "$API" >/dev/null 2>&1; then
  echo "the CLI's token works (viking configure shows where it is kept)"
else
  # A cluster from an earlier run whose token this user does not have: make one through etcd.
  viking token create "bootstrap-$(date +%s)" --etcd "http://$API_HOST:$ETCD_PORT" --api "$API" --save >/dev/null
  viking info --api "$API" >/dev/null
  echo "made a new API token and saved it in the CLI config"
fi
viking configure --api "$API" >/dev/null

step "Waiting for $NAME in the cluster's hosts"
for _ in $(seq 1 120); do
  viking hosts --json --api "$API" 2>/dev/null | grep -Eq "\"name\": *\"$NAME\"" && break
  sleep 0.5
done

if [ -z "$JOIN" ] && [ "$EXAMPLE" = 1 ]; then
  step "Pushing vikingfiles/hello"
  viking push vikingfiles/hello --api "$API"
  if [ "$ROUTER" = 0 ]; then
    echo "this server runs no router (--no-router): the app is served by the cluster's router hosts"
  else
    step "Checking it answers through the router"
    for _ in $(seq 1 20); do
      if body=$(curl -sf -H 'Host: hello.local' "http://$API_HOST:$ROUTER_PORT/"); then break; fi
      sleep 0.5
    done
    echo "${body:-}"
  fi
fi

step "The cluster's servers"
viking hosts --api "$API"
viking info --api "$API" >/dev/null || true
echo
if [ -z "$JOIN" ]; then
  echo "viking is up. Try it:"
  echo "  curl -H 'Host: hello.local' http://$API_HOST:$ROUTER_PORT/"
  echo "  viking ps                          # the CLI reads the API and token from ~/.config/viking/config.json"
  echo "  viking logs hello web -f           # both replicas' logs as they are written"
  [ "$LOOPBACK" = 0 ] && echo "  Join another server: viking token create NAME, then on it: ./bootstrap.sh --join http://$IP:$ETCD_PORT --ip ITS_ADDR --token T"
else
  echo "$NAME joined the cluster at $JOIN."
fi
if systemd_runs; then echo "Stop it with: systemctl stop viking"; else echo "Stop it with: VIKING_DATA=$DATA $ROOT/scripts/viking-supervise.sh stop"; fi
