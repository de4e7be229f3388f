// "Who had public address:port at time T", answered from NAT event logs
// (passgate-lookup; README "Answering a lawful request"). Offline: no
// gateway runs, only what the exporters wrote.
//
// Theory of operation. Every log line or record is turned into one of:
//   - a block (or a single preserved port) allocated or released: the
//     subscriber, the public address, ports first, first+step, ... last,
//     and when;
//   - a deterministic pool's mapping in force from a time on (NAT-DET-MAP):
//     it answers for every port of the pool until the next one.
// The index pairs each allocation with the release of the same block and
// subscriber that follows it, into intervals [from, to). A release without
// its allocation held the block since before the logs begin; an allocation
// without its release still held it when they end. A question at time T is
// answered only inside the span the logs cover (first to last line): before
// or after that the answer says so rather than guess. Inside it, "nobody"
// still carries a caveat: a block allocated before the logs begin and never
// released in them leaves no trace.
//
// nfdump 1.7.1 stores IPFIX NAT events without their port range (it does
// not decode portRangeStart/End); from its records the index knows who held
// blocks on which address, not which ports, and says so in its answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nat/nat_config.hpp"

namespace passgate::control {

struct LoggedBlock {
  nat::be32 subscriber, public_address;
  std::uint16_t first = 0, last = 0, step = 1;
  bool ports_known = true;  // false: a record without its port range (nfdump 1.7.1)
  std::uint64_t from_ms = 0, to_ms = 0;  // [from, to)
  bool from_known = false, to_known = false;
  [[nodiscard]] bool covers(std::uint16_t port) const {
    return !ports_known || (port >= first && port <= last && (port - first) % (step == 0 ? 1 : step) == 0);
  }
};

struct LoggedMapping {
  std::uint64_t from_ms;
  nat::PoolConfig pool;
};

class LogIndex {
 public:
  // One syslog line as the exporter sent it (RFC 5424, as rsyslog writes it
  // with the RSYSLOG_SyslogProtocol23Format template). Lines of other
  // programs or formats are ignored; returns whether it was one of ours.
  bool add_syslog_line(const std::string& line);
  // One record of `nfdump -o json` (1.7: one flat object per record, keys
  // and values as strings): nat_event_id 16/17 are block events.
  bool add_nfdump_record(const std::vector<std::pair<std::string, std::string>>& fields);
  // Pairs allocations with releases; call once after adding.
  void finish();

  [[nodiscard]] const std::vector<LoggedBlock>& blocks() const { return blocks_; }
  [[nodiscard]] std::uint64_t first_ms() const { return first_ms_; }
  [[nodiscard]] std::uint64_t last_ms() const { return last_ms_; }
  [[nodiscard]] bool empty() const { return events_ == 0; }

  struct Answer {
    enum class Kind { held, deterministic, candidates, nobody, not_covered } kind;
    std::vector<LoggedBlock> holders;  // held: one; candidates: every block on the address at T
    std::optional<nat::be32> deterministic_subscriber;
    std::string pool;                  // deterministic: the pool; its mapping's time in mapping_from_ms
    std::uint64_t mapping_from_ms = 0;
    std::uint16_t range_first = 0, range_last = 0;
    std::string text;                  // for people, one paragraph
  };
  [[nodiscard]] Answer lookup(nat::be32 address, std::uint16_t port, std::uint64_t at_ms) const;

 private:
  struct Event {
    bool allocated;
    LoggedBlock block;
    std::uint64_t time_ms;
  };
  void note_time(std::uint64_t ms);
  std::vector<Event> pending_;
  std::vector<LoggedBlock> blocks_;
  std::vector<LoggedMapping> mappings_;
  std::uint64_t first_ms_ = 0, last_ms_ = 0, events_ = 0;
};

// The subscriber a deterministic pool of `pools` names for address:port, or
// nullopt (with the pool and range when found).
struct ConfigAnswer {
  std::optional<nat::be32> subscriber;
  std::string pool;
  std::uint16_t range_first = 0, range_last = 0;
  bool address_in_dynamic_pool = false;  // the address belongs to a dynamic pool: only the logs can tell
};
ConfigAnswer lookup_in_config(const std::vector<nat::PoolConfig>& pools, nat::be32 address, std::uint16_t port);

// "2026-12-02T08:53:53.123Z", "2026-12-02T08:53:53Z", "2026-12-02 08:53:53"
// (UTC), with an RFC 3339 offset ("+01:00"), or "@UNIXSECONDS", to Unix
// milliseconds.
std::optional<std::uint64_t> parse_utc_time(const std::string& text);
std::string format_utc_time(std::uint64_t unix_ms);

}  // namespace passgate::control
