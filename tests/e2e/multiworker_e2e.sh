#!/usr/bin/env bash
# End-to-end with two workers on a real PMD: af_packet with two queue pairs
# per port (the kernel's fanout spreads packets by its own hash, not
# passgate's key, so both ports run in "handoff" steering). Every packet must
# still reach the worker that owns it: UDP, TCP, ping, a static port forward,
# a steady UDP stream with every answer counted and a TCP exchange.
# Prints TAP; exits non-zero if any check failed.
#   tests/e2e/multiworker_e2e.sh PASSGATE_BINARY PASSGATECTL_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
e2e_require_root
e2e_start mw

# The demo configuration with two workers (lcores 1 and 2; lcore 2 shares a
# CPU with the control lcore when the machine has two) and two queues a port.
sed -e 's/device: "\(net_af_packet[01],iface=pg-[a-z]*\)"/device: "\1,qpairs=2"\n    rx_queues: 2\n    tx_queues: 2/' \
  -e 's/  mbufs: auto/  mbufs: auto\n  workers: [1, 2]/' \
  -e 's/"lib.eal:error"\]/"lib.eal:error", "--lcores", "0@0,1@1,2@0"]/' \
  "$repo/conf/demo.yaml" >"$work/two.yaml"

topo_up
start_passgate "$work/two.yaml" "$work/passgate.log" || { echo "1..0 # passgate did not start"; exit 1; }
pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
pg_ns pg-net $TOOL tcp-echo 9001 >/dev/null 2>&1 &
pg_ns pg-net $TOOL tcp-mirror 9002 >/dev/null 2>&1 &
pg_ns pg-sub2 $TOOL tcp-echo 8080 >/dev/null 2>&1 &
sleep 0.5

t_workers() { "$CTL" steering | tee "$work/steering"; expect_in "^workers +2$" "$work/steering" && expect_in "^mode_outside +handoff$" "$work/steering"; }
check "two workers, both ports in handoff steering (af_packet has no RSS of its own keys)" t_workers
check "ping from subscriber 1 through two workers" pg_ns pg-sub1 ping -c 3 -i 0.2 -W 2 "$PG_SERVER"
t_udp_many() {  # flows of two subscribers from many source ports: every one answered
  local p
  for p in 40001 40002 40003 40004 40005 40006; do
    pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 $p | grep -q '^seen 198\.51\.100\.1[0-3]:' || return 1
    pg_ns pg-sub2 $TOOL udp-ask "$PG_SERVER" 9000 $p | grep -q '^seen 198\.51\.100\.1[0-3]:' || return 1
  done
}
check "UDP from twelve flows of two subscribers, all answered" t_udp_many
t_tcp() { pg_ns pg-sub1 $TOOL tcp-ask "$PG_SERVER" 9001 | tee "$work/tcp"; expect_in '^seen 198\.51\.100\.1[0-3]:' "$work/tcp"; }
check "TCP from subscriber 1" t_tcp
t_static() { pg_ns pg-net $TOOL tcp-ask "$PG_STATIC_PUBLIC" 80 | tee "$work/static"; expect_in "^seen $PG_SERVER:" "$work/static"; }
check "static port forward from outside to subscriber 2" t_static
t_stream() { pg_ns pg-sub1 $TOOL udp-stream "$PG_SERVER" 9000 41000 300 3 | tee "$work/stream"; expect_in "lost 0$" "$work/stream"; }
check "UDP stream at 300 packets/s: every answer back" t_stream
t_tcp_stream() { pg_ns pg-sub2 $TOOL tcp-stream "$PG_SERVER" 9002 3 | tee "$work/tstream"; expect_in '^messages ([0-9]+) echoed \1 ' "$work/tstream"; }
check "TCP exchange every 20 ms: every message echoed" t_tcp_stream
t_handoffs() {
  "$CTL" steering | tee "$work/steering2"
  # Packets did cross between the workers (fanout ignores ownership) and
  # none was lost on the way.
  grep -E '^worker[01]_handoff_in +[1-9]' "$work/steering2" >/dev/null &&
    "$CTL" ports | tee "$work/ports" && ! grep -q handoff_ring_full "$work/ports"
}
check "handoffs counted per worker, none lost to a full ring" t_handoffs
t_stop() {
  stop_passgate
  grep -E "mbufs: ([0-9]+) of \1 free" "$work/passgate.log"
}
check "clean stop with every buffer back (handoff rings drained)" t_stop

echo "1..$n"
[[ $failed -eq 0 ]]
