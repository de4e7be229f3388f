#!/usr/bin/env bash
# The exception path end to end (issue 15, ports[].exception): the real
# passgate binary with a kernel interface (net_tap) beside each port, in a
# topology of its own:
#
#   pgex-sub 100.64.0.11 -- ex-in [passgate in pgex-gw] ex-out -- r-gw 198.51.100.254 (pgex-rtr)
#                           k-in  (kernel)       outside (kernel)
#
# Checked: the kernel interfaces carry the ports' MAC, address and MTU; the
# kernel in pgex-gw pings the router (it resolved the router through the ARP
# replies the dataplane copies to it) and its ARP entry stays usable past
# base_reachable_time (plan risk 4); the router opens TCP to a listener in
# pgex-gw on the port's address and a message stream survives a SYN flood
# from a source outside exception.allow; each ARP request from the router
# gets exactly one reply on the wire (the kernel never answers); a flood
# from an allowed source meets the rate limit; passgatectl and /metrics
# keep answering through it, and passgate logs no EINTR (net_tap's SIGIO,
# plan risk 2); a clean stop leaves no kernel interface behind and every
# buffer back. About 25 s. Prints TAP; exits non-zero if a check failed.
# With a third argument 2: two workers (af_packet with two queue pairs, the
# taps with two queues; plan risk 11), the kernel's flows spread over both.
#   tests/e2e/exception_e2e.sh PASSGATE_BINARY PASSGATECTL_BINARY [WORKERS]
WORKERS=${3:-1}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$1" "$2"
e2e_require_root
e2e_require tshark
e2e_start exception

PREFIX=pgex
PG_NS=(pgex-gw pgex-sub pgex-rtr)
PG_GW_NS=pgex-gw
PG_RTR_NS=pgex-rtr
OWN=198.51.100.1
ROUTER=198.51.100.254
STRANGER=198.51.100.99
METRICS=127.0.0.1:9469

topo_up() {
  topo_down
  local ns
  for ns in "${PG_NS[@]}"; do
    ip netns add "$ns"
    pg_ns "$ns" ip link set lo up
    pg_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add ex-in netns pgex-gw type veth peer name eth0 netns pgex-sub
  ip link add ex-out netns pgex-gw type veth peer name r-gw netns pgex-rtr
  pg_ns pgex-sub ip addr add 100.64.0.11/24 dev eth0
  pg_ns pgex-sub ip link set eth0 up
  pg_ns pgex-sub ip route add default via 100.64.0.1
  pg_ns pgex-rtr ip addr add "$ROUTER/24" dev r-gw
  pg_ns pgex-rtr ip link set r-gw up
  pg_no_offload pgex-sub eth0
  pg_no_offload pgex-rtr r-gw
  for ifc in ex-in ex-out; do
    pg_ns pgex-gw ip link set "$ifc" up
    pg_no_offload pgex-gw "$ifc"
  done
  # The kernel side: control traffic only, never a router (plan 1.6); its
  # neighbour entries age fast so that the check below sees them renewed.
  pg_ns pgex-gw sysctl -qw net.ipv4.ip_forward=0
}

DEVARGS= QUEUES= LCORES= WORKER_LIST=
if [[ $WORKERS == 2 ]]; then
  # As multiworker_e2e.sh: lcore 2 shares a CPU with the control lcore.
  DEVARGS=,qpairs=2
  QUEUES="    rx_queues: 2
    tx_queues: 2"
  LCORES=', "--lcores", "0@0,1@1,2@0"'
  WORKER_LIST="  workers: [1, 2]"
fi
cat >"$work/ex.yaml" <<YAML
dataplane:
  eal: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "$PREFIX", "--log-level", "lib.eal:error"$LCORES]
$WORKER_LIST
ports:
  - name: inside
    device: "net_af_packet0,iface=ex-in$DEVARGS"
$QUEUES
    role: inside
    address: 100.64.0.1/24
    exception: {interface: k-in}
  - name: outside
    device: "net_af_packet1,iface=ex-out$DEVARGS"
$QUEUES
    role: outside
    address: $OWN/24
    gateway: $ROUTER
    exception:
      rate: 300
      burst: 100
      allow: [$ROUTER/32]
nat:
  pools:
    - name: demo
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.13]
control:
  prometheus: "$METRICS"
YAML

e2e_stop_extras() {
  local p
  for p in ${EXTRA_PIDS:-}; do kill "$p" 2>/dev/null || true; done
}

