#!/usr/bin/env bash
# End-to-end: the real passgate binary between network namespaces, real
# Linux peers on both sides, tshark on the wire beyond the gateway.
# Prints TAP ("ok N - ..."); exits non-zero if any check failed.
#   tests/e2e/gateway_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
e2e_require_root
e2e_start e2e

topo_up
# iperf3 (port 5201) is left out: hundreds of MB that tshark would then
# have to read twice, and its packets are no different from the rest.
ip netns exec pg-rtr tshark -q -i r-gw -w "$work/outside.pcapng" -f "not arp and not port 5201" >/dev/null 2>&1 &
capture=$!
sleep 1
start_passgate "$repo/conf/demo.yaml" "$work/passgate.log" --prometheus 127.0.0.1:9469 ||
  { echo "1..0 # passgate did not start"; exit 1; }

# Peers on the internet host.
pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
pg_ns pg-net $TOOL tcp-echo 9001 >/dev/null 2>&1 &
pg_ns pg-net iperf3 -s -p 5201 >/dev/null 2>&1 &
pg_ns pg-sub2 $TOOL tcp-echo 8080 >/dev/null 2>&1 &
sleep 0.5

t_static() {  # a port forward from outside to subscriber 2
  pg_ns pg-net $TOOL tcp-ask "$PG_STATIC_PUBLIC" 80 | tee "$work/static"
  expect_in "^seen $PG_SERVER:[0-9]+$" "$work/static"
}
# First, before subscriber 2 has sent anything: passgate must resolve it by ARP.
check "static mapping 198.51.100.30:80 reaches subscriber 2's port 8080 (resolved by ARP)" t_static

t_ping() { pg_ns "$1" ping -c 3 -i 0.2 -W 2 "$PG_SERVER"; }
check "ping from subscriber 1 to the internet host, replies come back" t_ping pg-sub1
check "ping from subscriber 2 to the internet host, replies come back" t_ping pg-sub2
check "ping the gateway's own inside address" pg_ns pg-sub1 ping -c 2 -i 0.2 -W 2 100.64.0.1

t_udp() {
  pg_ns "$1" $TOOL udp-ask "$PG_SERVER" 9000 "$2" | tee "$work/udp-$1"
  expect_in '^seen 198\.51\.100\.1[0-3]:[0-9]+$' "$work/udp-$1"
}
check "UDP from subscriber 1: answered, server saw a public pool address" t_udp pg-sub1 40001
check "UDP from subscriber 2: answered, server saw a public pool address" t_udp pg-sub2 40002
t_pair() {  # RFC 6888 REQ-2: every flow of a subscriber on one public address
  local a b
  a=$(pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 40011 | cut -d' ' -f2 | cut -d: -f1)
  b=$(pg_ns pg-sub1 $TOOL tcp-ask "$PG_SERVER" 9001 | cut -d' ' -f2 | cut -d: -f1)
  echo "udp from $a, tcp from $b"
  [[ -n "$a" && "$a" == "$b" ]]
}
check "paired pooling: subscriber 1's UDP and TCP leave from one public address" t_pair
t_tcp() {
  pg_ns "$1" $TOOL tcp-ask "$PG_SERVER" 9001 | tee "$work/tcp-$1"
  expect_in '^seen 198\.51\.100\.1[0-3]:[0-9]+$' "$work/tcp-$1"
}
check "TCP from subscriber 1: connected, server saw a public pool address" t_tcp pg-sub1
check "TCP from subscriber 2: connected, server saw a public pool address" t_tcp pg-sub2
t_iperf() { pg_ns "$1" iperf3 -c "$PG_SERVER" -p 5201 -t 2 "${@:2}" | tee "$work/iperf-$1"; expect_in 'receiver' "$work/iperf-$1"; }
check "iperf3 TCP from subscriber 1 through the gateway" t_iperf pg-sub1
check "iperf3 TCP download (reverse) to subscriber 2" t_iperf pg-sub2 -R
check "iperf3 UDP from subscriber 1 at 20 Mbit/s" t_iperf pg-sub1 -u -b 20M


t_hairpin() {  # RFC 4787 REQ-9: sub1 -> sub2's public mapping, seen with sub1's public address
  local p2 p1
  p2=$(pg_ns pg-sub2 $TOOL udp-ask "$PG_SERVER" 9000 5000 | cut -d' ' -f2)
  p1=$(pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 6000 | cut -d' ' -f2)
  echo "subscriber 2 is $p2 outside, subscriber 1 is $p1"
  pg_ns pg-sub2 $TOOL udp-listen 5000 3 >"$work/hairpin" &
  local listener=$!
  sleep 0.3
  pg_ns pg-sub1 $TOOL udp-send "${p2%:*}" "${p2#*:}" 6000
  wait $listener
  cat "$work/hairpin"
  expect_in "^from $p1\$" "$work/hairpin"
}
check "hairpinning: subscriber 1 reaches subscriber 2 through its public mapping" t_hairpin

t_ttl() {  # RFC 5508: the router's Time Exceeded comes back translated
  pg_ns pg-sub1 ping -c 1 -t 2 -W 2 "$PG_SERVER" | tee "$work/ttl" || true
  expect_in "From $PG_ROUTER.*Time to live exceeded" "$work/ttl"
}
check "ICMP time exceeded from a router beyond the gateway reaches the subscriber" t_ttl

