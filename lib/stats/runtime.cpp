#include "stats/runtime.hpp"

namespace passgate::stats {

namespace {
#define PASSGATE_NAME(name, text) #name,
#define PASSGATE_TEXT(name, text) text,
constexpr const char* stage_names[] = {PASSGATE_STAGES(PASSGATE_NAME)};
constexpr const char* stage_texts[] = {PASSGATE_STAGES(PASSGATE_TEXT)};
#undef PASSGATE_NAME
#undef PASSGATE_TEXT

std::uint64_t minus(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : 0; }
}  // namespace

const char* stage_name(Stage s) { return stage_names[static_cast<unsigned>(s)]; }
const char* stage_help(Stage s) { return stage_texts[static_cast<unsigned>(s)]; }

RuntimeSnapshot since(const RuntimeSnapshot& now, const RuntimeSnapshot& baseline) {
  RuntimeSnapshot out = now;
  out.elapsed_cycles = minus(now.elapsed_cycles, baseline.elapsed_cycles);
  for (std::size_t w = 0; w < out.workers.size() && w < baseline.workers.size(); ++w)
    for (unsigned s = 0; s < stage_count; ++s) {
      StageCounter& c = out.workers[w][s];
      const StageCounter& b = baseline.workers[w][s];
      // A stage whose counters went back belongs to another run: all of it is new.
      if (c.calls < b.calls || c.cycles < b.cycles || c.packets < b.packets) continue;
      c.cycles -= b.cycles;
      c.calls -= b.calls;
      c.packets -= b.packets;
    }
  return out;
}

namespace {
struct Busy {
  std::uint64_t cycles = 0, packets = 0;
  void add(const std::array<StageCounter, stage_count>& w) {
    for (unsigned s = 0; s < stage_count; ++s)
      if (static_cast<Stage>(s) != Stage::idle) cycles += w[s].cycles;
    // Handed packets were counted once at the worker that received them.
    packets += w[static_cast<unsigned>(Stage::receive)].packets + w[static_cast<unsigned>(Stage::exception)].packets;
  }
  [[nodiscard]] double per_packet() const {
    return packets ? static_cast<double>(cycles) / static_cast<double>(packets) : 0.0;
  }
};
}  // namespace

double busy_clocks_per_packet(const std::array<StageCounter, stage_count>& w) {
  Busy b;
  b.add(w);
  return b.per_packet();
}

double busy_clocks_per_packet(const RuntimeSnapshot& s) {
  Busy b;
  for (const auto& w : s.workers) b.add(w);
  return b.per_packet();
}

StageFigures figures(const StageCounter& c) {
  StageFigures f;
  if (c.packets) f.clocks_per_packet = static_cast<double>(c.cycles) / static_cast<double>(c.packets);
  else if (c.calls) f.clocks_per_packet = static_cast<double>(c.cycles) / static_cast<double>(c.calls);
  if (c.calls) f.packets_per_call = static_cast<double>(c.packets) / static_cast<double>(c.calls);
  return f;
}

}  // namespace passgate::stats
