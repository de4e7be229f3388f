#!/usr/bin/env bash
# Runs the NAT engine microbenchmarks REPS times (default 5) and writes the
# raw JSON and a Markdown table of medians to bench/results/. The machine is
# shared and noisy: compare figures only within one run.
#   bench/run_microbench.sh [REPS]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
reps="${1:-5}"
bash scripts/install-deps.sh >/dev/null
[[ -f build/build.ninja ]] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build bench/passgate-nat-bench >/dev/null
mkdir -p bench/results
stamp="$(date -u +%Y-%m-%d)"
json="bench/results/microbench-$stamp.json"
./build/bench/passgate-nat-bench --benchmark_repetitions="$reps" --benchmark_min_time=1 \
  --benchmark_out="$json" --benchmark_out_format=json >/dev/null
python3 - "$json" "$reps" <<'PY' | tee "bench/results/microbench-$stamp.md"
import json, sys, statistics, platform, os
data = json.load(open(sys.argv[1]))
runs = {}
for b in data["benchmarks"]:
    if b.get("run_type") != "iteration":
        continue
    runs.setdefault(b["run_name"], []).append(b)
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
print(f"NAT engine microbenchmarks, {data['context']['date']}, {cpu}, {os.cpu_count()} vCPU, THP: {thp}")
print(f"median of {sys.argv[2]} runs, one core, no DPDK (packets copied from memory into a 32-packet burst)\n")
print("| benchmark | sessions | ns per packet | Mpps | bytes per session |")
print("|---|---:|---:|---:|---:|")
for name, rs in runs.items():
    rate = statistics.median(r.get("items_per_second", 0) for r in rs) / 1e6
    ns = 1e3 / rate if rate else 0.0
    bps = statistics.median(r.get("bytes_per_session", 0) for r in rs)
    sessions = int(rs[0].get("sessions", 0))
    label = name.replace("BM_", "").replace("<Direction::", " ").replace(">", "").split("/")[0]
    print(f"| {label} | {sessions or '-'} | {ns:.1f} | {rate:.2f} | {bps:.0f} |" if bps else
          f"| {label} | {sessions or '-'} | {ns:.1f} | {rate:.2f} | - |")
PY
