#!/usr/bin/env python3
"""passgate performance harness: runs the scenarios of bench/README.md with
passgate-gen against passgate (memif and af_packet/veth) and against the
Linux kernel's NAT (nftables masquerade), and writes JSON, a Markdown table
and a plot to bench/results/.

Started by bench/run_perf.sh (which builds first); run as root.

    run_perf.py --build DIR [--quick] [--reps N] [--out DIR] [scenario ...]

Theory of operation
- Every scenario starts its DUT, runs passgate-gen once per repetition (each
  run: warm-up, then an RFC 2544 section 26.1 binary search for the
  zero-loss rate and the rate at 0.5 % loss), stops the DUT and keeps the
  generator's JSON. Figures are medians over the repetitions.
- CPUs: the DUT's packet work runs on CPU 1 (passgate's worker lcore; for
  the kernel, the threaded NAPI poll of its veth ends), the generator on
  CPU 0. On veth the generator's own veth ends get threaded NAPI pinned to
  CPU 0 too, so each side pays for its own receive and the DUT's figure is
  one core's worth: "per core" is then the figure itself. The -w2 scenarios
  run two passgate workers (see WORKER_CPUS for where) and record
  passgate's handoff counters (telemetry /passgate/steering) per run.
- Nothing here asserts a target: the table says met or not met, with the
  figures (benchmarks report, tests assert).
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Addresses: the RFC 2544 appendix C benchmarking range 198.18.0.0/15 for
# the outside link, the public pool and the servers; RFC 6598 shared space
# for subscribers, reached through a router on the inside link.
GEN_IN, DUT_IN = "10.0.0.2", "10.0.0.1"
GEN_OUT, DUT_OUT = "198.18.0.2", "198.18.0.1"
POOL = "198.18.4.0/22"  # 1024 public addresses
SUBSCRIBER_BASE = "100.64.0.1"
SERVER_BASE = "198.19.0.0"

DUT_CPU, GEN_CPU = 1, 0

# memif rings of 2^13 slots (DPDK's default is 2^10): on a shared 2-vCPU
# machine the DUT's core is taken away for milliseconds at a time, and a
# 1024-slot ring overflows in 1 ms at 1 Mpps; the loss would measure the
# neighbours' builds, not the DUT. A NIC's receive ring is sized the same way.
MEMIF_RING = ",rsize=13"

# name: (harness, dut, subscribers, flows per subscriber, mode, mix, what it measures)
SCENARIOS = {
    "forward": ("memif", "forward", 64, 16, "search", "udp",
                "passgate with dataplane.mode: forward (no NAT): the I/O ceiling of memif on this machine"),
    "nat-1k": ("memif", "passgate", 64, 16, "search", "udp", "established UDP flows, 1,024 sessions"),
    "nat-64k": ("memif", "passgate", 4096, 16, "search", "udp", "established UDP flows, 65,536 sessions"),
    "nat-1m": ("memif", "passgate", 65536, 16, "search", "udp", "established UDP flows, 1,048,576 sessions"),
    "nat-4m": ("memif", "passgate", 65536, 64, "search", "udp", "established UDP flows, 4,194,304 sessions"),
    "nat-16m": ("memif", "passgate", 65536, 256, "search", "udp", "established UDP flows, 16,777,216 sessions"),
    "cps": ("memif", "passgate", 65536, 1, "cps", "udp",
            "new sessions per second: every packet a flow never seen, answered by the server"),
    "vpn": ("memif", "passgate", 4096, 4, "search", "esp:40,gre:20,natt:40",
            "VPN mix, 4,096 clients x 4 tunnels: ESP (SPI learning), GRE v0, NAT-T (UDP 4500)"),
    "veth-forward": ("veth", "forward", 64, 16, "search", "udp",
                     "passgate forward mode on af_packet/veth: the I/O ceiling of that harness"),
    "veth-passgate": ("veth", "passgate", 64, 16, "search", "udp",
                      "passgate NAT on af_packet/veth, 1,024 sessions (like-for-like with the kernel)"),
    "veth-kernel": ("veth", "kernel", 64, 16, "search", "udp",
                    "Linux nftables masquerade between two veths, 1,024 sessions, same generator"),
    "forward-w2": ("memif", "forward", 64, 16, "search", "udp",
                   "forward mode, 2 workers, 2 queues per port: the memif ceiling with two workers"),
    "nat-1k-w2": ("memif", "passgate", 64, 16, "search", "udp",
                  "NAT, 1,024 sessions, 2 workers, 1 receive queue per port: worker 0 receives everything "
                  "and hands the other worker's packets over (steering: handoff)"),
    "nat-1k-w2q": ("memif", "passgate", 64, 16, "search", "udp",
                   "NAT, 1,024 sessions, 2 workers, 2 receive queues per port, the generator sending each "
                   "subscriber to its owner's queue (what RSS with passgate's keys does): no handoff"),
}
# Several workers (issue 7). memif has no RSS, so passgate steers by handoff
# there: with rx_queues 1 worker 0 receives everything; with rx_queues 2
# passgate-gen plays the RSS NIC (--tx-queues: a subscriber's packets go to
# the queue its answers came back on, an answer to the queue its packet came
# from). The machine has 2 CPUs, so something shares one: by default both
# workers share the DUT's CPU 1 (the kernel time-slices them), so that the
# generator keeps CPU 0 to itself and 1 and 2 workers get the same CPU time:
# the comparison shows what the second worker and the handoffs cost, not how
# two cores scale. --second-worker-cpu 0 puts the second worker on the
# generator's CPU instead (the generator then offers about half as much).
WORKER_CPUS = {1: [DUT_CPU], 2: [DUT_CPU, DUT_CPU]}
MULTI = {  # scenario: (workers, receive queues per port)
    "forward-w2": (2, 2),
    "nat-1k-w2": (2, 1),
    "nat-1k-w2q": (2, 2),
}
DEFAULT = ["forward", "nat-1k", "nat-64k", "nat-1m", "nat-4m", "nat-16m", "cps", "vpn",
           "forward-w2", "nat-1k-w2", "nat-1k-w2q",
           "veth-forward", "veth-passgate", "veth-kernel"]
QUICK = ["forward", "nat-1k", "nat-1m", "veth-passgate", "veth-kernel"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=True, check=check, text=True, capture_output=True, **kw)


def pow2_at_least(n):
    p = 1
    while p < n:
        p *= 2
    return p


# ---------------------------------------------------------------- machine

def passgate_commit(build):
    """The commit passgate was built from: the source tree of the build
    directory (meson records it), marked -dirty when lib/ or app/ differ."""
    src = REPO
    info = os.path.join(build, "meson-info", "meson-info.json")
    with contextlib.suppress(OSError, ValueError, KeyError):
        with open(info) as f:
            src = json.load(f)["directories"]["source"]
    commit = sh(f"git -C {src} rev-parse --short HEAD", check=False).stdout.strip()
    if not commit:  # an exported tree (git archive) has no .git: say where it came from
        marker = os.path.join(src, ".passgate-commit")
        commit = open(marker).read().strip() if os.path.exists(marker) else "unknown"
    elif sh(f"git -C {src} status --porcelain -- lib app", check=False).stdout.strip():
        commit += "-dirty"
    return commit


def machine(hugepages, build):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dpdk = sh("pkg-config --modversion libdpdk", check=False).stdout.strip()
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        thp = f.read().strip()
    virt = (re.search(r"Hypervisor vendor:\s*(\S+)", sh("lscpu", check=False).stdout) or [None, "none"])[1] + " guest"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cpus": os.cpu_count(), "virtualisation": virt,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(), "dpdk": dpdk, "hugepages": hugepages, "thp": thp,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "passgate_commit": passgate_commit(build),
    }


def cpu_ticks():
    """Per-CPU (busy, total) jiffies, to tell how loaded the DUT's core was."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + v[4]
                out[int(m.group(1))] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


