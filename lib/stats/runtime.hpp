// Runtime accounting (issue 17.1): where a worker's time goes, per stage of
// its loop, in the manner of VPP's `show runtime`.
//
// Theory of operation
// - Each worker owns one RuntimeCounters block and is its only writer. A
//   stage boundary is one read of the cycle counter (TSC on x86): lap(stage)
//   charges the cycles since the previous boundary to `stage`, with one call
//   and the packets it handled. Boundaries are per burst, never per packet,
//   so every cycle of the loop lands in exactly one stage and the sum of all
//   stages is the time the loop ran (tests check that).
// - A stage that did nothing (an empty flush, an empty handoff ring) takes no
//   boundary: its few cycles go to the next boundary, usually `loop`, the
//   turn's own overhead. A poll that returned no packet is an `idle` call.
// - The control core reads the blocks with relaxed loads (load_relaxed.hpp)
//   and never writes them: clearing is a baseline it keeps and subtracts.
// - Plain integers, no DPDK: the engine (lib/nat) charges its own stages
//   (lookup, established, create, passthrough) into the same block.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "stats/load_relaxed.hpp"

namespace passgate::stats {

// X(name, help). Order is the display order: the path of a packet first.
#define PASSGATE_STAGES(X)                                                                                   \
  X(receive, "Port receive bursts that returned packets (the PMD's rx_burst).")                              \
  X(classify, "Frame classification, ARP, address checks and steering of a received burst.")                 \
  X(lookup, "NAT engine: parse, hash and session table lookup of a burst.")                                  \
  X(established, "NAT engine: packets of an existing session translated (runs of them within a burst).")    \
  X(create, "NAT engine: packets without a session (session creation, or refused by filtering/limits).")    \
  X(passthrough, "NAT engine: packets without ports: ESP, GRE, ICMP errors, later fragments, malformed.")   \
  X(route, "Verdicts to the egress: next hop, L2 header, ICMP errors, into the transmit buffers.")          \
  X(handoff, "Packets to or from another worker's ring (dequeue and enqueue).")                              \
  X(transmit, "Port transmit bursts (the PMD's tx_burst) and kernel interface bursts.")                      \
  X(exception, "The kernel interface's receive bursts that returned packets, and what they carried.")        \
  X(timers, "Once a millisecond: session expiry, released fragments, neighbour timers.")                     \
  X(control, "Policy adoption after a reload and control calls (operator look-ups) run on the worker.")     \
  X(idle, "Receive polls (port or kernel interface) that returned no packet.")                               \
  X(loop, "The rest of each loop turn: empty rings and buffers checked, RCU quiescent state reported.")

#define PASSGATE_ENUM_ENTRY(name, text) name,
enum class Stage : std::uint8_t { PASSGATE_STAGES(PASSGATE_ENUM_ENTRY) count_ };
#undef PASSGATE_ENUM_ENTRY
inline constexpr unsigned stage_count = static_cast<unsigned>(Stage::count_);

const char* stage_name(Stage s);
const char* stage_help(Stage s);

// The cycle counter the workers read: the TSC on x86 (rte_rdtsc reads the
// same, so rte_get_tsc_hz() is its rate), the virtual counter on arm64.
inline std::uint64_t read_cycles() {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#elif defined(__aarch64__)
  std::uint64_t v;
  asm volatile("mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  return static_cast<std::uint64_t>(__builtin_readcyclecounter());
#endif
}

struct StageCounter {
  std::uint64_t cycles = 0, calls = 0, packets = 0;
};

// One worker's block. Cache-line aligned: another worker's block never
// shares a line with it.
struct alignas(64) RuntimeCounters {
  std::array<StageCounter, stage_count> stage{};
  std::uint64_t last = 0;  // the previous boundary (worker only)

  // Starts the accounting at `now` (the worker, before its loop).
  void start(std::uint64_t now) { last = now; }
  // A boundary: what ran since the previous one was `s`, `packets` of it.
  // Returns now, for callers that need the time anyway.
  std::uint64_t lap(Stage s, std::uint64_t packets) {
    const std::uint64_t now = read_cycles();
    StageCounter& c = stage[static_cast<unsigned>(s)];
    c.cycles += now - last;
    c.calls++;
    c.packets += packets;
    last = now;
    return now;
  }
  // Cycles only, no call: the rest of an idle loop turn is idle time.
  void charge_at(Stage s, std::uint64_t now) {
    stage[static_cast<unsigned>(s)].cycles += now - last;
    last = now;
  }
  // The same as lap() with a time read already (the loop's timer check).
  void lap_at(Stage s, std::uint64_t now, std::uint64_t packets) {
    StageCounter& c = stage[static_cast<unsigned>(s)];
    c.cycles += now - last;
    c.calls++;
    c.packets += packets;
    last = now;
  }
};

// Plain values of every worker's stages at one moment, for exporters.
struct RuntimeSnapshot {
  std::uint64_t tsc_hz = 0;
  // Cycles from the start (or the last clear) to the moment of the snapshot.
  std::uint64_t elapsed_cycles = 0;
  std::vector<std::array<StageCounter, stage_count>> workers;
};

// A running worker's counters, read from the control core.
inline std::array<StageCounter, stage_count> read_live(const RuntimeCounters& r) {
  std::array<StageCounter, stage_count> out{};
  for (unsigned i = 0; i < stage_count; ++i) {
    out[i].cycles = load_relaxed(r.stage[i].cycles);
    out[i].calls = load_relaxed(r.stage[i].calls);
    out[i].packets = load_relaxed(r.stage[i].packets);
  }
  return out;
}

// `now` minus `baseline`, stage by stage (clearing). A counter cannot go
// back, but a baseline from another run (a restarted gateway) could be
// larger: such a stage reads 0.
RuntimeSnapshot since(const RuntimeSnapshot& now, const RuntimeSnapshot& baseline);

// Cycles of every stage but idle, over the packets received from ports and
// kernel interfaces (a packet handed between workers counts once, where it
// arrived): what a packet costs, all stages together. 0 without packets.
double busy_clocks_per_packet(const std::array<StageCounter, stage_count>& w);
// The same over every worker of a snapshot.
double busy_clocks_per_packet(const RuntimeSnapshot& s);

// The figures of one stage as `show runtime` prints them.
struct StageFigures {
  double clocks_per_packet = 0;  // cycles / packets; cycles / calls for stages without packets
  double packets_per_call = 0;   // the vector size
};
StageFigures figures(const StageCounter& c);

}  // namespace passgate::stats
