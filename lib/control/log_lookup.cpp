// The lawful-intercept look-up from logs and from the configuration
// (log_lookup.hpp).
#include "control/log_lookup.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <string_view>
#include <tuple>

#include "nat/deterministic.hpp"
#include "packet/address_text.hpp"

namespace passgate::control {

using nat::be32;

namespace {

// The value of key="..." in RFC 5424 structured data (ours never escapes).
std::optional<std::string> sd_param(std::string_view sd, std::string_view key) {
  const std::string needle = " " + std::string(key) + "=\"";
  const std::size_t at = sd.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const std::size_t from = at + needle.size();
  const std::size_t end = sd.find('"', from);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(sd.substr(from, end - from));
}

std::optional<std::uint16_t> port_of(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return packet::text::parse_port(*s);
}

}  // namespace

std::optional<std::uint64_t> parse_utc_time(const std::string& text) {
  if (!text.empty() && text[0] == '@') {
    const auto s = packet::text::parse_uint(std::string_view(text).substr(1));
    if (!s || *s > std::numeric_limits<std::uint64_t>::max() / 1000) return std::nullopt;
    return *s * 1000;
  }
  std::tm t{};
  int ms = 0, consumed = 0;
  char sep = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &t.tm_year, &t.tm_mon, &t.tm_mday, &sep, &t.tm_hour,
                  &t.tm_min, &t.tm_sec, &consumed) != 7 ||
      (sep != 'T' && sep != ' '))
    return std::nullopt;
  std::string_view rest = std::string_view(text).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    std::size_t digits = 1;
    int scale = 100;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') {
      if (scale > 0) ms += (rest[digits] - '0') * scale;
      scale /= 10;
      ++digits;
    }
    rest.remove_prefix(digits);
  }
  // A zone: Z, or the offset a collector may have rewritten it to (RFC 3339).
  std::int64_t offset_s = 0;
  if (rest == "Z") {
    rest = {};
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    const auto h = packet::text::parse_uint(rest.substr(1, 2)), m = packet::text::parse_uint(rest.substr(4, 2));
    if (!h || !m || *h > 23 || *m > 59) return std::nullopt;
    offset_s = static_cast<std::int64_t>(*h * 3600 + *m * 60) * (rest[0] == '+' ? 1 : -1);
    rest = {};
  }
  if (!rest.empty()) return std::nullopt;
  if (t.tm_mon < 1 || t.tm_mon > 12 || t.tm_mday < 1 || t.tm_mday > 31 || t.tm_hour > 23 || t.tm_min > 59 ||
      t.tm_sec > 60)
    return std::nullopt;
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  const std::int64_t s = static_cast<std::int64_t>(timegm(&t)) - offset_s;
  if (s < 0) return std::nullopt;
  return static_cast<std::uint64_t>(s) * 1000 + static_cast<std::uint64_t>(ms);
}

std::string format_utc_time(std::uint64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm t{};
  gmtime_r(&seconds, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                     t.tm_hour, t.tm_min, t.tm_sec, unix_ms % 1000);
}

void LogIndex::note_time(std::uint64_t ms) {
  if (events_ == 0 || ms < first_ms_) first_ms_ = ms;
  if (events_ == 0 || ms > last_ms_) last_ms_ = ms;
  ++events_;
}

// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG (RFC 5424 section 6).
bool LogIndex::add_syslog_line(const std::string& line) {
  const std::size_t lt = line.find('<');
  if (lt == std::string::npos) return false;
  const std::size_t gt = line.find(">1 ", lt);
  if (gt == std::string::npos || gt - lt > 4) return false;
  std::string_view rest = std::string_view(line).substr(gt + 3);
  std::string_view words[5];
  for (auto& w : words) {
    const std::size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) return false;
    w = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
  }
  const auto [stamp, host, app, procid, msgid] = std::tie(words[0], words[1], words[2], words[3], words[4]);
  (void)host;
  (void)procid;
  if (app != "passgate") return false;
  const auto when = parse_utc_time(std::string(stamp));
  if (!when) return false;
  const std::size_t sd_end = rest.find("] ");
  const std::string_view sd = rest.substr(0, sd_end == std::string_view::npos ? rest.size() : sd_end + 1);

  if (msgid == "NAT-DET-MAP") {
    std::string error;
    auto pool = nat::parse_mapping(std::string(rest), &error);
    if (!pool) return false;
    note_time(*when);
    mappings_.push_back(LoggedMapping{*when, std::move(*pool)});
    return true;
  }
  const bool block = msgid == "NAT-BLOCK-ALLOC" || msgid == "NAT-BLOCK-RELEASE";
  const bool single = msgid == "NAT-PORT-ALLOC" || msgid == "NAT-PORT-RELEASE";
  if (!block && !single) {
    if (msgid.rfind("NAT-", 0) == 0) note_time(*when);  // our other events still show the logs' span
    return msgid.rfind("NAT-", 0) == 0;
  }
  const auto inside = sd_param(sd, "inside"), pub = sd_param(sd, "public");
  if (!inside || !pub) return false;
  const auto in_addr = packet::text::parse_ipv4(*inside), pub_addr = packet::text::parse_ipv4(*pub);
  if (!in_addr || !pub_addr) return false;
  LoggedBlock b;
  b.subscriber = *in_addr;
  b.public_address = *pub_addr;
  if (block) {
    const auto first = port_of(sd_param(sd, "port-start")), last = port_of(sd_param(sd, "port-end")),
               step = port_of(sd_param(sd, "port-step"));
    if (!first || !last) return false;
    b.first = *first;
    b.last = *last;
    b.step = step && *step != 0 ? *step : 1;
  } else {
    const auto port = port_of(sd_param(sd, "public-port"));
    if (!port) return false;
    b.first = b.last = *port;
  }
  note_time(*when);
  pending_.push_back(Event{msgid == "NAT-BLOCK-ALLOC" || msgid == "NAT-PORT-ALLOC", b, *when});
  return true;
}

bool LogIndex::add_nfdump_record(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::map<std::string, std::string> f(fields.begin(), fields.end());
  const auto t = f.find("t_event");
  if (t == f.end()) return false;
  // nfdump prints local time without a zone: run it with TZ=UTC.
  const auto when = parse_utc_time(t->second);
  if (!when) return false;
  const std::string id = f.count("nat_event_id") ? f["nat_event_id"] : "";
  if (id != "16" && id != "17") {
    if (!id.empty()) note_time(*when);
    return !id.empty();
  }
  const auto in_addr = packet::text::parse_ipv4(f["src4_addr"]), pub_addr = packet::text::parse_ipv4(f["src4_xlt_ip"]);
  if (!in_addr || !pub_addr) return false;
  LoggedBlock b;
  b.subscriber = *in_addr;
  b.public_address = *pub_addr;
  const auto first = packet::text::parse_port(f["pblock_start"]), last = packet::text::parse_port(f["pblock_end"]);
  if (first && last && *last >= *first && *last != 0) {
    b.first = *first;
    b.last = *last;
    const auto step = packet::text::parse_port(f["pblock_step"]);
    b.step = step && *step != 0 ? *step : 1;
  } else {
    b.ports_known = false;
  }
  note_time(*when);
  pending_.push_back(Event{id == "16", b, *when});
  return true;
}

// Each release closes the latest open allocation of the same block and
// subscriber; a release with none opens at the logs' start.
void LogIndex::finish() {
  std::stable_sort(pending_.begin(), pending_.end(), [](const Event& a, const Event& b) { return a.time_ms < b.time_ms; });
  using Key = std::tuple<std::uint32_t, std::uint32_t, std::uint16_t, std::uint16_t>;
  std::map<Key, std::size_t> open;
  for (const Event& e : pending_) {
    const Key k{e.block.subscriber.raw, e.block.public_address.raw, e.block.first, e.block.last};
    if (e.allocated) {
      LoggedBlock b = e.block;
      b.from_ms = e.time_ms;
      b.from_known = true;
      b.to_ms = std::numeric_limits<std::uint64_t>::max();
      open[k] = blocks_.size();
      blocks_.push_back(b);
      continue;
    }
    if (const auto it = open.find(k); it != open.end()) {
      blocks_[it->second].to_ms = e.time_ms;
      blocks_[it->second].to_known = true;
      open.erase(it);
    } else {
      LoggedBlock b = e.block;
      b.from_ms = first_ms_;
      b.to_ms = e.time_ms;
      b.to_known = true;
      blocks_.push_back(b);
    }
  }
  pending_.clear();
  std::stable_sort(mappings_.begin(), mappings_.end(),
                   [](const LoggedMapping& a, const LoggedMapping& b) { return a.from_ms < b.from_ms; });
}

namespace {
std::string block_text(const LoggedBlock& b) {
  const std::string ports = !b.ports_known ? std::string("(port range not in these records)")
                            : b.first == b.last ? fmt::format("port {}", b.first)
                            : b.step > 1        ? fmt::format("ports {}-{} step {}", b.first, b.last, b.step)
                                                : fmt::format("ports {}-{}", b.first, b.last);
  return fmt::format("{} held {} {} from {} until {}", nat::to_string(b.subscriber), nat::to_string(b.public_address),
                     ports, b.from_known ? format_utc_time(b.from_ms) : "before the logs begin",
                     b.to_known ? format_utc_time(b.to_ms) : "the end of the logs (still held)");
}
}  // namespace

