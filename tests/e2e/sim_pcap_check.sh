#!/usr/bin/env bash
# Runs passgate-sim and checks its captures with tshark, an independent
# dissector: on the outside no subscriber (100.64.0.0/10) address may appear,
# and every IPv4, TCP, UDP and ICMP checksum must verify. Used by the README's
# first command and as a meson test.
set -euo pipefail
sim="$1"
out="$(mktemp -d "${TMPDIR:-/tmp}/passgate-sim.XXXXXX")"
trap 'rm -rf "$out"' EXIT

"$sim" --out-dir "$out" "${@:2}"

command -v tshark >/dev/null || { echo "sim_pcap_check: tshark not installed" >&2; exit 1; }
tshark_q() { tshark -r "$1" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE \
  -Y "$2" 2>/dev/null | wc -l; }

leaked=$(tshark_q "$out/outside.pcap" 'ip.addr==100.64.0.0/10')
bad_out=$(tshark_q "$out/outside.pcap" 'ip.checksum.status=="Bad" || udp.checksum.status=="Bad" || tcp.checksum.status=="Bad" || icmp.checksum.status=="Bad"')
bad_in=$(tshark_q "$out/inside.pcap" 'ip.checksum.status=="Bad" || udp.checksum.status=="Bad" || tcp.checksum.status=="Bad" || icmp.checksum.status=="Bad"')
outside_total=$(tshark -r "$out/outside.pcap" 2>/dev/null | wc -l)
echo "tshark: outside.pcap $outside_total packets, $leaked with a subscriber address, $bad_out with a bad checksum; inside.pcap $bad_in with a bad checksum"
[[ "$outside_total" -gt 0 && "$leaked" -eq 0 && "$bad_out" -eq 0 && "$bad_in" -eq 0 ]]