topo_up
start_passgate "$work/ex.yaml" "$work/ex.log" || { echo "1..0 # passgate did not start"; exit 1; }
# The kernel interface's neighbour entries age fast, so that the check below
# sees them renewed (per interface: this kernel has no neigh/default in a
# namespace).
pg_ns pgex-gw sysctl -qw net.ipv4.neigh.outside.base_reachable_time_ms=2000 net.ipv4.neigh.outside.gc_stale_time=2
port_mac() { pg_ns pgex-gw ip -o link show "$1" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }

t_kernel_interfaces() {
  local port kif address
  for pair in "ex-out outside $OWN/24" "ex-in k-in 100.64.0.1/24"; do
    read -r port kif address <<<"$pair"
    pg_ns pgex-gw ip -o link show "$kif"
    pg_ns pgex-gw ip -4 -o addr show dev "$kif"
    [[ -n "$(port_mac "$port")" && "$(port_mac "$port")" == "$(port_mac "$kif")" ]] || { echo "MAC differs"; return 1; }
    pg_ns pgex-gw ip -4 -o addr show dev "$kif" | grep -q "inet $address" || return 1
    pg_ns pgex-gw ip -o link show "$kif" | grep -q "mtu 1500" || return 1
  done
}
check "kernel interfaces outside and k-in carry their port's MAC, address and MTU" t_kernel_interfaces

# The dataplane answers echo itself: the router sees one reply per request.
t_echo_once() { pg_ns pgex-rtr ping -c 3 -i 0.2 -W 1 "$OWN" | tee /dev/stderr | grep -q " 3 received" && ! pg_ns pgex-rtr ping -c 3 -i 0.2 -W 1 "$OWN" | grep -q DUP; }
check "the router's pings to the port are answered once (dataplane, not the kernel too)" t_echo_once

t_kernel_pings_router() { pg_ns pgex-gw ping -c 3 -i 0.2 -W 2 "$ROUTER"; }
check "the kernel in pgex-gw pings the router through the port (ARP through the copied replies)" t_kernel_pings_router

# A message stream from the router to a listener on the port's own address
# (BGP's port), with a flood of SYNs from a source outside allow at the same
# time: the flood is dropped before the rate limit, the stream goes on.
pg_ns pgex-gw $TOOL tcp-mirror 179 >/dev/null 2>&1 &
EXTRA_PIDS="$!"
sleep 0.3
pg_ns pgex-rtr $TOOL tcp-stream "$OWN" 179 6 >"$work/stream" 2>&1 &
stream_pid=$!
sleep 1
flood() {  # flood SOURCE COUNT: SYNs to port 179 of the port's address, straight onto the wire
  pg_ns pgex-rtr "$PY" - "$1" "$2" "$(port_mac ex-out)" "$OWN" <<'PY' 2>&1
import sys
from scapy.all import Ether, IP, TCP, conf
src, count, mac, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = conf.L2socket(iface="r-gw")
frames = [bytes(Ether(dst=mac) / IP(src=src, dst=dst) / TCP(sport=1024 + i % 60000, dport=179, flags="S"))
          for i in range(count)]
for f in frames:
    s.send(f)
print(f"sent {count} SYNs from {src}")
PY
}
# passgatectl and /metrics hammered while the floods run: net_tap's SIGIO
# lands on any thread, and none of them may fail for it (plan risk 2).
(for i in $(seq 1 60); do
   "$CTL" --file-prefix "$PREFIX" ports >/dev/null 2>>"$work/ctl-errors" || echo "passgatectl failed" >>"$work/ctl-errors"
   pg_ns pgex-gw curl -sf "http://$METRICS/metrics" >/dev/null 2>>"$work/ctl-errors" || echo "metrics failed" >>"$work/ctl-errors"
   sleep 0.1
 done) &
hammer_pid=$!
flood "$STRANGER" 3000 >"$work/flood-stranger"
wait "$stream_pid"
stream_rc=$?
t_stream() { cat "$work/flood-stranger" "$work/stream"; [[ $stream_rc -eq 0 ]] && expect_in "^messages ([0-9]+) echoed \1 " "$work/stream"; }
check "a TCP stream to the port's address survives a SYN flood from outside exception.allow" t_stream

