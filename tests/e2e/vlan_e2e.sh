#!/usr/bin/env bash
# 802.1Q on the inside port: subscriber 1 reaches passgate on VLAN 100, and
# its traffic crosses the NAT both ways; subscriber 2 stays untagged, so its
# frames are dropped and counted as vlan_mismatch.
# Prints TAP.   tests/e2e/vlan_e2e.sh PASSGATE_BINARY
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
PASSGATE="$(realpath "$1")"
source "$here/topology.sh"
TOOL="/usr/bin/python3 $here/net_tool.py"
[[ $(id -u) -eq 0 ]] || { echo "1..0 # SKIP needs root"; exit 77; }

work="$(mktemp -d "${TMPDIR:-/tmp}/passgate-vlan.XXXXXX")"
cleanup() { stop_passgate; topo_down; rm -rf "$work"; }
trap cleanup EXIT
n=0
failed=0
check() {
  local name="$1"
  shift
  n=$((n + 1))
  if "$@" >"$work/check-$n.log" 2>&1; then echo "ok $n - $name"; else
    echo "not ok $n - $name"
    sed 's/^/#   /' "$work/check-$n.log" | tail -15
    failed=$((failed + 1))
  fi
}

topo_up
# Subscriber 1 moves onto VLAN 100.
pg_ns pg-sub1 ip addr flush dev eth0
pg_ns pg-sub1 ip link add link eth0 name eth0.100 type vlan id 100
pg_ns pg-sub1 ip addr add "$PG_SUB1/24" dev eth0.100
pg_ns pg-sub1 ip link set eth0.100 up
pg_ns pg-sub1 ip route add default via 100.64.0.1
pg_no_offload pg-sub1 eth0.100
sed -e 's|    address: 100.64.0.1/24|    address: 100.64.0.1/24\n    vlan: 100|' "$repo/conf/demo.yaml" >"$work/vlan.yaml"
grep -q 'vlan: 100' "$work/vlan.yaml" || { echo "1..0 # could not write the VLAN configuration"; exit 1; }
start_passgate "$work/vlan.yaml" "$work/passgate.log" || exit 1
pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
sleep 0.3

check "ping from subscriber 1 on VLAN 100 through the NAT" pg_ns pg-sub1 ping -c 3 -i 0.2 -W 2 "$PG_SERVER"
t_udp() {
  pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 40001 | tee "$work/udp"
  grep -Eq '^seen 198\.51\.100\.1[0-3]:[0-9]+$' "$work/udp"
}
check "UDP from subscriber 1 on VLAN 100 answered through the NAT" t_udp
check "untagged subscriber 2 gets no answer" bash -c "! ip netns exec pg-sub2 ping -c 2 -i 0.2 -W 1 $PG_SERVER"
stop_passgate
check "untagged frames dropped and counted as vlan_mismatch" grep -Eq 'drop vlan_mismatch +[1-9]' "$work/passgate.log"
check "no mbuf leaked" grep -Eq '^mbufs: ([0-9]+) of \1 free$' "$work/passgate.log"
echo "1..$n"
[[ $failed -eq 0 ]]
