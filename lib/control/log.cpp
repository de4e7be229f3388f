#include "control/log.hpp"

#include <syslog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <string>

namespace passgate::control {

static_assert(static_cast<int>(Level::error) == LOG_ERR && static_cast<int>(Level::warning) == LOG_WARNING &&
                  static_cast<int>(Level::notice) == LOG_NOTICE && static_cast<int>(Level::info) == LOG_INFO &&
                  static_cast<int>(Level::debug) == LOG_DEBUG,
              "Level values are the syslog(3) priorities");

namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::info)};
std::mutex g_mutex;  // guards the two below and keeps lines whole
bool g_syslog = false;
std::FILE* g_stream = nullptr;  // nullptr: stderr
// openlog(3) keeps the pointer it is given, so the ident must outlive it.
std::string g_ident;

}  // namespace

const char* to_string(Level level) {
  switch (level) {
    case Level::error: return "error";
    case Level::warning: return "warning";
    case Level::notice: return "notice";
    case Level::info: return "info";
    case Level::debug: return "debug";
  }
  return "?";
}

std::optional<Level> parse_level(std::string_view text) {
  if (text == "error") return Level::error;
  if (text == "warning" || text == "warn") return Level::warning;
  if (text == "notice") return Level::notice;
  if (text == "info") return Level::info;
  if (text == "debug") return Level::debug;
  return std::nullopt;
}

void set_min_level(Level level) { g_min_level.store(static_cast<int>(level), std::memory_order_relaxed); }

Level min_level() { return static_cast<Level>(g_min_level.load(std::memory_order_relaxed)); }

void enable_syslog(const char* ident, int facility) {
  std::lock_guard lock(g_mutex);
  g_ident = ident;
  openlog(g_ident.c_str(), LOG_PID, facility);
  g_syslog = true;
}

void disable_syslog() {
  std::lock_guard lock(g_mutex);
  if (g_syslog) closelog();
  g_syslog = false;
}

void set_log_stream(std::FILE* stream) {
  std::lock_guard lock(g_mutex);
  g_stream = stream;
}

void log_message(Level level, std::string_view message) {
  if (!log_enabled(level)) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm t{};
  gmtime_r(&seconds, &t);
  // One write per line, UTC like the NAT event logs so they line up.
  const std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {}: {}\n", t.tm_year + 1900,
                                       t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms % 1000,
                                       to_string(level), message);
  std::lock_guard lock(g_mutex);
  std::FILE* out = g_stream ? g_stream : stderr;
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
  if (g_syslog) syslog(static_cast<int>(level), "%.*s", static_cast<int>(message.size()), message.data());
}

}  // namespace passgate::control
