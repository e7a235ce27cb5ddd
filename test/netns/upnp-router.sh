#!/usr/bin/env bash
# A home router with UPnP IGD inside network namespaces, for tests and by hand (as root):
#
#   bash test/netns/upnp-router.sh up          # namespaces, links, nftables
#   bash test/netns/upnp-router.sh start [v2|v1]  # miniupnpd as an IGD:2 (default) or IGD:1 device
#   ip netns exec avc-lan upnpc -l             # talk to it from the LAN side
#   bash test/netns/upnp-router.sh stop        # stop miniupnpd
#   bash test/netns/upnp-router.sh down        # stop it and delete the namespaces (always safe to run)
#   bash test/netns/upnp-router.sh env         # the names and addresses below, as KEY=VALUE lines
#
#   [avc-lan] eth0 192.168.77.2 ── lan0 192.168.77.1 [avc-rtr] wan0 11.0.0.1 ── eth0 11.0.0.2 [avc-wan]
#
# miniupnpd refuses to forward when its WAN address is private or reserved, so the router's WAN
# side gets 11.0.0.1, a public-looking address. It only ever exists inside these namespaces: the
# WAN namespace has no other link, so nothing sent here can reach the host's network.
# AVC_NETNS_PREFIX (default avc) renames the namespaces, AVC_NETNS_STATE moves the state folder.
# AVC_NATPMP=yes makes `start` enable NAT-PMP (RFC 6886, UDP 5351 on the LAN side) as well; the
# default is no, so a plain router speaks UPnP only. AVC_UPNP=no turns UPnP off (no SSDP, no HTTP):
# with AVC_NATPMP=yes, a router that speaks NAT-PMP only.
set -euo pipefail

PREFIX=${AVC_NETNS_PREFIX:-avc}
LAN_NS=$PREFIX-lan
RTR_NS=$PREFIX-rtr
WAN_NS=$PREFIX-wan
STATE=${AVC_NETNS_STATE:-/run/$PREFIX-upnp-router}
NATPMP=${AVC_NATPMP:-no}
UPNP=${AVC_UPNP:-yes}
LAN_IP=192.168.77.2
RTR_LAN_IP=192.168.77.1
RTR_WAN_IP=11.0.0.1
WAN_PEER_IP=11.0.0.2
LAN_IF=lan0
WAN_IF=wan0

die() {
  echo "upnp-router: $*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); run it with sudo"
  command -v ip >/dev/null || die "ip not found; apt-get install iproute2"
}

ns_exists() {
  ip netns list | awk '{print $1}' | grep -qx "$1"
}

# Stops the miniupnpd this script started: by the PID it recorded, TERM first (so it removes its
# rules), KILL after 3 s.
stop_router() {
  local pid
  [ -f "$STATE/miniupnpd.pid" ] || return 0
  pid=$(cat "$STATE/miniupnpd.pid")
  rm -f "$STATE/miniupnpd.pid"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  stop_router
  for ns in "$LAN_NS" "$RTR_NS" "$WAN_NS"; do
    if ns_exists "$ns"; then
      # A namespace outlives its name while a process is in it; anything left there is ours.
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns delete "$ns"
    fi
  done
  rm -rf "$STATE"
}

up() {
  command -v nft >/dev/null || die "nft not found; apt-get install nftables"
  down
  trap 'echo "upnp-router: setup failed, cleaning up" >&2; down' ERR
  mkdir -p "$STATE"
  for ns in "$LAN_NS" "$RTR_NS" "$WAN_NS"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # Both veth pairs are made inside the router namespace, so no link ever appears on the host.
  ip -n "$RTR_NS" link add "$LAN_IF" type veth peer name eth0 netns "$LAN_NS"
  ip -n "$RTR_NS" link add "$WAN_IF" type veth peer name eth0 netns "$WAN_NS"
  ip -n "$RTR_NS" addr add "$RTR_LAN_IP/24" dev "$LAN_IF"
  ip -n "$RTR_NS" addr add "$RTR_WAN_IP/24" dev "$WAN_IF"
  ip -n "$RTR_NS" link set "$LAN_IF" up
  ip -n "$RTR_NS" link set "$WAN_IF" up
  ip -n "$RTR_NS" route add default via "$WAN_PEER_IP"
  ip netns exec "$RTR_NS" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$LAN_NS" addr add "$LAN_IP/24" dev eth0
  ip -n "$LAN_NS" link set eth0 up
  ip -n "$LAN_NS" route add default via "$RTR_LAN_IP"
  ip -n "$WAN_NS" addr add "$WAN_PEER_IP/24" dev eth0
  ip -n "$WAN_NS" link set eth0 up
  # Debian's /etc/miniupnpd/nft_init.sh is broken; these are the table and chains miniupnpd 2.3
  # writes its rules into by default (inet filter: miniupnpd, prerouting_miniupnpd, postrouting_miniupnpd).
  ip netns exec "$RTR_NS" nft -f - <<EOF
table inet filter {
  chain miniupnpd {}
  chain prerouting_miniupnpd {}
  chain postrouting_miniupnpd {}
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname "$WAN_IF" masquerade; }
}
EOF
  trap - ERR
}

