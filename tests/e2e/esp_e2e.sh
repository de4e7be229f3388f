#!/usr/bin/env bash
# ESP passthrough end to end: two subscribers behind ONE public address send
# raw ESP (scapy) to one server, their first packets within the same
# millisecond; the server answers each with its own SPI. Every client must
# receive only its own server SPI. Then the same with ESP disabled in the
# policy: ESP is dropped and counted, everything else still works.
# Prints TAP.   tests/e2e/esp_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
PEER="$PY $here/esp_peer.py"
e2e_require_root
e2e_start esp

# One public address for everybody: the case other NATs get wrong.
sed -e 's|public: \[198.51.100.10-198.51.100.13\]|public: [198.51.100.10]|' "$repo/conf/demo.yaml" >"$work/esp.yaml"
sed -e 's|  pools:|  passthrough: {esp: {enabled: false}}\n  pools:|' "$work/esp.yaml" >"$work/esp-off.yaml"

run_round() {  # run_round CONFIG TAG: ESP from both clients at once
  topo_up
  start_passgate "$1" "$work/passgate-$2.log" || return 1
  # Both subscribers resolve the gateway first, so the burst is not held up by ARP.
  pg_ns pg-sub1 ping -c1 -W1 100.64.0.1 >/dev/null
  pg_ns pg-sub2 ping -c1 -W1 100.64.0.1 >/dev/null
  ip netns exec pg-net $PEER server eth0 6 >/dev/null 2>&1 &
  ip netns exec pg-sub1 $PEER watch eth0 0x5e000001 5 >"$work/sub1-$2" 2>&1 &
  local w1=$!
  ip netns exec pg-sub2 $PEER watch eth0 0x5e000002 5 >"$work/sub2-$2" 2>&1 &
  local w2=$!
  sleep 1
  # Addressed to passgate's MAC: it drops frames for other MACs.
  local gw_mac
  gw_mac=$(ip -n pg-sub1 neigh show 100.64.0.1 | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2)
  ip netns exec pg-lan $PEER burst br0 3 "$gw_mac" "$PG_SUB1:0xa1000001" "$PG_SUB2:0xb1000002"
  wait $w1
  echo $? >"$work/sub1-$2.rc"
  wait $w2
  echo $? >"$work/sub2-$2.rc"
  pg_ns pg-sub1 ping -c 2 -i 0.2 -W 1 "$PG_SERVER" >"$work/ping-$2" 2>&1
  echo $? >"$work/ping-$2.rc"
  stop_passgate
  topo_down
}

shows() { cat "$1"; [[ "$(cat "$1.rc")" == 0 ]]; }
counter() { grep -Eq "^ +$1 +[1-9]" "$2" || { grep -v '^TELEMETRY' "$2"; return 1; }; }

run_round "$work/esp.yaml" on
check "client 1 receives only its own server SPI (0x5e000001)" shows "$work/sub1-on"
check "client 2, same public address, same millisecond, receives only its own (0x5e000002)" shows "$work/sub2-on"
check "both inbound SPIs were learned" grep -Eq '^ +esp_spis_learned +([2-9]|[1-9][0-9]+)$' "$work/passgate-on.log"
check "the second client's first SPI was held while the first learned" counter esp_held "$work/passgate-on.log"
check "no held packet timed out" bash -c "! grep -q esp_hold_timeout '$work/passgate-on.log'"

run_round "$work/esp-off.yaml" off
check "ESP disabled in the policy: nothing reaches client 1" bash -c "[[ \$(cat '$work/sub1-off.rc') != 0 ]]"
check "ESP disabled: dropped and counted as esp_disabled" counter 'drop esp_disabled' "$work/passgate-off.log"
check "ESP disabled: ping still works" shows "$work/ping-off"
echo "1..$n"
[[ $failed -eq 0 ]]
