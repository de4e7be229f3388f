# Network namespaces around passgate, shared by the demo (scripts/demo.sh)
# and the end-to-end tests. Source it; needs root, iproute2 and ethtool.
#
#   pg-sub1 100.64.0.11 --+
#   pg-sub2 100.64.0.12 --+-- br0 (pg-lan) -- pg-in [passgate in pg-gw] pg-out -- 198.51.100.254 (pg-rtr) 203.0.113.1 -- 203.0.113.10 (pg-net)
#
# passgate owns pg-in and pg-out through DPDK's net_af_packet; its inside
# address is 100.64.0.1/24, outside 198.51.100.1/24 with the router as
# gateway, and its NAT pool is 198.51.100.10-13 (conf/demo.yaml). The router
# namespace gives a real hop beyond the gateway (for TTL exceeded).

PG_NS=(pg-gw pg-lan pg-sub1 pg-sub2 pg-rtr pg-net)
PG_SUB1=100.64.0.11
PG_SUB2=100.64.0.12
PG_SERVER=203.0.113.10
PG_ROUTER=198.51.100.254
PG_STATIC_PUBLIC=198.51.100.30

# The namespaces start_passgate runs passgate in and pings it from: a test
# with a topology of its own (abuse_e2e.sh) names its own.
PG_GW_NS=pg-gw
PG_RTR_NS=pg-rtr

pg_ns() { ip netns exec "$@"; }

# Checksums: veth leaves them "partial" for the receiver to finish unless
# offload is off on the sending side; DPDK's af_packet does not finish them.
pg_no_offload() { pg_ns "$1" ethtool -K "$2" tx off rx off >/dev/null 2>&1 || true; }

topo_down() {
  local ns
  for ns in "${PG_NS[@]}"; do
    if ip netns pids "$ns" >/dev/null 2>&1; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    fi
  done
  sleep 0.3
  for ns in "${PG_NS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

topo_up() {
  topo_down
  local ns
  for ns in "${PG_NS[@]}"; do
    ip netns add "$ns"
    pg_ns "$ns" ip link set lo up
    # IPv4 only: keeps router solicitations and MLD off the wire and out of
    # the drop counters.
    pg_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done

  # LAN: a bridge joining the subscribers and passgate's inside port.
  # No multicast snooping: the bridge would send IGMP queries/joins that
  # passgate must then drop and count, making drop counters noisy.
  pg_ns pg-lan ip link add br0 type bridge mcast_snooping 0
  pg_ns pg-lan ip link set br0 up
  ip link add lan-gw netns pg-lan type veth peer name pg-in netns pg-gw
  ip link add lan-s1 netns pg-lan type veth peer name eth0 netns pg-sub1
  ip link add lan-s2 netns pg-lan type veth peer name eth0 netns pg-sub2
  for ifc in lan-gw lan-s1 lan-s2; do
    pg_ns pg-lan ip link set "$ifc" master br0
    pg_ns pg-lan ip link set "$ifc" up
    pg_no_offload pg-lan "$ifc"
  done
  local i addr
  for i in 1 2; do
    addr=$([[ $i == 1 ]] && echo $PG_SUB1 || echo $PG_SUB2)
    pg_ns pg-sub$i ip addr add "$addr/24" dev eth0
    pg_ns pg-sub$i ip link set eth0 up
    pg_ns pg-sub$i ip route add default via 100.64.0.1
    pg_no_offload pg-sub$i eth0
  done

  # Outside: passgate -- router -- server.
  ip link add pg-out netns pg-gw type veth peer name r-gw netns pg-rtr
  ip link add r-net netns pg-rtr type veth peer name eth0 netns pg-net
  pg_ns pg-rtr ip addr add "$PG_ROUTER/24" dev r-gw
  pg_ns pg-rtr ip addr add 203.0.113.1/24 dev r-net
  pg_ns pg-rtr ip link set r-gw up
  pg_ns pg-rtr ip link set r-net up
  pg_ns pg-rtr sysctl -qw net.ipv4.ip_forward=1
  pg_no_offload pg-rtr r-gw
  pg_no_offload pg-rtr r-net
  pg_ns pg-net ip addr add "$PG_SERVER/24" dev eth0
  pg_ns pg-net ip link set eth0 up
  pg_ns pg-net ip route add default via 203.0.113.1
  pg_no_offload pg-net eth0

  # passgate's own ends: up, no addresses (DPDK owns them), no offloads.
  for ifc in pg-in pg-out; do
    pg_ns pg-gw ip link set "$ifc" up
    pg_no_offload pg-gw "$ifc"
  done
}

# start_passgate CONFIG LOGFILE [extra args]: starts it in $PG_GW_NS, waits until
# it answers ARP from the router (so ports are up). Sets PG_PID.
start_passgate() {
  local cfg="$1" log="$2"
  shift 2
  # Not through a shell function: $! must be passgate itself (ip netns exec
  # execs it), so that signals reach it.
  ip netns exec "$PG_GW_NS" "$PASSGATE" --config "$cfg" "$@" >"$log" 2>&1 &
  PG_PID=$!
  local t
  for t in $(seq 1 100); do
    if ! kill -0 "$PG_PID" 2>/dev/null; then
      echo "passgate exited early:" >&2
      cat "$log" >&2
      return 1
    fi
    if grep -q "running with" "$log" && pg_ns "$PG_RTR_NS" ping -c1 -W1 198.51.100.1 >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "passgate did not come up:" >&2
  cat "$log" >&2
  return 1
}

# stop_passgate: SIGTERM, wait, and leave its final counters in the log.
stop_passgate() {
  [[ -n "${PG_PID:-}" ]] || return 0
  kill -TERM "$PG_PID" 2>/dev/null || true
  local t
  for t in $(seq 1 50); do
    kill -0 "$PG_PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$PG_PID" 2>/dev/null || true
  wait "$PG_PID" 2>/dev/null || true
  PG_PID=
}
