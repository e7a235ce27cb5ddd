# Shared by test/netns/upnp-router.sh and test/netns/two-homes.sh (sourced, not run): namespaces and
# a miniupnpd router in one of them. The caller sets SCRIPT_NAME (for messages) and STATE (a folder
# of its own), and NATPMP / UPNP (yes or no) before start_miniupnpd.

die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); run it with sudo"
  command -v ip >/dev/null || die "ip not found; apt-get install iproute2"
}

ns_exists() {
  ip netns list | awk '{print $1}' | grep -qx "$1"
}

# Delete the namespaces given; a namespace outlives its name while a process is in it, and anything
# left there is ours, so those processes are killed first.
delete_namespaces() {
  local ns pid
  for ns in "$@"; do
    ns_exists "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns"
  done
}

# Stops the miniupnpd start_miniupnpd started: by the PID it recorded, TERM first (so it removes its
# rules), KILL after 3 s.
stop_miniupnpd() {
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

# The router's nftables: Debian's /etc/miniupnpd/nft_init.sh is broken, so this is the table and the
# chains miniupnpd 2.3 writes its rules into by default (inet filter: miniupnpd, prerouting_miniupnpd,
# postrouting_miniupnpd), with the NAT's own masquerade statement ($2) on the WAN interface ($1) and
# any further lines ($3) inside the table.
router_table() {
  local wan_if=$1 masquerade=$2 extra=${3:-}
  cat <<NFT
table inet filter {
  chain miniupnpd {}
  chain prerouting_miniupnpd {}
  chain postrouting_miniupnpd {}
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname "$wan_if" $masquerade; }
$extra}
NFT
}

# start_miniupnpd <router ns> <v2|v1> <LAN if> <WAN if> <LAN subnet> <uuid>: miniupnpd in the
# foreground as an IGD:2 (or IGD:1) device, NAT-PMP/PCP as $NATPMP says, UPnP as $UPNP says; ready
# once it listens (SSDP and HTTP, NAT-PMP), or an error after 5 s.
start_miniupnpd() {
  local rtr_ns=$1 version=$2 lan_if=$3 wan_if=$4 subnet=$5 uuid=$6 pid
  case "$NATPMP" in yes | no) ;; *) die "AVC_NATPMP must be yes or no, got '$NATPMP'" ;; esac
  case "$UPNP" in yes | no) ;; *) die "AVC_UPNP must be yes or no, got '$UPNP'" ;; esac
  case "$version" in v1 | v2) ;; *) die "unknown IGD version '$version'; use v2 or v1" ;; esac
  [ "$UPNP" = yes ] || [ "$NATPMP" = yes ] || die "AVC_UPNP=no and AVC_NATPMP=no leave the router nothing to speak; set one to yes"
  command -v miniupnpd >/dev/null || [ -x /usr/sbin/miniupnpd ] || die "miniupnpd not found; apt-get install miniupnpd"
  ns_exists "$rtr_ns" || die "no router namespace $rtr_ns; run '$0 up' first"
  stop_miniupnpd
  mkdir -p "$STATE"
  {
    echo "ext_ifname=$wan_if"
    echo "listening_ip=$lan_if"
    echo "enable_upnp=$UPNP"
    echo "enable_natpmp=$NATPMP"
    # Like a real router: a LAN host may only map ports to itself.
    echo "secure_mode=yes"
    echo "system_uptime=yes"
    echo "uuid=$uuid"
    [ "$version" = v1 ] && echo "force_igd_desc_v1=yes"
    echo "allow 1024-65535 $subnet 1024-65535"
    echo "deny 0-65535 0.0.0.0/0 0-65535"
  } >"$STATE/miniupnpd.conf"
  # Foreground (-d) so the PID is the daemon's own; `ip netns exec` execs it, so $! is miniupnpd.
  PATH=/usr/sbin:/sbin:$PATH ip netns exec "$rtr_ns" miniupnpd -f "$STATE/miniupnpd.conf" -d -P "$STATE/miniupnpd.own.pid" \
    >"$STATE/miniupnpd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$STATE/miniupnpd.pid"
  for _ in $(seq 50); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$STATE/miniupnpd.pid"
      die "miniupnpd exited at start: $(tail -n 5 "$STATE/miniupnpd.log" | tr '\n' ' ')"
    fi
    if { [ "$UPNP" = no ] || { ip netns exec "$rtr_ns" ss -Hlun 'sport = :1900' | grep -q . && ip netns exec "$rtr_ns" ss -Hltn | grep -q .; }; } &&
      { [ "$NATPMP" = no ] || ip netns exec "$rtr_ns" ss -Hlun 'sport = :5351' | grep -q .; }; then
      return 0
    fi
    sleep 0.1
  done
  stop_miniupnpd
  die "miniupnpd did not start listening within 5 s: $(tail -n 5 "$STATE/miniupnpd.log" | tr '\n' ' ')"
}
