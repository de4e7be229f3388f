#!/usr/bin/env bash
# End-to-end: passgate as a router (issue 12). Real tools between network
# namespaces (tests/e2e/topology.sh): tracepath, ping -M do and traceroute
# from a subscriber; Path MTU Discovery by an internet host toward a port
# forward; datagrams larger than the MTU without DF reassembled at the far
# end; scapy frames with foreign MACs, martian sources, broadcast
# destinations and off-subnet ARP dropped and counted while traffic flows;
# the ICMP error rate limit.
#
# Two runs, because a link's MTU is the same on both its ends:
#   A  outside link 1400 (passgate's outside port and the router): passgate
#      is the bottleneck from the subscribers toward the internet;
#   B  inside LAN 1300 (passgate's inside port, the bridge, the
#      subscribers): passgate is the bottleneck from the internet inward.
# Prints TAP; exits non-zero if any check failed.
#   tests/e2e/router_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
PEER="$PY $here/router_peer.py"
e2e_require_root
e2e_require tracepath traceroute
e2e_start router

write_config() {  # write_config FILE INSIDE_MTU OUTSIDE_MTU
  cat >"$1" <<YAML
dataplane:
  eal: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--log-level", "lib.eal:error"]
  neighbour: {reachable_s: 60, retry_ms: 200, max_retries: 5, queue: 32, table_size: 256}
  icmp_errors: {rate: 100, burst: 20}
ports:
  - name: inside
    device: "net_af_packet0,iface=pg-in"
    role: inside
    address: 100.64.0.1/24
    mtu: $2
  - name: outside
    device: "net_af_packet1,iface=pg-out"
    role: outside
    address: 198.51.100.1/24
    gateway: 198.51.100.254
    mtu: $3
nat:
  pools:
    - name: demo
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.13]
  static:
    - {protocol: udp, inside: 100.64.0.12:4000, public: 198.51.100.30:4000}
YAML
}

# counter LOG PORT NAME: a port counter from passgate's final report.
drop_count() {  # drop_count LOG PORT REASON
  awk -v port="port $2:" -v reason="$3" '
    index($0, "port ") == 1 { inport = index($0, port) == 1 }
    inport && $1 == "drop" && $2 == reason { print $3; found = 1 }
    END { if (!found) print 0 }' "$1"
}
icmp_count() {  # icmp_count LOG PORT FIELD (time_exceeded, frag_needed, rate_limited, fragmented, into)
  awk -v port="port $2:" -v field="$3" '
    index($0, "port ") == 1 { inport = index($0, port) == 1 }
    inport && $1 == "icmp" { for (i = 1; i < NF; i++) if ($i == field) { v = $(i + 1); sub(/,/, "", v); print v; found = 1 } }
    END { if (!found) print 0 }' "$1"
}
at_least() {  # at_least VALUE MIN WHAT
  echo "$3: $1 (at least $2)"
  [[ "$1" -ge "$2" ]]
}

topo_up
gw_mac() { pg_ns "$1" ip neigh show "$2" | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2; }

# ------------------------------------------------------------------ run A
pg_ns pg-rtr ip link set r-gw mtu 1400
write_config "$work/a.yaml" 1500 1400
start_passgate "$work/a.yaml" "$work/a.log" || { echo "1..0 # passgate did not start"; exit 1; }
pg_ns pg-net $PEER big-echo 9000 >/dev/null 2>&1 &
sleep 0.3

t_tracepath() {
  pg_ns pg-sub1 tracepath -n -m 5 "$PG_SERVER" | tee "$work/tracepath"
  expect_in 'pmtu 1400' "$work/tracepath" && expect_in '^ 1: +100\.64\.0\.1 ' "$work/tracepath" &&
    expect_in "$PG_SERVER" "$work/tracepath"
}
check "tracepath from a subscriber finds passgate's hop and the path MTU 1400 of its outside link" t_tracepath

t_ping_df() {
  pg_ns pg-sub2 ip route flush cache
  pg_ns pg-sub2 ping -c 3 -i 0.3 -W 2 -M do -s 1472 "$PG_SERVER" >"$work/ping-df" 2>&1
  cat "$work/ping-df"
  expect_in 'mtu ?= ?1400' "$work/ping-df" &&
    pg_ns pg-sub2 ping -c 2 -i 0.3 -W 2 -M do -s 1372 "$PG_SERVER"
}
check "ping -M do: Fragmentation Needed with MTU 1400 from passgate, then 1400-byte packets pass" t_ping_df

t_traceroute() {
  pg_ns pg-sub1 traceroute -n -q 1 -w 2 -m 5 "$PG_SERVER" | tee "$work/traceroute"
  expect_in '^ 1 +100\.64\.0\.1 ' "$work/traceroute" && expect_in '^ 2 +198\.51\.100\.254 ' "$work/traceroute" &&
    expect_in "^ 3 +$PG_SERVER " "$work/traceroute"
}
check "traceroute shows passgate, then the router (its Time Exceeded translated back), then the server" t_traceroute

# 1500-byte datagrams: larger ones the subscriber's kernel would fragment
# itself, and DPDK's af_packet port hands passgate what the kernel
# reassembled (PACKET_FANOUT_FLAG_DEFRAG), never the fragments.
check "1500-byte UDP without DF: fragmented by passgate to 1400, reassembled by the server, echoed back intact" \
  pg_ns pg-sub1 $PEER big-ask "$PG_SERVER" 9000 1472