t_unsolicited() {  # endpoint-independent filtering still needs a mapping
  pg_ns pg-sub1 $TOOL udp-listen 40001 2 >"$work/unsolicited" &
  local listener=$!
  local a
  for a in 10 11 12 13; do pg_ns pg-net $TOOL udp-send "198.51.100.$a" 33333 7777; done
  wait $listener
  [[ ! -s "$work/unsolicited" ]]
}
check "unsolicited inbound UDP to the pool reaches nobody" t_unsolicited

t_metrics() {  # the Prometheus endpoint, as a scraper sees it, checked by promtool
  pg_ns pg-gw curl -sf http://127.0.0.1:9469/metrics >"$work/metrics" || { echo "scrape failed"; return 1; }
  promtool check metrics <"$work/metrics" || return 1
  grep -E '^passgate_nat_sessions [1-9]' "$work/metrics" &&
    grep -E '^passgate_port_receive_packets_total\{port="inside"\} [1-9]' "$work/metrics" &&
    grep -E '^passgate_nat_drops_total\{reason="no_mapping"\} [1-9]' "$work/metrics"
}
check "Prometheus endpoint serves live counters that promtool accepts" t_metrics
t_telemetry() {  # DPDK's own client against passgate's /passgate commands
  local out
  out=$(printf '/passgate/nat\n/passgate/ports\n/passgate/mempool\n' | dpdk-telemetry.py 2>&1)
  echo "$out"
  $PY - "$out" <<'PY'
import json, sys
replies = [json.loads(line) for line in sys.argv[1].splitlines() if line.startswith("{")]
merged = {k: v for r in replies for k, v in r.items()}
nat, ports, pool = merged["/passgate/nat"], merged["/passgate/ports"], merged["/passgate/mempool"]
assert nat["sessions"] > 0 and nat["translated_outbound"] > 0, nat
assert ports["inside"]["rx_packets"] > 0 and ports["outside"]["tx_packets"] > 0, ports
assert pool["size"] > 0 and pool["workers"] == 1, pool
PY
}
check "DPDK telemetry: /passgate/nat, /passgate/ports and /passgate/mempool answer dpdk-telemetry.py" t_telemetry

sleep 1
kill -INT "$capture" 2>/dev/null
wait "$capture" 2>/dev/null
stop_passgate
cp "$work/passgate.log" "${PASSGATE_E2E_LOG:-/dev/null}" 2>/dev/null || true

t_capture_clean() {
  local total leaked bad
  total=$(tshark -r "$work/outside.pcapng" 2>/dev/null | wc -l)
  leaked=$(tshark -r "$work/outside.pcapng" -Y 'ip.addr==100.64.0.0/10' 2>/dev/null | wc -l)
  bad=$(tshark -r "$work/outside.pcapng" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -o tcp.check_checksum:TRUE \
    -Y 'ip.checksum.status=="Bad" || udp.checksum.status=="Bad" || tcp.checksum.status=="Bad" || icmp.checksum.status=="Bad"' \
    2>/dev/null | wc -l)
  echo "outside capture: $total packets, $leaked with a subscriber address, $bad with a bad checksum"
  [[ $total -gt 20 && $leaked -eq 0 && $bad -eq 0 ]]
}
check "outside capture: no subscriber address, every IPv4/TCP/UDP/ICMP checksum valid" t_capture_clean
check "unsolicited packets counted as NAT drops (no_mapping)" expect_in 'drop no_mapping +([4-9]|[1-9][0-9]+)$' "$work/passgate.log"
check "every buffer returned to the pool after traffic stops (no mbuf leak)" all_mbufs_back "$work/passgate.log"
check "passgate resolved a neighbour itself (ARP request sent, reply learned)" \
  expect_in '^port inside: .*arp answered [0-9]+ sent [1-9][0-9]* learned [1-9]' "$work/passgate.log"
check "SIGTERM stops passgate cleanly with its final counters" expect_in '^nat: sessions [0-9]+' "$work/passgate.log"

t_check_good() {
  local f
  for f in "$repo"/conf/*.yaml; do "$PASSGATE" --check --config "$f" || return 1; done
}
check "--check accepts every file in conf/" t_check_good
t_check_bad() {
  local f line ok=0
  for f in "$repo"/tests/conf-bad/*.yaml; do
    if "$PASSGATE" --check --config "$f" >"$work/bad.out" 2>&1; then
      echo "$f was accepted"
      ok=1
      continue
    fi
    while read -r line; do
      local where="${line#*expect: }"
      where="${where%% *}"
      local at="$(basename "$f"):$where:"
      [[ "$where" == "0:0" ]] && at="$(basename "$f"): error:"
      grep -q "$at" "$work/bad.out" || { echo "$f: no error at $where"; cat "$work/bad.out"; ok=1; }
    done < <(grep '^# expect:' "$f")
  done
  return $ok
}
check "--check rejects every file in tests/conf-bad/ at the expected line:column" t_check_bad

echo "1..$n"
[[ $failed -eq 0 ]]