start() {
  local version=${1:-v2} pid
  case "$NATPMP" in yes | no) ;; *) die "AVC_NATPMP must be yes or no, got '$NATPMP'" ;; esac
  case "$UPNP" in yes | no) ;; *) die "AVC_UPNP must be yes or no, got '$UPNP'" ;; esac
  [ "$UPNP" = yes ] || [ "$NATPMP" = yes ] || die "AVC_UPNP=no and AVC_NATPMP=no leave the router nothing to speak; set one to yes"
  command -v miniupnpd >/dev/null || [ -x /usr/sbin/miniupnpd ] || die "miniupnpd not found; apt-get install miniupnpd"
  ns_exists "$RTR_NS" || die "no router namespace $RTR_NS; run '$0 up' first"
  stop_router
  mkdir -p "$STATE"
  {
    echo "ext_ifname=$WAN_IF"
    echo "listening_ip=$LAN_IF"
    echo "enable_upnp=$UPNP"
    echo "enable_natpmp=$NATPMP"
    # Like a real router: a LAN host may only map ports to itself.
    echo "secure_mode=yes"
    echo "system_uptime=yes"
    echo "uuid=4d592869-4271-44fb-98e6-8ebc6892a6a6"
    [ "$version" = v1 ] && echo "force_igd_desc_v1=yes"
    echo "allow 1024-65535 192.168.77.0/24 1024-65535"
    echo "deny 0-65535 0.0.0.0/0 0-65535"
  } >"$STATE/miniupnpd.conf"
  case "$version" in v1 | v2) ;; *) die "unknown IGD version '$version'; use v2 or v1" ;; esac
  # Foreground (-d) so the PID is the daemon's own; `ip netns exec` execs it, so $! is miniupnpd.
  PATH=/usr/sbin:/sbin:$PATH ip netns exec "$RTR_NS" miniupnpd -f "$STATE/miniupnpd.conf" -d -P "$STATE/miniupnpd.own.pid" \
    >"$STATE/miniupnpd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$STATE/miniupnpd.pid"
  # Ready once it listens for SSDP and HTTP (when UPnP is on) and NAT-PMP (when enabled); give up after 5 s.
  for _ in $(seq 50); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$STATE/miniupnpd.pid"
      die "miniupnpd exited at start: $(tail -n 5 "$STATE/miniupnpd.log" | tr '\n' ' ')"
    fi
    if { [ "$UPNP" = no ] || { ip netns exec "$RTR_NS" ss -Hlun 'sport = :1900' | grep -q . && ip netns exec "$RTR_NS" ss -Hltn | grep -q .; }; } &&
      { [ "$NATPMP" = no ] || ip netns exec "$RTR_NS" ss -Hlun 'sport = :5351' | grep -q .; }; then
      return 0
    fi
    sleep 0.1
  done
  stop_router
  die "miniupnpd did not start listening within 5 s: $(tail -n 5 "$STATE/miniupnpd.log" | tr '\n' ' ')"
}

print_env() {
  cat <<EOF
LAN_NS=$LAN_NS
RTR_NS=$RTR_NS
WAN_NS=$WAN_NS
STATE=$STATE
LAN_IP=$LAN_IP
RTR_LAN_IP=$RTR_LAN_IP
RTR_WAN_IP=$RTR_WAN_IP
WAN_PEER_IP=$WAN_PEER_IP
LAN_IF=$LAN_IF
WAN_IF=$WAN_IF
EOF
}

case "${1:-}" in
  up) need_root && up ;;
  start) need_root && start "${2:-v2}" ;;
  stop) need_root && stop_router ;;
  down) need_root && down ;;
  env) print_env ;;
  *) die "usage: $0 up | start [v2|v1] | stop | down | env" ;;
esac