# Frames that are not passgate's business, while traffic flows.
rtr_mac=$(gw_mac pg-rtr 198.51.100.1)
sub_mac=$(gw_mac pg-sub1 100.64.0.1)
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" foreign-mac 5 198.51.100.10
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" broadcast-ip 4 198.51.100.10
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" martian 6 127.0.0.1 198.51.100.10
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" martian 3 240.0.0.9 198.51.100.10
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" from 7 198.51.100.11 198.51.100.10
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" from 2 203.0.113.10 198.51.100.255
pg_ns pg-rtr $PEER frames r-gw "$rtr_mac" arp-off-subnet 3 10.9.9.9 198.51.100.1
pg_ns pg-sub1 $PEER frames eth0 "$sub_mac" martian 4 0.0.0.0 "$PG_SERVER"
pg_ns pg-sub1 $PEER frames eth0 "$sub_mac" from 3 100.64.0.11 224.0.0.5
check "ping still answered after the junk frames" pg_ns pg-sub1 ping -c 2 -i 0.2 -W 2 "$PG_SERVER"

# The rate limit: 300 expiring packets in about a second, 100 errors a second.
pg_ns pg-sub2 $PEER frames eth0 "$(gw_mac pg-sub2 100.64.0.1)" ttl1 300 100.64.0.12 "$PG_SERVER"
stop_passgate
cp "$work/a.log" "$work/a-final.log"
check "foreign destination MACs and broadcast IPv4 frames dropped as foreign_mac" \
  at_least "$(drop_count "$work/a.log" outside foreign_mac)" 9 "outside foreign_mac"
check "martian sources dropped on both ports" bash -c "$(declare -f drop_count at_least);
  at_least \$(drop_count '$work/a.log' outside martian_source) 9 outside &&
  at_least \$(drop_count '$work/a.log' inside martian_source) 4 inside"
check "our own pool address as a source from outside dropped" \
  at_least "$(drop_count "$work/a.log" outside own_address_source)" 7 "own_address_source"
check "IPv4 to the subnet broadcast or multicast never translated" bash -c "$(declare -f drop_count at_least);
  at_least \$(drop_count '$work/a.log' outside broadcast_destination) 2 outside &&
  at_least \$(drop_count '$work/a.log' inside broadcast_destination) 3 inside"
check "ARP requests from off the subnet ignored" \
  at_least "$(drop_count "$work/a.log" outside arp_off_subnet)" 3 "arp_off_subnet"
t_rate() {
  local sent limited
  sent=$(icmp_count "$work/a.log" inside time_exceeded)
  limited=$(icmp_count "$work/a.log" inside rate_limited)
  echo "time exceeded sent $sent, rate limited $limited"
  [[ "$limited" -ge 100 && "$sent" -ge 20 && "$sent" -le 250 ]]
}
check "ICMP errors rate-limited per worker (100/s, burst 20): most of 300 held back, counted" t_rate
check "passgate counted the packets it fragmented" at_least "$(icmp_count "$work/a.log" outside fragmented)" 1 fragmented

# ------------------------------------------------------------------ run B
pg_ns pg-rtr ip link set r-gw mtu 1500
for ifc in lan-gw lan-s1 lan-s2 br0; do pg_ns pg-lan ip link set "$ifc" mtu 1300; done
pg_ns pg-sub1 ip link set eth0 mtu 1300
pg_ns pg-sub2 ip link set eth0 mtu 1300
pg_ns pg-net ip route flush cache
write_config "$work/b.yaml" 1300 1500
start_passgate "$work/b.yaml" "$work/b.log" || { echo "1..0 # passgate did not start (run B)"; exit 1; }
pg_ns pg-sub2 $PEER udp-sink 4000 8 >"$work/sink" 2>&1 &
sink=$!
pg_ns pg-net $PEER big-echo 9000 >/dev/null 2>&1 &
sleep 0.3

t_pmtu_in() {
  pg_ns pg-net $PEER df-send "$PG_STATIC_PUBLIC" 4000 1400 | tee "$work/df-in"
  expect_in '^mtu 1300$' "$work/df-in" && pg_ns pg-net ip route get "$PG_STATIC_PUBLIC" | tee -a "$work/df-in" &&
    pg_ns pg-net $PEER df-send "$PG_STATIC_PUBLIC" 4000 1272
}
check "an internet host toward a port forward learns the inside MTU 1300 from passgate's Fragmentation Needed" t_pmtu_in

check "a 1500-byte reply without DF is fragmented to 1300 toward the subscriber and arrives intact" \
  pg_ns pg-sub1 $PEER big-ask "$PG_SERVER" 9000 1472
wait "$sink"
t_sink() {
  cat "$work/sink"
  expect_in "^from $PG_SERVER len 1272$" "$work/sink" && ! grep -q 'len 1400' "$work/sink"
}
check "behind the port forward: the datagram that fits arrived, the too-large DF one did not" t_sink
stop_passgate
check "run B: Fragmentation Needed sent from the outside port, fragments sent on the inside" bash -c "$(declare -f icmp_count at_least);
  at_least \$(icmp_count '$work/b.log' outside frag_needed) 1 frag_needed &&
  at_least \$(icmp_count '$work/b.log' inside fragmented) 1 fragmented"

echo "1..$n"
[[ $failed -eq 0 ]]
