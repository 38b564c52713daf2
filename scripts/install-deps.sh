#!/usr/bin/env bash
# Installs what viking runs on, from Debian's packages, and starts dockerd if
# none answers. Used by bootstrap.sh and .ci/run; safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it installs Debian packages and starts dockerd)" >&2
  exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
# The base images need a *static* busybox: ldd fails on a static binary.
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The ACME tests: Let's Encrypt's test CA and its DNS server (pebble-challtestsrv comes in the same package).
command -v pebble >/dev/null 2>&1 || need+=(pebble)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The dashboard's browser test (test/e2e/dashboard.test.ts) drives Debian's chromium headless (npm downloads no browser).
# Only where tests run (CI=true, or VIKING_TEST_DEPS=1): a server needs no browser.
if [ -n "${CI:-}" ] || [ "${VIKING_TEST_DEPS:-0}" = 1 ]; then command -v chromium >/dev/null 2>&1 || need+=(chromium); fi
# The nginx router engine (--router-engine nginx) and bench/router's peer: its tests run where tests run;
# a server that wants the engine runs `scripts/install-deps.sh nginx`.
if [ -n "${CI:-}" ] || [ "${VIKING_TEST_DEPS:-0}" = 1 ]; then command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx); fi
for extra in "$@"; do command -v "$extra" >/dev/null 2>&1 || need+=("$extra"); done

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's nginx package starts its default site on port 80 where it can: the router needs that port,
  # and viking runs nginx itself (lib/router/nginx-plane.ts). While it installs, no package starts a service.
  made_policy=0
  if [[ " ${need[*]} " == *" nginx "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# Debian's package does not start dockerd where there is no systemd: do it here.
if ! docker info >/dev/null 2>&1 && ! curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; then
  echo "install-deps: starting dockerd (log /var/log/dockerd.log)"
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then :; else
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null || { echo "install-deps: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
echo "install-deps: docker, etcd, docker-registry, busybox-static and pebble are ready"
