#!/usr/bin/env bash
# passgate with a net_memif outside port: DPDK's testpmd (memif client <->
# af_packet, io forwarding) carries its outside traffic to the router
# namespace, as a second DPDK process on the same host would. Subscribers
# ping and exchange UDP with the internet host through both.
# Prints TAP.   tests/e2e/memif_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
e2e_require_root
e2e_require dpdk-testpmd
e2e_start memif
sock="$work/memif.sock"
testpmd_pid=
e2e_stop_extras() {
  [[ -n "$testpmd_pid" ]] && kill -TERM "$testpmd_pid" 2>/dev/null && wait "$testpmd_pid" 2>/dev/null
}

topo_up
# passgate's outside is the memif server; its inside stays on af_packet.
sed -e "s|net_af_packet1,iface=pg-out|net_memif0,role=server,socket=$sock|" \
    -e 's|"--no-shconf"|"--no-shconf", "--file-prefix", "pg-memif"|' \
    "$repo/conf/demo.yaml" >"$work/memif.yaml"
ip netns exec pg-gw "$PASSGATE" --config "$work/memif.yaml" >"$work/passgate.log" 2>&1 &
PG_PID=$!
for _ in $(seq 1 50); do [[ -S "$sock" ]] && break; sleep 0.2; done
# testpmd: worker on lcore 0 (passgate's worker is on 1), main on 1.
ip netns exec pg-gw dpdk-testpmd -l 0,1 --main-lcore 1 --no-huge -m 256 --no-pci --no-shconf --file-prefix tp \
  --vdev="net_memif0,role=client,socket=$sock" --vdev=net_af_packet0,iface=pg-out \
  -- --total-num-mbufs=8192 --forward-mode=io --nb-cores=1 --auto-start --stats-period 3600 >"$work/testpmd.log" 2>&1 &
testpmd_pid=$!

up=1
for _ in $(seq 1 50); do
  if pg_ns pg-rtr ping -c1 -W1 198.51.100.1 >/dev/null 2>&1; then up=0; break; fi
  sleep 0.3
done
check "passgate answers through memif and testpmd" test $up -eq 0

pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
sleep 0.3
check "ping from subscriber 1 through the memif outside port" pg_ns pg-sub1 ping -c 3 -i 0.2 -W 2 "$PG_SERVER"
t_udp() {
  pg_ns pg-sub2 $TOOL udp-ask "$PG_SERVER" 9000 40002 | tee "$work/udp"
  grep -Eq '^seen 198\.51\.100\.1[0-3]:[0-9]+$' "$work/udp"
}
check "UDP from subscriber 2 answered, server saw a pool address" t_udp

stop_passgate
check "memif port counted traffic both ways" grep -Eq '^port outside: rx [1-9][0-9]* packets .* tx [1-9][0-9]* packets' "$work/passgate.log"
check "no mbuf leaked" grep -Eq '^mbufs: ([0-9]+) of \1 free$' "$work/passgate.log"
echo "1..$n"
[[ $failed -eq 0 ]]