# The kernel's entry for the router, aged past base_reachable_time (2 s):
# renewed through the copies, never FAILED.
t_neighbour_kept() {
  local i state
  for i in 1 2 3 4 5 6; do
    pg_ns pgex-gw ping -c 1 -W 1 "$ROUTER" >/dev/null || { echo "ping $i failed"; return 1; }
    state=$(pg_ns pgex-gw ip neigh show "$ROUTER" dev outside)
    echo "$state"
    [[ "$state" != *FAILED* && -n "$state" ]] || return 1
    sleep 1
  done
}
check "the kernel's ARP entry for the router stays usable past base_reachable_time" t_neighbour_kept

# One ARP reply per request on the wire: the kernel interface never answers.
pg_ns pgex-rtr tshark -q -i r-gw -f arp -w "$work/arp.pcap" >/dev/null 2>&1 &
tshark_pid=$!
EXTRA_PIDS="$EXTRA_PIDS $tshark_pid"
sleep 1.5
for i in 1 2 3; do
  pg_ns pgex-rtr ip neigh flush dev r-gw
  pg_ns pgex-rtr ping -c 1 -W 1 "$OWN" >/dev/null
  sleep 0.2
done
sleep 0.5
kill "$tshark_pid" 2>/dev/null
wait "$tshark_pid" 2>/dev/null
t_one_reply() {
  local requests replies
  requests=$(tshark -r "$work/arp.pcap" -Y "arp.opcode == 1 && arp.dst.proto_ipv4 == $OWN" 2>/dev/null | wc -l)
  replies=$(tshark -r "$work/arp.pcap" -Y "arp.opcode == 2 && arp.src.proto_ipv4 == $OWN" 2>/dev/null | wc -l)
  echo "requests for $OWN: $requests, replies: $replies"
  [[ $requests -ge 3 && $replies -eq $requests ]]
}
check "tshark on the router's link: exactly one ARP reply per request for the port's address" t_one_reply

flood "$ROUTER" 3000 >"$work/flood-router"
wait "$hammer_pid"
t_control_kept() { cat "$work/ctl-errors" 2>/dev/null; [[ ! -s "$work/ctl-errors" ]]; }
check "passgatectl and /metrics answered throughout the floods (net_tap's SIGIO)" t_control_kept

stop_passgate
grep -E "^port|exception|drop" "$work/ex.log" | head -40 >"$work/report"
drop_count() {  # drop_count LOG PORT REASON, from passgate's final report
  awk -v port="port $2:" -v reason="$3" '
    index($0, "port ") == 1 { inport = index($0, port) == 1 }
    inport && $1 == "drop" && $2 == reason { print $3; found = 1 }
    END { if (!found) print 0 }' "$1"
}
exception_count() {  # exception_count LOG PORT to_kernel|from_kernel
  awk -v port="port $2:" -v field="$3" '
    index($0, "port ") == 1 { inport = index($0, port) == 1 }
    inport && $1 == "exception" { for (i = 2; i < NF; i++) if ($i == field) { print $(i + 1); found = 1 } }
    END { if (!found) print 0 }' "$1"
}
t_counted() {
  cat "$work/report"
  local to from stranger limited rejected
  to=$(exception_count "$work/ex.log" outside to_kernel)
  from=$(exception_count "$work/ex.log" outside from_kernel)
  stranger=$(drop_count "$work/ex.log" outside exception_not_allowed)
  limited=$(drop_count "$work/ex.log" outside exception_rate_limited)
  rejected=$(drop_count "$work/ex.log" outside exception_rejected)
  echo "to_kernel $to from_kernel $from not_allowed $stranger rate_limited $limited rejected $rejected"
  # af_packet may lose part of a flood when the worker is descheduled (2 shared CPUs): some of it counted is enough.
  [[ $to -gt 0 && $from -gt 0 && $stranger -ge 100 && $limited -gt 0 && $rejected -eq 0 ]]
}
check "counted: to and from the kernel, the stranger's flood not allowed, the router's rate limited, nothing rejected" t_counted
t_no_eintr() { ! grep -iE "EINTR|interrupted system call" "$work/ex.log"; }
check "no EINTR in passgate's log" t_no_eintr
t_taps_gone() { ! pg_ns pgex-gw ip link show outside 2>/dev/null && ! pg_ns pgex-gw ip link show k-in 2>/dev/null; }
check "after the stop no kernel interface is left" t_taps_gone
check "every mbuf back in the pool" all_mbufs_back "$work/ex.log"

echo "1..$n"
[[ $failed -eq 0 ]]
