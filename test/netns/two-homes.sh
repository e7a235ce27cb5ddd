#!/usr/bin/env bash
# Two homes behind NAT routers, joined by an "internet" with a server host, in network namespaces,
# for tests and by hand (as root):
#
#   bash test/netns/two-homes.sh up [natA] [natB]   # namespaces, links, NAT (default: restricted restricted)
#   bash test/netns/two-homes.sh start-upnp [v2|v1] # miniupnpd on router A (AVC_NATPMP=yes adds NAT-PMP)
#   ip netns exec avh-a upnpc -l                    # talk to it from home A
#   bash test/netns/two-homes.sh stop-upnp
#   bash test/netns/two-homes.sh down               # stop everything and delete the namespaces (always safe)
#   bash test/netns/two-homes.sh env                # names and addresses, as KEY=VALUE lines
#
#  [avh-a] 192.168.10.2 ─ 192.168.10.1 [avh-ra] 11.0.1.1 ─ 11.0.1.254 ┐
#                                                                       [avh-net] 11.0.0.10, 11.0.0.11 (servers)
#  [avh-b] 192.168.20.2 ─ 192.168.20.1 [avh-rb] 11.0.2.1 ─ 11.0.2.254 ┘
#
# NAT kinds (RFC 4787 terms), per router:
#   cone       endpoint-independent mapping and filtering ("full cone"): masquerade keeps the port, and a
#              dynamic set remembers each LAN source port for 120 s; anyone may send to it meanwhile.
#   restricted endpoint-independent mapping, address-and-port-dependent filtering (port-restricted cone):
#              Linux masquerade as it is; only the host and port a LAN port sent to may answer.
#   symmetric  address-and-port-dependent mapping with random ports (masquerade random) and
#              address-and-port-dependent filtering: each destination sees another public port.
# The routers' WAN addresses are public-looking (miniupnpd refuses to forward from a reserved one), but
# they exist only inside these namespaces: nothing here has a link to the host's network.
# AVC_TWOHOMES_PREFIX (default avh) renames the namespaces, AVC_TWOHOMES_STATE moves the state folder.
set -euo pipefail

PREFIX=${AVC_TWOHOMES_PREFIX:-avh}
STATE=${AVC_TWOHOMES_STATE:-/run/$PREFIX-two-homes}
NATPMP=${AVC_NATPMP:-no}
A_NS=$PREFIX-a
RA_NS=$PREFIX-ra
NET_NS=$PREFIX-net
RB_NS=$PREFIX-rb
B_NS=$PREFIX-b
A_IP=192.168.10.2
RA_LAN_IP=192.168.10.1
RA_WAN_IP=11.0.1.1
NET_A_IP=11.0.1.254
B_IP=192.168.20.2
RB_LAN_IP=192.168.20.1
RB_WAN_IP=11.0.2.1
NET_B_IP=11.0.2.254
SERVER_IP=11.0.0.10
SERVER_IP2=11.0.0.11

SCRIPT_NAME=two-homes
UPNP=yes
# shellcheck source=router-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/router-lib.sh"

down() {
  stop_miniupnpd
  delete_namespaces "$A_NS" "$RA_NS" "$NET_NS" "$RB_NS" "$B_NS"
  rm -rf "$STATE"
}

# The router's nftables (router_table) with the NAT kind. NAT chains see only a connection's first
# packet; later ones follow conntrack.
router_rules() {
  local kind=$1 lan_host=$2
  case "$kind" in
    restricted) router_table wan0 masquerade ;;
    symmetric) router_table wan0 "masquerade random" ;;
    cone)
      router_table wan0 masquerade "  set cone { type inet_service; flags dynamic,timeout; timeout 120s; }
  chain cone_learn { type filter hook forward priority 10; policy accept; iifname \"lan0\" oifname \"wan0\" meta l4proto udp update @cone { udp sport }; }
  chain cone_in { type nat hook prerouting priority -90; policy accept; iifname \"wan0\" meta l4proto udp udp dport @cone dnat ip to $lan_host; }
"
      ;;
    *) die "unknown NAT kind '$kind'; use cone, restricted or symmetric" ;;
  esac
}

