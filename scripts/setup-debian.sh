#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for avchat: the Debian packages the tests use as real peers
# (ffprobe to check recordings, miniupnpd as a real UPnP router, SIPp and baresip as SIP peers, coturn and stund (stun-server) as RFC 5780 and RFC 3489 STUN
# servers, iproute2/nftables for the test network namespaces), then the npm dependencies. Needs Node.js 20 or later and root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "avchat needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none)); install it first, e.g. from nodejs.org" >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "${AVCHAT_SKIP_APT:-0}" != 1 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    ffmpeg iproute2 nftables miniupnpd miniupnpc sip-tester baresip coturn stun-server chromium >/dev/null
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
