#!/usr/bin/env bash
# The performance harness's one entry point (issue 6): builds passgate and
# passgate-gen in build-bench/, then runs the throughput scenarios with
# bench/run_perf.py and writes JSON, a Markdown table and a plot to
# bench/results/. Needs root (namespaces, hugepages, nftables).
#
#   sudo bench/run_perf.sh                 # every scenario, median of 3 runs (about 30 min on 2 vCPU)
#   sudo bench/run_perf.sh --quick         # forward, 1K, 1M, passgate and kernel on veth (under 3 min)
#   sudo bench/run_perf.sh nat-1m veth-kernel --reps 5
#   sudo bench/run_perf.sh --help          # every option and scenario
#
# Scenarios and how to read the results: bench/README.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[[ $(id -u) -eq 0 ]] || { echo "run_perf.sh: needs root" >&2; exit 1; }
bash scripts/install-deps.sh >/dev/null
# The plot needs Debian's matplotlib; the Debian interpreter has it even when
# another python3 comes first on PATH.
py=/usr/bin/python3
dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q "install ok installed" ||
  apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null ||
  echo "run_perf.sh: python3-matplotlib not installed: no plot" >&2
[[ -f build-bench/build.ninja ]] ||
  meson setup build-bench -Dbuildtype=release -Dtests=false -Dbenchmarks=false >/dev/null
ninja -C build-bench app/passgate bench/passgate-gen >/dev/null
exec "$py" bench/run_perf.py --build "$repo/build-bench" "$@"