LogIndex::Answer LogIndex::lookup(be32 address, std::uint16_t port, std::uint64_t at_ms) const {
  Answer a{};
  const std::string what = fmt::format("{}:{} at {}", nat::to_string(address), port, format_utc_time(at_ms));
  if (events_ == 0 || at_ms < first_ms_ || at_ms > last_ms_) {
    a.kind = Answer::Kind::not_covered;
    a.text = events_ == 0 ? fmt::format("{}: the logs hold no passgate NAT event at all", what)
                          : fmt::format("{}: the logs do not cover that time (they run from {} to {})", what,
                                        format_utc_time(first_ms_), format_utc_time(last_ms_));
    return a;
  }
  // A deterministic pool's mapping in force at T (the latest logged before it).
  for (auto it = mappings_.rbegin(); it != mappings_.rend(); ++it) {
    if (it->from_ms > at_ms) continue;
    const nat::DeterministicMap map(it->pool);
    if (const auto owner = map.reverse(address, port)) {
      bool newer = false;  // a later mapping of the same pool before T replaced this one
      for (auto later = mappings_.rbegin(); later != it; ++later)
        newer |= later->from_ms <= at_ms && later->pool.name == it->pool.name;
      if (newer) continue;
      const auto slot = *map.forward(*owner);
      a.kind = Answer::Kind::deterministic;
      a.deterministic_subscriber = *owner;
      a.pool = it->pool.name;
      a.mapping_from_ms = it->from_ms;
      a.range_first = slot.first_port;
      a.range_last = slot.last_port;
      a.text = fmt::format(
          "{}: subscriber {} (deterministic pool {}, range {}-{}, by the RFC 7422 mapping logged at {})", what,
          nat::to_string(*owner), it->pool.name, slot.first_port, slot.last_port, format_utc_time(it->from_ms));
      return a;
    }
  }
  std::vector<LoggedBlock> on_address;
  for (const LoggedBlock& b : blocks_)
    if (b.public_address == address && b.from_ms <= at_ms && at_ms < b.to_ms && b.covers(port)) on_address.push_back(b);
  std::vector<LoggedBlock> exact;
  for (const LoggedBlock& b : on_address)
    if (b.ports_known) exact.push_back(b);
  if (!exact.empty()) {
    a.kind = Answer::Kind::held;
    a.holders = {exact.front()};
    a.text = fmt::format("{}: subscriber {} ({})", what, nat::to_string(exact.front().subscriber),
                         block_text(exact.front()));
    return a;
  }
  if (!on_address.empty()) {
    a.kind = Answer::Kind::candidates;
    a.holders = on_address;
    std::string list;
    for (const LoggedBlock& b : on_address) list += "\n  " + block_text(b);
    a.text = fmt::format(
        "{}: these records have no port ranges (nfdump 1.7.1 drops them), so only the subscribers holding blocks on "
        "the address then can be named{}{}",
        what, on_address.size() == 1 ? " (just one):" : fmt::format(" ({} of them):", on_address.size()), list);
    return a;
  }
  a.kind = Answer::Kind::nobody;
  a.text = fmt::format(
      "{}: no subscriber held a block covering it in these logs ({} to {}); a block allocated before they begin and "
      "never released in them would leave no trace",
      what, format_utc_time(first_ms_), format_utc_time(last_ms_));
  return a;
}

ConfigAnswer lookup_in_config(const std::vector<nat::PoolConfig>& pools, be32 address, std::uint16_t port) {
  ConfigAnswer out;
  for (const nat::PoolConfig& pc : pools) {
    bool listed = false;
    for (const nat::AddressRange& r : pc.public_addresses)
      listed |= address.host() >= r.first.host() && address.host() <= r.last.host();
    if (!listed) continue;
    out.pool = pc.name;
    if (pc.mode != nat::PoolMode::deterministic) {
      out.address_in_dynamic_pool = true;
      return out;
    }
    const nat::DeterministicMap map(pc);
    if (const auto owner = map.reverse(address, port)) {
      const auto slot = *map.forward(*owner);
      out.subscriber = *owner;
      out.range_first = slot.first_port;
      out.range_last = slot.last_port;
    }
    return out;
  }
  return out;
}

}  // namespace passgate::control