# One home: the host's namespace, its router's, and the links to it and to the internet.
make_home() {
  local host_ns=$1 rtr_ns=$2 host_ip=$3 rtr_lan_ip=$4 rtr_wan_ip=$5 net_ip=$6 net_if=$7 kind=$8
  ip -n "$rtr_ns" link add lan0 type veth peer name eth0 netns "$host_ns"
  ip -n "$rtr_ns" link add wan0 type veth peer name "$net_if" netns "$NET_NS"
  ip -n "$rtr_ns" addr add "$rtr_lan_ip/24" dev lan0
  ip -n "$rtr_ns" addr add "$rtr_wan_ip/24" dev wan0
  ip -n "$rtr_ns" link set lan0 up
  ip -n "$rtr_ns" link set wan0 up
  ip -n "$rtr_ns" route add default via "$net_ip"
  ip netns exec "$rtr_ns" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$host_ns" addr add "$host_ip/24" dev eth0
  ip -n "$host_ns" link set eth0 up
  ip -n "$host_ns" route add default via "$rtr_lan_ip"
  ip -n "$NET_NS" addr add "$net_ip/24" dev "$net_if"
  ip -n "$NET_NS" link set "$net_if" up
  router_rules "$kind" "$host_ip" | ip netns exec "$rtr_ns" nft -f -
  echo "$kind" >"$STATE/nat-$rtr_ns"
}

up() {
  local nat_a=${1:-restricted} nat_b=${2:-restricted}
  command -v nft >/dev/null || die "nft not found; apt-get install nftables"
  router_rules "$nat_a" "$A_IP" >/dev/null
  router_rules "$nat_b" "$B_IP" >/dev/null
  down
  trap 'echo "two-homes: setup failed, cleaning up" >&2; down' ERR
  mkdir -p "$STATE"
  for ns in "$A_NS" "$RA_NS" "$NET_NS" "$RB_NS" "$B_NS"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # The internet forwards between the two routers and holds the server host's two addresses.
  ip netns exec "$NET_NS" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$NET_NS" addr add "$SERVER_IP/32" dev lo
  ip -n "$NET_NS" addr add "$SERVER_IP2/32" dev lo
  make_home "$A_NS" "$RA_NS" "$A_IP" "$RA_LAN_IP" "$RA_WAN_IP" "$NET_A_IP" eth-a "$nat_a"
  make_home "$B_NS" "$RB_NS" "$B_IP" "$RB_LAN_IP" "$RB_WAN_IP" "$NET_B_IP" eth-b "$nat_b"
  trap - ERR
}

start_upnp() {
  start_miniupnpd "$RA_NS" "${1:-v2}" lan0 wan0 192.168.10.0/24 4d592869-4271-44fb-98e6-8ebc6892a6a7
}

print_env() {
  cat <<EOF
A_NS=$A_NS
RA_NS=$RA_NS
NET_NS=$NET_NS
RB_NS=$RB_NS
B_NS=$B_NS
STATE=$STATE
A_IP=$A_IP
RA_LAN_IP=$RA_LAN_IP
RA_WAN_IP=$RA_WAN_IP
B_IP=$B_IP
RB_LAN_IP=$RB_LAN_IP
RB_WAN_IP=$RB_WAN_IP
SERVER_IP=$SERVER_IP
SERVER_IP2=$SERVER_IP2
EOF
}

case "${1:-}" in
  up) need_root && up "${2:-restricted}" "${3:-restricted}" ;;
  start-upnp) need_root && start_upnp "${2:-v2}" ;;
  stop-upnp) need_root && stop_miniupnpd ;;
  down) need_root && down ;;
  env) print_env ;;
  *) die "usage: $0 up [natA] [natB] | start-upnp [v2|v1] | stop-upnp | down | env   (nat: cone, restricted, symmetric)" ;;
esac
