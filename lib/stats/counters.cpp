#include "stats/nat_counters.hpp"

namespace passgate::stats {

namespace {
#define PASSGATE_NAME(name, text) #name,
#define PASSGATE_TEXT(name, text) text,
constexpr const char* counter_names[] = {PASSGATE_NAT_COUNTERS(PASSGATE_NAME)};
constexpr const char* counter_texts[] = {PASSGATE_NAT_COUNTERS(PASSGATE_TEXT)};
constexpr const char* drop_names[] = {"none", PASSGATE_NAT_DROPS(PASSGATE_NAME)};
constexpr const char* drop_texts[] = {"not dropped", PASSGATE_NAT_DROPS(PASSGATE_TEXT)};
#undef PASSGATE_NAME
#undef PASSGATE_TEXT
}  // namespace

const char* nat_counter_name(NatCounter c) { return counter_names[static_cast<unsigned>(c)]; }
const char* nat_counter_help(NatCounter c) { return counter_texts[static_cast<unsigned>(c)]; }
const char* drop_reason_name(DropReason r) { return drop_names[static_cast<unsigned>(r)]; }
const char* drop_reason_help(DropReason r) { return drop_texts[static_cast<unsigned>(r)]; }

}  // namespace passgate::stats

#include "stats/port_counters.hpp"

namespace passgate::stats {
namespace {
#define PASSGATE_NAME(name, text) #name,
#define PASSGATE_TEXT(name, text) text,
constexpr const char* port_drop_names[] = {PASSGATE_PORT_DROPS(PASSGATE_NAME)};
constexpr const char* port_drop_texts[] = {PASSGATE_PORT_DROPS(PASSGATE_TEXT)};
#undef PASSGATE_NAME
#undef PASSGATE_TEXT
}  // namespace
const char* port_drop_name(PortDrop d) { return port_drop_names[static_cast<unsigned>(d)]; }
const char* port_drop_help(PortDrop d) { return port_drop_texts[static_cast<unsigned>(d)]; }
}  // namespace passgate::stats

#include "stats/health.hpp"

namespace passgate::stats {

const char* to_string(HealthReason r) {
  static constexpr const char* names[] = {
#define PASSGATE_X(name, help) #name,
      PASSGATE_HEALTH_REASONS(PASSGATE_X)
#undef PASSGATE_X
  };
  return names[static_cast<unsigned>(r)];
}

const char* to_string(Announcement a) {
  switch (a) {
    case Announcement::withdrawn: return "withdrawn";
    case Announcement::holding: return "holding";
    case Announcement::announced: return "announced";
  }
  return "?";
}

}  // namespace passgate::stats
