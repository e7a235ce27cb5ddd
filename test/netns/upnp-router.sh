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

SCRIPT_NAME=upnp-router
# shellcheck source=router-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/router-lib.sh"

down() {
  stop_miniupnpd
  delete_namespaces "$LAN_NS" "$RTR_NS" "$WAN_NS"
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
  router_table "$WAN_IF" masquerade | ip netns exec "$RTR_NS" nft -f -
  trap - ERR
}

start() {
  start_miniupnpd "$RTR_NS" "${1:-v2}" "$LAN_IF" "$WAN_IF" 192.168.77.0/24 4d592869-4271-44fb-98e6-8ebc6892a6a6
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
  stop) need_root && stop_miniupnpd ;;
  down) need_root && down ;;
  env) print_env ;;
  *) die "usage: $0 up | start [v2|v1] | stop | down | env" ;;
esac
