// health: the routing daemon passgate drives and the thresholds that decide
// whether the box announces itself (issue 15; control/health_monitor.hpp).
#include "config/readers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

namespace passgate::config {

namespace {

// A BIRD protocol name as `enable NAME` takes it unquoted: a BIRD symbol.
bool bird_symbol(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  const auto letter = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; };
  return letter(s[0]) && std::all_of(s.begin(), s.end(), [&](char ch) { return letter(ch) || (ch >= '0' && ch <= '9'); });
}

std::optional<std::vector<std::string>> protocol_list(Checker& c, const Field& f, bool may_be_empty) {
  const auto items = sequence(c, f, "BIRD protocol names", may_be_empty);
  if (!items) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const Field& item : *items) {
    const auto s = c.text(item, "a BIRD protocol name like announce_pools");
    if (!s) {
      ok = false;
    } else if (!bird_symbol(*s)) {
      c.error(Code::bad_name, item,
              fmt::format("expected a BIRD protocol name (a letter or '_', then letters, digits or '_') like "
                          "announce_pools, got '{}'",
                          *s));
      ok = false;
    } else if (std::find(out.begin(), out.end(), *s) != out.end()) {
      c.error(Code::repeated, item, fmt::format("protocol '{}' is listed twice", *s));
      ok = false;
    } else {
      out.push_back(*s);
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace

void read_health(Checker& c, const Field& f, std::optional<HealthConfig>& out) {
  const Mapping m(c, f,
                  {"daemon", "check_ms", "hold_down_s", "worker_stall_ms", "pool_check_ms", "pool_withdraw_percent",
                   "pool_restore_percent", "pool_exhausted_protocols", "stop_withdraw_ms", "reconcile_ms"});
  if (!m.ok()) return;
  HealthConfig h;
  const std::size_t errors_before = c.count();
  if (const Field* df = m.require("daemon")) {
    const Mapping dm(c, *df, {"kind", "socket", "protocols", "timeout_ms"});
    if (dm.ok()) {
      if (const Field* kf = dm.get("kind"))
        if (auto s = c.text(*kf, "bird"); s && *s != "bird")
          c.error(Code::bad_choice, *kf, fmt::format("expected bird (BIRD 2's control socket), got '{}'", *s));
      if (const Field* sf = dm.get("socket"))
        if (auto s = c.text(*sf, "the daemon's control socket, an absolute path like /run/bird/bird.ctl")) {
          if (s->empty() || s->front() != '/' || s->size() > 107)
            c.error(Code::bad_choice, *sf,
                    fmt::format("expected an absolute path of at most 107 bytes (a unix socket) like "
                                "/run/bird/bird.ctl, got '{}'",
                                *s));
          else
            h.socket = *s;
        }
      if (const Field* pf = dm.require("protocols"))
        if (auto list = protocol_list(c, *pf, false)) h.protocols = *list;
      set_integer(c, dm, "timeout_ms", h.daemon_timeout_ms, 10, 60000, "ms");
    }
  }
  const std::size_t errors_before_numbers = c.count();
  set_integer(c, m, "check_ms", h.check_ms, 10, 10000, "ms");
  set_integer(c, m, "hold_down_s", h.hold_down_s, 0, 3600, "s");
  set_integer(c, m, "worker_stall_ms", h.worker_stall_ms, 50, 60000, "ms");
  set_integer(c, m, "pool_check_ms", h.pool_check_ms, 100, 60000, "ms");
  set_integer(c, m, "pool_withdraw_percent", h.pool_withdraw_percent, 1, 100, "%");
  set_integer(c, m, "pool_restore_percent", h.pool_restore_percent, 0, 100, "%");
  set_integer(c, m, "stop_withdraw_ms", h.stop_withdraw_ms, 0, 60000, "ms");
  set_integer(c, m, "reconcile_ms", h.reconcile_ms, 100, 60000, "ms");
  const bool numbers_ok = c.count() == errors_before_numbers;
  if (const Field* pf = m.get("pool_exhausted_protocols"))
    if (auto list = protocol_list(c, *pf, true)) {
      for (std::size_t i = 0; i < list->size(); ++i)
        if (std::find(h.protocols.begin(), h.protocols.end(), (*list)[i]) == h.protocols.end() &&
            !h.protocols.empty())
          c.error(Code::conflict, *pf,
                  fmt::format("'{}' is not in daemon.protocols; expected a subset of the protocols passgate "
                              "switches",
                              (*list)[i]));
      h.pool_exhausted_protocols = *list;
    }
  // Hysteresis: a pool hovering at the threshold must not flap the box.
  if (numbers_ok && h.pool_restore_percent >= h.pool_withdraw_percent)
    c.error(Code::conflict, m.get("pool_restore_percent") ? *m.get("pool_restore_percent") : f,
            fmt::format("pool_restore_percent {} must be below pool_withdraw_percent {} (hysteresis: a pool at "
                        "the threshold must not withdraw and restore the box over and over)",
                        h.pool_restore_percent, h.pool_withdraw_percent));
  if (numbers_ok && h.worker_stall_ms < 2 * h.check_ms)
    c.error(Code::conflict, m.get("worker_stall_ms") ? *m.get("worker_stall_ms") : f,
            fmt::format("worker_stall_ms {} must be at least twice check_ms {} (a stall is seen between checks)",
                        h.worker_stall_ms, h.check_ms));
  if (c.count() == errors_before) out = h;
}

}  // namespace passgate::config
