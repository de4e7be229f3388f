#!/usr/bin/env bash
# The gateway on other virtual devices than af_packet:
#   1. net_pcap on both sides: subscriber traffic read from a pcap, the
#      translated packets written to a pcap and checked with tshark;
#   2. net_ring as the outside port (a loopback ring: whatever passgate
#      sends comes back to it), proving transmit and receive on that PMD.
# Static neighbours stand in for ARP, which a file or a ring cannot answer.
# Prints TAP.   tests/e2e/pcap_ring_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
# Files and a ring, no namespaces.
E2E_NAMESPACES=0
e2e_start pcap

sent=$($PY "$here/make_pcap.py" "$work/in.pcap" "$work/empty.pcap")

write_config() {  # write_config FILE OUTSIDE_DEVICE
  cat >"$1" <<YAML
dataplane:
  eal: ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--log-level", "lib.eal:error"]
  mbufs: 8191
  neighbour: {table_size: 64, queue: 4}
ports:
  - name: inside
    device: "net_pcap0,rx_pcap=$work/in.pcap,tx_pcap=$work/inside-out.pcap"
    role: inside
    address: 100.64.0.1/24
    mac: "02:00:00:00:00:01"  # where make_pcap.py addresses its frames
    neighbours: [{address: 100.64.0.11, mac: "02:00:00:00:00:11"}, {address: 100.64.0.12, mac: "02:00:00:00:00:12"}]
  - name: outside
    device: "$2"
    role: outside
    address: 198.51.100.1/24
    gateway: 198.51.100.254
    # The ring loops frames back: the port owns its neighbour's MAC so that
    # they are for it (it drops frames for other MACs).
    mac: "02:00:00:00:00:fe"
    neighbours: [{address: 198.51.100.254, mac: "02:00:00:00:00:fe"}]
nat:
  max_sessions: 4096
  max_subscribers: 64
  random_seed: 7
  pools:
    - name: p
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.11]
YAML
}

# Runs passgate until it has been idle a moment (pcap has no end-of-file signal).
run_passgate() {  # run_passgate CONFIG LOG
  "$PASSGATE" --config "$1" >"$2" 2>&1 &
  local pid=$!
  sleep 3
  kill -TERM $pid 2>/dev/null
  wait $pid
}

# 1. pcap in, pcap out.
write_config "$work/pcap.yaml" "net_pcap1,rx_pcap=$work/empty.pcap,tx_pcap=$work/out.pcap"
run_passgate "$work/pcap.yaml" "$work/pcap.log"
rc=$?
report $rc "net_pcap: passgate ran and stopped cleanly on SIGTERM" "exit $rc"
out_count=$(tshark -r "$work/out.pcap" 2>/dev/null | wc -l)
[[ "$out_count" -eq "$sent" ]]; report $? "net_pcap: all $sent subscriber packets translated out" "$out_count written"
leaked=$(tshark -r "$work/out.pcap" -Y 'ip.addr==100.64.0.0/10' 2>/dev/null | wc -l)
pool=$(tshark -r "$work/out.pcap" -Y 'ip.src==198.51.100.10 || ip.src==198.51.100.11' 2>/dev/null | wc -l)
[[ "$leaked" -eq 0 && "$pool" -eq "$sent" ]]; report $? "net_pcap: every source is a pool address, no subscriber address" "pool $pool, leaked $leaked"
bad=$(tshark -r "$work/out.pcap" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE \
  -Y 'ip.checksum.status=="Bad" || udp.checksum.status=="Bad" || tcp.checksum.status=="Bad" || icmp.checksum.status=="Bad"' 2>/dev/null | wc -l)
[[ "$bad" -eq 0 ]]; report $? "net_pcap: every checksum valid" "$bad bad"
macs=$(tshark -r "$work/out.pcap" -T fields -e eth.dst 2>/dev/null | sort -u | tr '\n' ' ')
[[ "$macs" == "02:00:00:00:00:fe " ]]; report $? "net_pcap: frames addressed to the static gateway neighbour" "$macs"
grep -Eq '^mbufs: ([0-9]+) of \1 free$' "$work/pcap.log"; report $? "net_pcap: no mbuf leaked" "$(grep '^mbufs' "$work/pcap.log")"

# 2. net_ring outside: a loopback; what goes out comes back in with one of
# our pool addresses as its source, which never arrives from outside (RFC
# 1812 5.3.7): dropped and counted before the NAT.
write_config "$work/ring.yaml" "net_ring0"
run_passgate "$work/ring.yaml" "$work/ring.log"
report $? "net_ring: passgate ran and stopped cleanly"
tx=$(sed -nE 's/^port outside: rx ([0-9]+) packets.*tx ([0-9]+) packets.*/\2/p' "$work/ring.log")
rx=$(sed -nE 's/^port outside: rx ([0-9]+) packets.*/\1/p' "$work/ring.log")
[[ -n "$tx" && "$tx" -eq "$sent" && "$rx" -eq "$tx" ]]; report $? "net_ring: $sent packets sent on the ring came back" "tx $tx rx $rx"
grep -Eq "drop own_address_source +$sent$" "$work/ring.log"
report $? "net_ring: looped packets (our own source address) dropped and counted" \
  "$(grep -E 'drop' "$work/ring.log" | tr -s ' ' | tr '\n' ';')"

echo "1..$n"
[[ $failed -eq 0 ]]
