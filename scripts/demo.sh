#!/usr/bin/env bash
# The README's first command (root): installs what is missing, builds
# passgate, and runs the gateway for real on a fresh machine with no NIC:
# two subscriber namespaces and an internet host behind a router, joined by
# veth pairs, passgate in between on DPDK af_packet ports. Real traffic
# (ping, UDP, TCP, iperf3, a port forward, hairpinning, a traceroute-style
# TTL expiry) crosses it; then passgate stops and prints its counters.
# Everything it creates is removed on exit, also on failure or Ctrl-C.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (it creates network namespaces and runs DPDK)" >&2
  exit 1
fi
bash scripts/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build app/passgate >/dev/null

PASSGATE="$repo/build/app/passgate"
source tests/e2e/topology.sh
TOOL="/usr/bin/python3 $repo/tests/e2e/net_tool.py"
log="$(mktemp "${TMPDIR:-/tmp}/passgate-demo.XXXXXX.log")"
cleanup() { stop_passgate; topo_down; }
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
result() { if "$@"; then echo "   -> passed"; else echo "   -> FAILED"; failures=$((failures + 1)); fi; }
failures=0

say "network namespaces: subscribers $PG_SUB1, $PG_SUB2 | passgate | router $PG_ROUTER | server $PG_SERVER"
topo_up
start_passgate conf/demo.yaml "$log"
echo "passgate is running (conf/demo.yaml): inside 100.64.0.1/24, outside 198.51.100.1/24, pool 198.51.100.10-13"

pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
pg_ns pg-net $TOOL tcp-echo 9001 >/dev/null 2>&1 &
ip netns exec pg-net iperf3 -s -p 5201 >/dev/null 2>&1 &
pg_ns pg-sub2 $TOOL tcp-echo 8080 >/dev/null 2>&1 &
sleep 0.5

say "ping from each subscriber to the internet host"
result pg_ns pg-sub1 ping -c 3 -i 0.2 -W 2 "$PG_SERVER"
result pg_ns pg-sub2 ping -c 3 -i 0.2 -W 2 "$PG_SERVER"

say "UDP and TCP: the server reports the address it sees (a public pool address, never 100.64.x.x)"
for ns in pg-sub1 pg-sub2; do
  echo "$ns UDP: $(pg_ns $ns $TOOL udp-ask "$PG_SERVER" 9000 40000)"
  echo "$ns TCP: $(pg_ns $ns $TOOL tcp-ask "$PG_SERVER" 9001)"
done

say "iperf3 TCP, 3 s, subscriber 1 to the server"
result pg_ns pg-sub1 iperf3 -c "$PG_SERVER" -p 5201 -t 3

say "port forward: the server connects to 198.51.100.30:80, subscriber 2 answers on 8080"
echo "subscriber 2 says: $(pg_ns pg-net $TOOL tcp-ask "$PG_STATIC_PUBLIC" 80)"

say "hairpinning: subscriber 1 sends to subscriber 2's public mapping"
p2=$(pg_ns pg-sub2 $TOOL udp-ask "$PG_SERVER" 9000 5000 | cut -d' ' -f2)
pg_ns pg-sub2 $TOOL udp-listen 5000 2 >"$log.hairpin" &
listener=$!
sleep 0.2
pg_ns pg-sub1 $TOOL udp-send "${p2%:*}" "${p2#*:}" 6000
wait $listener
echo "subscriber 2 (public $p2) received: $(head -1 "$log.hairpin") (subscriber 1's public address)"
rm -f "$log.hairpin"

say "TTL 2 from subscriber 1: the router beyond passgate answers Time Exceeded, translated back"
pg_ns pg-sub1 ping -c 1 -t 2 -W 2 "$PG_SERVER" | grep -E "From|transmitted" || true

say "stopping passgate (SIGTERM); its counters:"
stop_passgate
grep -v '^TELEMETRY' "$log"
rm -f "$log"
echo
if [[ $failures -eq 0 ]]; then echo "demo: OK"; else echo "demo: $failures step(s) FAILED"; exit 1; fi