# ---------------------------------------------------------------- DUT configs

def eal_args(hugepages, prefix):
    mem = ["--in-memory"] if hugepages else ["--no-huge", "-m", "1024", "--no-shconf"]
    return mem + ["--no-pci", "--file-prefix", prefix, "--log-level", "lib.eal:error",
                  "--log-level", "pmd.net.memif:error", "--log-level", "pmd.net.af_packet:error"]


def passgate_config(path, mode, inside_dev, outside_dev, subscribers, flows, hugepages, cps_budget=0,
                    workers=1, rx_queues=1):
    sessions = max(subscribers * flows, cps_budget)
    max_sessions = max(65536, pow2_at_least(int(sessions * 1.25)))
    # Ports per subscriber: enough blocks for its flows (or its share of new
    # connections), never more than RFC 6888's per-subscriber limit allows.
    per_sub = max(flows, -(-cps_budget // subscribers)) if cps_budget else flows
    block = 256
    blocks = min(64, max(1, -(-per_sub * 2 // block)))
    # One worker keeps the pool these figures were always taken with; more
    # workers need the handoff rings covered too (lib/config/mbuf_budget.cpp
    # refuses a pool that cannot hold what the configuration can queue).
    cfg = f"""# generated by bench/run_perf.py
dataplane:
  eal: {json.dumps(eal_args(hugepages, 'pb-dut'))}
  workers: [{", ".join(str(1 + w) for w in range(workers))}]
  mbufs: {16383 if workers == 1 else 'auto'}
  burst: 32
  mode: {mode}
  neighbour: {{reachable_s: 86400, table_size: 1024}}
ports:
  - {{name: inside, device: "{inside_dev}", role: inside, address: {DUT_IN}/24,
     routes: [{{prefix: 100.64.0.0/10, via: {GEN_IN}}}], rx_descriptors: 1024, tx_descriptors: 1024,
     rx_queues: {rx_queues}, tx_queues: {workers}}}
  - {{name: outside, device: "{outside_dev}", role: outside, address: {DUT_OUT}/24, gateway: {GEN_OUT},
     rx_descriptors: 1024, tx_descriptors: 1024, rx_queues: {rx_queues}, tx_queues: {workers}}}
nat:
  max_sessions: {max_sessions}
  max_subscribers: {max(1024, pow2_at_least(subscribers))}
  random_seed: 2544
  # The generator brings up to 65,536 subscribers at once; the default
  # new_subscribers_per_second (2,000, issue 11's bound on a host cycling
  # through its prefix) would let them in over half a minute and drop the
  # rest as subscriber_rate_limited, so the benchmark measures translation,
  # not that bound.
  limits: {{new_subscribers_per_second: 16777216}}
  passthrough:
    esp: {{max_sas: {max(65536, pow2_at_least(subscribers * flows))}}}
    gre: {{max_tunnels: {max(4096, min(1 << 20, pow2_at_least(subscribers * flows)))}}}
  pools:
    - name: bench
      subscribers: [100.64.0.0/10]
      public: [{POOL}]
      block_size: {block}
      max_blocks_per_subscriber: {blocks}
      max_sessions_per_subscriber: {max(4096, per_sub * 2)}
"""
    with open(path, "w") as f:
        f.write(cfg)
    return max_sessions


# ---------------------------------------------------------------- harnesses

class Harness:
    """Starts and stops one DUT; tells the generator which devices to open."""

    def __init__(self, work, build, hugepages, nice=0, workers=1, rx_queues=1):
        self.work, self.build, self.hugepages, self.nice = work, build, hugepages, nice
        self.workers, self.rx_queues = workers, rx_queues
        self.proc = None
        self.log_path = None

    def start_passgate(self, cfg, netns=None):
        self.log_path = os.path.join(self.work, "passgate.log")
        # lcore 0 (the control loop, asleep) on the generator's CPU; worker
        # lcores 1..W on WORKER_CPUS[W].
        lcores = ",".join([f"0@{GEN_CPU}"] + [f"{1 + w}@{c}" for w, c in enumerate(WORKER_CPUS[self.workers])])
        cmd = ["nice", "-n", str(self.nice), os.path.join(self.build, "app", "passgate"), "--config", cfg,
               "--", "--lcores", lcores]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 120  # 16M sessions take a while to allocate
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("passgate exited early:\n" + open(self.log_path).read())
            if "running with" in open(self.log_path).read():
                return
            time.sleep(0.2)
        raise RuntimeError("passgate did not start:\n" + open(self.log_path).read())

    def steering(self):
        """passgate's /passgate/steering telemetry (workers, mode per port,
        handoffs per port and worker), read from DPDK's telemetry socket of
        the pb-dut file prefix; None when it cannot be read."""
        import socket
        path = "/var/run/dpdk/pb-dut/dpdk_telemetry.v2"
        for _ in range(3):  # the control loop may be busy (one read in ~30 failed in the first full run)
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as so:
                    so.settimeout(5)
                    so.connect(path)
                    so.recv(4096)  # greeting
                    so.send(b"/passgate/steering")
                    return json.loads(so.recv(65536).decode())["/passgate/steering"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.5)
        return None

    def stop_passgate(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def counters(self):
        """The drop reasons passgate printed on stop (what lost packets went to)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return {}
        text = open(self.log_path).read()
        out = {}
        for m in re.finditer(r"^(port \w+: .*|mbufs: .*|nat .*drop.*|.*drops?:.*)$", text, re.M):
            out.setdefault("lines", []).append(m.group(1))
        return out


class MemifHarness(Harness):
    def __init__(self, work, build, hugepages, nice=0, workers=1, rx_queues=1):
        super().__init__(work, build, hugepages, nice, workers, rx_queues)
        self.dir = tempfile.mkdtemp(prefix="pb-memif-", dir="/tmp")

    def devices(self):
        # Abstract sockets (DPDK's default) keyed by our private path.
        return (f"net_memif0,role=client,socket={self.dir}/in.sock{MEMIF_RING}",
                f"net_memif1,role=client,socket={self.dir}/out.sock{MEMIF_RING}")

    def start(self, dut, subscribers, flows, cps_budget=0):
        cfg = os.path.join(self.work, "passgate.yaml")
        passgate_config(cfg, "forward" if dut == "forward" else "nat",
                        f"net_memif0,role=server,socket={self.dir}/in.sock{MEMIF_RING}",
                        f"net_memif1,role=server,socket={self.dir}/out.sock{MEMIF_RING}",
                        subscribers, flows, self.hugepages, cps_budget, self.workers, self.rx_queues)
        self.start_passgate(cfg)

    def stop(self):
        self.stop_passgate()

    def gen_prefix(self):
        return []

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class VethHarness(Harness):
    """pb-gen (generator, af_packet on pb-gi/pb-go) <-veth-> pb-dut (the kernel
    NAT, or passgate with af_packet on pb-di/pb-do)."""
    NS_GEN, NS_DUT = "pb-gen", "pb-dut"
    AF_OPTS = "qpairs=1,blocksz=4096,framesz=2048,framecnt=4096"

    def devices(self):
        return (f"net_af_packet0,iface=pb-gi,{self.AF_OPTS}", f"net_af_packet1,iface=pb-go,{self.AF_OPTS}")

    def gen_prefix(self):
        return ["ip", "netns", "exec", self.NS_GEN]

    def _napi(self, ns, dev, cpu):
        # GRO on gives veth its own NAPI poll; threaded NAPI moves that poll
        # to a kernel thread we can pin, so receive work lands on the core
        # of the side that receives.
        sh(f"ip netns exec {ns} ethtool -K {dev} gro on tx off rx off", check=False)
        sh(f"ip netns exec {ns} sh -c 'echo 1 > /sys/class/net/{dev}/threaded'", check=False)
        time.sleep(0.1)
        for line in sh("ps -eo pid,comm", check=False).stdout.splitlines():
            pid, _, comm = line.strip().partition(" ")
            if comm.strip().startswith(f"napi/{dev}-"):
                sh(f"taskset -pc {cpu} {pid}", check=False)

    def up(self):
        self.down()
        for ns in (self.NS_GEN, self.NS_DUT):
            sh(f"ip netns add {ns}")
            sh(f"ip netns exec {ns} ip link set lo up")
            sh(f"ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
        sh(f"ip link add pb-gi netns {self.NS_GEN} type veth peer name pb-di netns {self.NS_DUT}")
        sh(f"ip link add pb-go netns {self.NS_GEN} type veth peer name pb-do netns {self.NS_DUT}")
        for ns, dev, cpu in ((self.NS_GEN, "pb-gi", GEN_CPU), (self.NS_GEN, "pb-go", GEN_CPU),
                             (self.NS_DUT, "pb-di", DUT_CPU), (self.NS_DUT, "pb-do", DUT_CPU)):
            sh(f"ip netns exec {ns} ip link set {dev} up")
            self._napi(ns, dev, cpu)

    def down(self):
        for ns in (self.NS_GEN, self.NS_DUT):
            pids = sh(f"ip netns pids {ns}", check=False).stdout.split()
            for pid in pids:
                sh(f"kill -TERM {pid}", check=False)
            sh(f"ip netns del {ns}", check=False)

    def start(self, dut, subscribers, flows, cps_budget=0):
        self.up()
        self.dut = dut
        if dut == "kernel":
            ns = self.NS_DUT
            sh(f"ip netns exec {ns} ip addr add {DUT_IN}/24 dev pb-di")
            sh(f"ip netns exec {ns} ip addr add {DUT_OUT}/24 dev pb-do")
            sh(f"ip netns exec {ns} ip route add 100.64.0.0/10 via {GEN_IN}")
            sh(f"ip netns exec {ns} ip route add default via {GEN_OUT}")
            sh(f"ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1")
            rules = """
table ip pb_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "pb-do" masquerade
  }
}
"""
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True)
        else:
            cfg = os.path.join(self.work, "passgate.yaml")
            passgate_config(cfg, "forward" if dut == "forward" else "nat",
                            f"net_af_packet0,iface=pb-di,{self.AF_OPTS}", f"net_af_packet1,iface=pb-do,{self.AF_OPTS}",
                            subscribers, flows, self.hugepages, cps_budget)
            self.start_passgate(cfg, netns=self.NS_DUT)

    def stop(self):
        self.stop_passgate()
        if getattr(self, "dut", None) == "kernel":
            ct = sh(f"ip netns exec {self.NS_DUT} conntrack -C", check=False).stdout.strip()
            self.kernel_conntrack = ct
        self.down()

    def cleanup(self):
        self.down()


# ---------------------------------------------------------------- one scenario

def run_generator(args, harness, name, sc, rep, hugepages, cps_budget):
    _, dut, subs, flows, mode, mix, _ = sc
    inside, outside = harness.devices()
    out = os.path.join(args.work, f"{name}-{rep}.json")
    q = args.quick
    cmd = harness.gen_prefix() + [
        "nice", "-n", str(args.nice), "taskset", "-c", str(GEN_CPU),
        os.path.join(args.build, "bench", "passgate-gen"),
        "--inside", inside, "--outside", outside, "--label", f"{name} rep {rep}",
        "--gen-inside-ip", GEN_IN, "--dut-inside-ip", DUT_IN, "--gen-outside-ip", GEN_OUT, "--dut-outside-ip", DUT_OUT,
        "--subscribers", str(subs), "--flows", str(flows), "--subscriber-base", SUBSCRIBER_BASE,
        "--server-base", SERVER_BASE, "--servers", "65536", "--mix", mix, "--frame-size", str(args.frame_size),
        # cps trials are 1 s at most: each one spends rate x duration sessions of the DUT's table.
        "--mode", mode, "--duration", str(min(args.trial, 1.0) if mode == "cps" else args.trial),
        "--drain", str(args.drain), "--settle", str(args.settle),
        "--precision", str(args.precision), "--max-trials", str(6 if q else args.max_trials),
        # veth drops a burst beyond its 256-packet ring: open sessions gently there.
        "--warmup-rate", str(args.warmup_rate if isinstance(harness, MemifHarness) else min(args.warmup_rate, 50000)),
        "--warmup-passes", "5", "--json", out,
    ]
    if mode == "cps":
        cmd += ["--cps-budget", str(cps_budget)]
    if harness.workers > 1:  # our receive queues are its workers' transmit queues, and the reverse
        cmd += ["--rx-queues", str(harness.workers), "--tx-queues", str(harness.rx_queues)]
    cmd += ["--", "-l", str(GEN_CPU)] + eal_args(hugepages, f"pb-gen{rep}")
    log(f"{name} rep {rep}: {' '.join(cmd[-30:-len(eal_args(hugepages, 'x')) - 3])} ...")
    before = cpu_ticks()
    t0 = time.time()
    p = subprocess.run(cmd, text=True, capture_output=True, timeout=1800)
    elapsed = time.time() - t0
    after = cpu_ticks()
    for line in p.stderr.splitlines():
        if line.startswith("passgate-gen:"):
            log("  " + line)
    if p.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"passgate-gen failed ({p.returncode}):\n{p.stderr[-3000:]}")
    with open(out) as f:
        result = json.load(f)
    result["wall_seconds"] = round(elapsed, 1)
    result["cpu_busy_percent"] = {
        str(c): round(100.0 * (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]), 1) for c in after}
    return result


def dut_rx_packets(lines):
    """Packets passgate received on its ports, from the counters it printed on stop."""
    return sum(int(m.group(1)) for m in (re.match(r"port \w+: rx (\d+) packets", x) for x in lines) if m)


def dut_clocks_per_packet(text):
    """passgate's clocks per packet over the whole run (every stage of its
    runtime accounting but idle, over the packets its ports received: warm-up
    and every trial), from the `runtime:` line it prints on stop; None for the
    kernel or an older passgate."""
    m = re.search(r"^runtime: ([\d.]+) clocks per packet", text, re.M)
    return float(m.group(1)) if m else None


def run_scenario(args, name, hugepages):
    sc = SCENARIOS[name]
    harness_kind, dut, subs, flows, mode, mix, what = sc
    workers, rx_queues = MULTI.get(name, (1, 1))
    harness = (MemifHarness if harness_kind == "memif" else VethHarness)(args.work, args.build, hugepages, args.nice,
                                                                          workers, rx_queues)
    cps_budget = 0
    if mode == "cps":
        cps_budget = 8 * 1024 * 1024 if args.quick else 24 * 1024 * 1024
    reps = []
    try:
        # Each repetition gets a fresh DUT: independent runs for the median.
        for rep in range(1, args.reps + 1):
            harness.start(dut, subs, flows, cps_budget)
            result = None
            steering = None
            try:
                result = run_generator(args, harness, name, sc, rep, hugepages, cps_budget)
                if workers > 1:
                    steering = harness.steering()
            finally:
                harness.stop()
            if steering is not None:
                result["dut_steering"] = steering
            # passgate prints its counters on stop: keep them with the run,
            # they say where any lost packet went.
            if harness.log_path and os.path.exists(harness.log_path):
                text = open(harness.log_path).read()
                result["dut_counters"] = text.splitlines()[-60:]
                result["dut_clocks_per_packet"] = dut_clocks_per_packet(text)
            reps.append(result)
    finally:
        harness.cleanup()
    ndr = [r["result"]["ndr_pps"] for r in reps]
    pdr = [r["result"]["pdr_pps"] for r in reps]
    lat = [r["result"]["ndr_trial"]["outbound"]["latency_us"] for r in reps if r["result"].get("ndr_trial")]
    # Maximum receive rate (FD.io CSIT's MRR): what the DUT forwarded inside
    # to outside in the search's first trial, offered as fast as possible.
    mrr = [r["trials"][0]["outbound"]["received"] / r["trials"][0]["seconds"] for r in reps
           if r["trials"] and r["trials"][0]["requested_pps"] == 0]
    cpp = [r["dut_clocks_per_packet"] for r in reps if r.get("dut_clocks_per_packet") is not None]
    summary = {
        "scenario": name, "what": what, "harness": harness_kind, "dut": dut, "sessions": subs * flows,
        "subscribers": subs, "flows_per_subscriber": flows, "mix": mix, "mode": mode,
        "workers": workers, "rx_queues": rx_queues,
        "worker_cpus": WORKER_CPUS[workers] if harness_kind == "memif" else [DUT_CPU],
        "ndr_pps_median": statistics.median(ndr) if ndr else 0,
        "pdr_pps_median": statistics.median(pdr) if pdr else 0,
        "ndr_pps_runs": ndr, "pdr_pps_runs": pdr,
        "mrr_pps_median": statistics.median(mrr) if mrr else 0, "mrr_pps_runs": mrr,
        "clocks_per_packet_median": statistics.median(cpp) if cpp else None, "clocks_per_packet_runs": cpp,
        "generator_limited": any(r["result"].get("generator_limited") for r in reps),
        "latency_p50_us_median": statistics.median(x["p50"] for x in lat) if lat else None,
        "latency_p99_us_median": statistics.median(x["p99"] for x in lat) if lat else None,
        "warmup": [r.get("warmup") for r in reps],
        "public_addresses_seen": reps[0].get("public_addresses_seen", []) if reps else [],
        "runs": reps,
    }
    if workers > 1:
        # Handoffs over the whole run (warm-up and every trial), against the
        # packets passgate received: how much of the traffic crossed workers.
        st = [r.get("dut_steering") for r in reps]
        summary["handoffs"] = [
            None if s is None else {
                "steering": {k[5:]: v for k, v in s.items() if k.startswith("mode_")},
                "handed_over": sum(v for k, v in s.items() if k.startswith("worker") and k.endswith("_handoff_out")),
                "per_worker_out": [s.get(f"worker{w}_handoff_out") for w in range(workers)],
                "per_worker_in": [s.get(f"worker{w}_handoff_in") for w in range(workers)],
                "dut_rx": dut_rx_packets(r.get("dut_counters", [])),
                "ring_full_drops": sum(int(m.group(1)) for m in (re.match(r"\s*drop handoff_ring_full\s+(\d+)", x)
                                                                 for x in r.get("dut_counters", [])) if m),
            } for s, r in zip(st, reps)]
    if getattr(harness, "kernel_conntrack", None):
        summary["kernel_conntrack_entries"] = harness.kernel_conntrack
    return summary


# ---------------------------------------------------------------- report

def fmt_mpps(pps):
    return f"{pps / 1e6:.3f}"


def fmt_cpp(clocks):
    return "-" if clocks is None else f"{clocks:.0f}"


def evaluate_targets(by):
    """The issue's targets, reported against the medians (never asserted)."""
    t = []

    def ratio(a, b):
        return a / b if b else None

    def row(name, target, value_text, ok):
        t.append({"target": name, "wanted": target, "measured": value_text,
                  "met": None if ok is None else bool(ok)})

    for key in ("ndr_pps_median", "pdr_pps_median", "mrr_pps_median"):
        label = key[:3].upper()
        if "nat-1m" in by and "forward" in by:
            r = ratio(by["nat-1m"][key], by["forward"][key])
            row(f"1M sessions vs forwarding ceiling ({label})", ">= 80 %",
                f"{fmt_mpps(by['nat-1m'][key])} / {fmt_mpps(by['forward'][key])} Mpps = {r * 100:.0f} %" if r else "n/a",
                r is not None and r >= 0.8)
        if "nat-16m" in by and "nat-1k" in by:
            r = ratio(by["nat-16m"][key], by["nat-1k"][key])
            row(f"16M sessions vs 1K sessions ({label})", ">= 70 %",
                f"{fmt_mpps(by['nat-16m'][key])} / {fmt_mpps(by['nat-1k'][key])} Mpps = {r * 100:.0f} %" if r else "n/a",
                r is not None and r >= 0.7)
        if "cps" in by:
            v = by["cps"][key]
            row(f"new sessions per second ({label})", "> 2 M/s", f"{v / 1e6:.3f} M/s", v > 2e6)
        if "veth-passgate" in by and "veth-kernel" in by:
            r = ratio(by["veth-passgate"][key], by["veth-kernel"][key])
            row(f"passgate vs Linux nftables NAT, one core each, af_packet/veth ({label})", ">= 10x",
                f"{fmt_mpps(by['veth-passgate'][key])} / {fmt_mpps(by['veth-kernel'][key])} Mpps = {r:.1f}x" if r else "n/a",
                r is not None and r >= 10)
    return t


def markdown(doc):
    m = doc["machine"]
    lines = [
        f"# passgate throughput, {m['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} vCPU ({m['virtualisation']}), {m['memory_gib']} GiB, kernel {m['kernel']}, "
        f"DPDK {m['dpdk']}, hugepages: {'yes (2 MiB, --in-memory)' if m['hugepages'] else 'no (--no-huge)'}, "
        f"THP {m['thp']}, load average at start {' '.join(m['loadavg_start'])}, passgate {m['passgate_commit']}.",
        "",
        f"Generator: passgate-gen on CPU {GEN_CPU}; DUT on CPU {DUT_CPU} (one passgate worker; for the kernel, "
        f"the threaded NAPI polls of its veth ends; the -w2 scenarios run two workers, on the CPUs their table says). {doc['settings']['frame_size']}-byte frames, both directions "
        f"(every packet answered by the outside), trials of {doc['settings']['trial']} s, "
        f"{doc['settings']['drain']} s drain, {doc['settings']['settle']} s settle, median of "
        f"{doc['settings']['reps']} run(s) per scenario. Rates are packets per second offered inside to outside; "
        "the DUT forwarded the same again outside to inside (the answers), so its total is twice the figure.",
        "",
        "Clocks per packet: passgate's runtime accounting (`passgatectl runtime`) over the whole run, warm-up and "
        "every trial, all stages but idle, over the packets its ports received (both directions); the kernel has none.",
        "",
        "| scenario | harness | sessions | NDR Mpps (zero loss) | PDR Mpps (0.5 % loss) | MRR Mpps (max offered) | clocks / packet | runs (NDR) | latency p50 / p99 at NDR, us | what it measures |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for s in doc["scenarios"]:
        lat = (f"{s['latency_p50_us_median']:.0f} / {s['latency_p99_us_median']:.0f}"
               if s.get("latency_p50_us_median") is not None else "-")
        unit = " (new sessions/s)" if s["mode"] == "cps" else ""
        gl = " (generator-limited)" if s["generator_limited"] else ""
        lines.append(
            f"| {s['scenario']} | {s['harness']} | {s['sessions'] if s['mode'] != 'cps' else 'new'} | "
            f"{fmt_mpps(s['ndr_pps_median'])}{gl} | {fmt_mpps(s['pdr_pps_median'])} | {fmt_mpps(s['mrr_pps_median'])} | "
            f"{fmt_cpp(s.get('clocks_per_packet_median'))} | {', '.join(fmt_mpps(x) for x in s['ndr_pps_runs'])} | {lat} | {s['what']}{unit} |")
    multi = [s for s in doc["scenarios"] if s.get("workers", 1) > 1]
    if multi:
        lines += ["", "## Several workers", "",
                  "memif has no RSS: passgate reports steering `handoff` on both ports. With 1 receive queue worker 0 "
                  "receives everything and hands the other worker's packets over its ring; with 2, passgate-gen sends "
                  "each subscriber to its owner's queue (learned from the answers, as RSS with passgate's keys would), "
                  "so the workers receive their own. Handoffs count the whole run (warm-up and every trial) against "
                  "the packets passgate received; ring-full drops are handed-over packets lost because the owner's "
                  "ring (4,096) was full.", "",
                  "| scenario | workers | rx queues / port | worker CPUs | NDR Mpps | PDR Mpps | MRR Mpps | handed over / received by passgate (median run) | handoff ring-full drops |",
                  "|---|---:|---:|---|---:|---:|---:|---|---:|"]
        for s in multi:
            hs = [h for h in s.get("handoffs", []) if h]
            h = sorted(hs, key=lambda x: x["handed_over"])[len(hs) // 2] if hs else None
            ho = (f"{h['handed_over']:,} / {h['dut_rx']:,} ({100.0 * h['handed_over'] / max(1, h['dut_rx']):.1f} %)"
                  if h else "n/a")
            lines.append(f"| {s['scenario']} | {s['workers']} | {s['rx_queues']} | "
                         f"{', '.join(str(c) for c in s.get('worker_cpus', []))} | {fmt_mpps(s['ndr_pps_median'])} | "
                         f"{fmt_mpps(s['pdr_pps_median'])} | {fmt_mpps(s['mrr_pps_median'])} | {ho} | "
                         f"{format(h.get('ring_full_drops', 0), ',') if h else 'n/a'} |")
    lines += ["", "## Targets (issue 6), reported, not asserted", "",
              "| target | wanted | measured (medians) | met? |", "|---|---|---|---|"]
    for t in doc["targets"]:
        met = "n/a" if t["met"] is None else ("**yes**" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {t['wanted']} | {t['measured']} | {met} |")
    cli = list(doc["settings"]["cli"])
    for opt in ("--build", "--out", "--tag", "--report"):  # where files went, not how it was measured
        while opt in cli:
            i = cli.index(opt)
            del cli[i:i + 2]
    lines += ["", "Reproduce: `sudo bench/run_perf.sh " + " ".join(cli) + "`", ""]
    return "\n".join(lines)


def plot(doc, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("python3-matplotlib missing: no plot (apt-get install python3-matplotlib)")
        return False
    by = {s["scenario"]: s for s in doc["scenarios"]}
    pts = [(by[n]["sessions"], by[n]) for n in ("nat-1k", "nat-64k", "nat-1m", "nat-4m", "nat-16m") if n in by]
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(7, 5))
    xs = [p[0] for p in pts]
    ax.plot(xs, [p[1]["ndr_pps_median"] / 1e6 for p in pts], "o-", label="passgate NAT, NDR (zero loss)")
    ax.plot(xs, [p[1]["pdr_pps_median"] / 1e6 for p in pts], "s--", label="passgate NAT, PDR (0.5 % loss)")
    ax.plot(xs, [p[1]["mrr_pps_median"] / 1e6 for p in pts], "^-.", label="passgate NAT, MRR (offered at max)")
    if "forward" in by:
        ax.axhline(by["forward"]["pdr_pps_median"] / 1e6, color="grey", ls=":",
                   label="forwarding ceiling (no NAT), PDR")
        ax.axhline(by["forward"]["mrr_pps_median"] / 1e6, color="black", ls=":",
                   label="forwarding ceiling (no NAT), MRR")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([("%dK" % (x // 1024)) if x < 2**20 else ("%dM" % (x // 2**20)) for x in xs])
    ax.set_xlabel("established sessions")
    ax.set_ylabel("Mpps offered inside to outside (x2 through the DUT)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"passgate on memif, one worker core ({doc['machine']['date']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--quick", action="store_true", help="a few scenarios, short trials: under 3 minutes")
    ap.add_argument("--reps", type=int, default=None, help="runs per scenario (default 3, quick 1)")
    ap.add_argument("--trial", type=float, default=None, help="seconds per trial (default 2, quick 1)")
    ap.add_argument("--drain", type=float, default=0.3)
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--precision", type=float, default=0.03)
    ap.add_argument("--max-trials", type=int, default=9)
    ap.add_argument("--frame-size", type=int, default=64)
    ap.add_argument("--warmup-rate", type=float, default=1_000_000)
    ap.add_argument("--no-hugepages", action="store_true", help="run both sides with --no-huge")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the DUT and the generator at this nice value (e.g. -10 on a machine shared with builds)")
    ap.add_argument("--second-worker-cpu", type=int, default=DUT_CPU,
                    help=f"CPU of the second passgate worker in the -w2 scenarios (default {DUT_CPU}: both workers "
                         f"share the DUT's CPU; {GEN_CPU}: the second shares the generator's)")
    ap.add_argument("--tag", default=None, help="file name stem under --out (default perf-DATE)")
    ap.add_argument("--report", metavar="JSON",
                    help="only rewrite the table, targets and plot from an earlier results JSON")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            doc = json.load(f)
        doc["targets"] = evaluate_targets({s["scenario"]: s for s in doc["scenarios"]})
        stem = args.report[:-len(".json")] if args.report.endswith(".json") else args.report
        with open(stem + ".json", "w") as f:
            json.dump(doc, f, indent=1)
        with open(stem + ".md", "w") as f:
            f.write(markdown(doc))
        plot(doc, stem + "-sessions.png")
        print(markdown(doc))
        return
    if os.geteuid() != 0:
        sys.exit("run_perf.py: needs root (namespaces, hugepages, nftables)")
    names = args.scenarios or (QUICK if args.quick else DEFAULT)
    for n in names:
        if n not in SCENARIOS:
            sys.exit(f"run_perf.py: unknown scenario '{n}'; known: {', '.join(SCENARIOS)}")
    WORKER_CPUS[2] = [DUT_CPU, args.second_worker_cpu]
    args.reps = args.reps or (1 if args.quick else 3)
    args.trial = args.trial or (1.0 if args.quick else 2.0)
    if args.quick:
        args.drain, args.settle = min(args.drain, 0.2), min(args.settle, 0.2)

    hugepages = False
    if not args.no_hugepages:
        # 2 MiB pages for both processes' buffer pools: DPDK without them is
        # about half as fast here. The session tables use THP, not these.
        with open("/proc/sys/vm/nr_hugepages") as f:
            have = int(f.read())
        if have < 1024:
            with contextlib.suppress(OSError):
                with open("/proc/sys/vm/nr_hugepages", "w") as f:
                    f.write("1024")
            with open("/proc/sys/vm/nr_hugepages") as f:
                have = int(f.read())
        hugepages = have >= 512

    if args.nice:
        # The kernel groups processes by session (autogroup) and shares the
        # CPU between groups first: a plain nice value would only rank our
        # processes against each other. Setting the group's nice ranks this
        # run against other sessions' work (builds) on a shared machine.
        with contextlib.suppress(OSError):
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(args.nice))
    args.work = tempfile.mkdtemp(prefix="pb-perf-", dir="/tmp")
    doc = {"machine": machine(hugepages, args.build),
           "settings": {"reps": args.reps, "trial": args.trial, "drain": args.drain, "settle": args.settle,
                        "precision": args.precision, "nice": args.nice, "max_trials": args.max_trials, "frame_size": args.frame_size,
                        "quick": args.quick, "cli": sys.argv[1:]},
           "scenarios": []}
    t0 = time.time()
    try:
        for n in names:
            log(f"scenario {n}: {SCENARIOS[n][6]}")
            try:
                s = run_scenario(args, n, hugepages)
            except Exception as e:  # one broken scenario must not lose the others
                log(f"scenario {n} failed: {e}")
                doc.setdefault("failed", {})[n] = str(e)[-2000:]
                continue
            log(f"scenario {n}: NDR {fmt_mpps(s['ndr_pps_median'])} Mpps, PDR {fmt_mpps(s['pdr_pps_median'])} Mpps, "
                f"{fmt_cpp(s.get('clocks_per_packet_median'))} clocks/packet "
                f"(runs {', '.join(fmt_mpps(x) for x in s['ndr_pps_runs'])})")
            doc["scenarios"].append(s)
    finally:
        doc["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        doc["wall_seconds"] = round(time.time() - t0)
        doc["targets"] = evaluate_targets({s["scenario"]: s for s in doc["scenarios"]})
        os.makedirs(args.out, exist_ok=True)
        stem = os.path.join(args.out, args.tag or ("perf-quick-" if args.quick else "perf-") +
                            datetime.date.today().isoformat())
        with open(stem + ".json", "w") as f:
            json.dump(doc, f, indent=1)
        md = markdown(doc)
        with open(stem + ".md", "w") as f:
            f.write(md)
        has_plot = plot(doc, stem + "-sessions.png")
        print(md)
        log(f"wrote {stem}.json, {stem}.md" + (f", {stem}-sessions.png" if has_plot else "") +
            f" in {doc['wall_seconds']} s")
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
