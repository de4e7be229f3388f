#!/usr/bin/env bash
# The README's first command: installs what is missing, builds passgate, and
# runs its main job. Until the DPDK gateway binary lands, that is
# passgate-sim: the real NAT engine translating generated traffic of several
# subscribers (UDP, TCP, ping, hairpinning, an ICMP error, a port scan), with
# the result written to pcaps and checked by tshark.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build app/passgate-sim >/dev/null
bash tests/e2e/sim_pcap_check.sh build/app/passgate-sim "$@"
