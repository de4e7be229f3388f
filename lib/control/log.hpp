// The gateway's own log: start-up, configuration, errors. Never on the packet
// path (workers count, they do not log), so a mutex keeps lines whole when
// the main and control threads write at once. Every line goes to stderr;
// with enable_syslog() it also goes to the local syslog daemon through
// syslog(3) at the matching priority. NAT events for legal requests are not
// logged here: they have their own exporters (IPFIX, RFC 5424 syslog).
//
//   control::log(control::Level::info, "listening on {}", address);
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <string_view>
#include <utility>

namespace passgate::control {

// The values are syslog(3) priorities (RFC 5424 section 6.2.1 severities).
enum class Level : int { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

const char* to_string(Level level);
// "error", "warning" (or "warn"), "notice", "info", "debug"; nullopt otherwise.
std::optional<Level> parse_level(std::string_view text);

void set_min_level(Level level);  // messages less severe than this are dropped (default: info)
Level min_level();
[[nodiscard]] inline bool log_enabled(Level level) { return static_cast<int>(level) <= static_cast<int>(min_level()); }

// openlog(ident, LOG_PID, facility); facility is a LOG_* value such as LOG_DAEMON.
void enable_syslog(const char* ident, int facility);
void disable_syslog();
// Where the stderr copy goes; tests point it at a file. nullptr restores stderr.
void set_log_stream(std::FILE* stream);

void log_message(Level level, std::string_view message);

template <typename... Args>
void log(Level level, fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(level)) return;  // no formatting for dropped messages
  log_message(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace passgate::control
