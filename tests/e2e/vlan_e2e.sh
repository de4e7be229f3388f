#!/usr/bin/env bash
# 802.1Q on the inside port: subscriber 1 reaches passgate on VLAN 100, and
# its traffic crosses the NAT both ways; subscriber 2 stays untagged, so its
# frames are dropped and counted as vlan_mismatch.
# Prints TAP.   tests/e2e/vlan_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
e2e_require_root
e2e_start vlan

topo_up
# This kernel may have no 802.1Q support (CONFIG_VLAN_8021Q), so subscriber 1
# speaks VLAN 100 through scapy on its raw interface, and passgate knows its
# MAC statically (a tagged ARP request would reach no VLAN-aware stack).
sub1_mac=$(pg_ns pg-sub1 cat /sys/class/net/eth0/address)
gw_mac=$(pg_ns pg-gw cat /sys/class/net/pg-in/address)
sed -e "s|    address: 100.64.0.1/24|    address: 100.64.0.1/24\n    vlan: 100\n    neighbours: [{address: $PG_SUB1, mac: \"$sub1_mac\"}]|" \
  "$repo/conf/demo.yaml" >"$work/vlan.yaml"
grep -q 'vlan: 100' "$work/vlan.yaml" || { echo "1..0 # could not write the VLAN configuration"; exit 1; }
start_passgate "$work/vlan.yaml" "$work/passgate.log" || exit 1
pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
sleep 0.3

t_tagged() {
  pg_ns pg-sub1 $PY "$here/vlan_peer.py" eth0 100 "$PG_SUB1" "$gw_mac" "$PG_SERVER" 9000 40001 4 |
    tee "$work/tagged"
  grep -Eq '^seen 198\.51\.100\.1[0-3]:[0-9]+$' "$work/tagged"
}
check "UDP from subscriber 1 on VLAN 100 crosses the NAT; the answer comes back tagged" t_tagged
check "untagged subscriber 2 gets no answer" bash -c "! ip netns exec pg-sub2 ping -c 2 -i 0.2 -W 1 $PG_SERVER"
stop_passgate
check "untagged frames dropped and counted as vlan_mismatch" grep -Eq 'drop vlan_mismatch +[1-9]' "$work/passgate.log"
check "no mbuf leaked" grep -Eq '^mbufs: ([0-9]+) of \1 free$' "$work/passgate.log"
echo "1..$n"
[[ $failed -eq 0 ]]
