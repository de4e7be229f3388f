#include "control/syslog_exporter.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <span>

#include "control/log_lookup.hpp"
#include "control/udp_sender.hpp"

namespace passgate::control {

namespace {

using nat::NatEvent;

std::string dotted(packet::be32 a) {
  const std::uint32_t v = a.host();
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

std::string protocol_name(std::uint8_t p) {
  switch (p) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 47: return "gre";
    case 50: return "esp";
    default: return std::to_string(p);
  }
}

// RFC 5424 section 6.2.3: FULL-DATE "T" FULL-TIME with TIME-SECFRAC, in UTC,
// the form passgate-lookup reads back (log_lookup.hpp).
std::string timestamp(std::uint64_t unix_ms) { return format_utc_time(unix_ms); }

// PRINTUSASCII (RFC 5424 section 6): %d33-126.
bool printable_ascii(std::string_view s) {
  for (char c : s)
    if (c < 33 || c > 126) return false;
  return true;
}

}  // namespace

const char* syslog_msgid(NatEvent::Type type) {
  switch (type) {
    case NatEvent::Type::block_allocated: return "NAT-BLOCK-ALLOC";
    case NatEvent::Type::block_released: return "NAT-BLOCK-RELEASE";
    case NatEvent::Type::ports_exhausted: return "NAT-PORTS-EXHAUSTED";
    case NatEvent::Type::session_limit: return "NAT-SESSION-LIMIT";
    case NatEvent::Type::pool_exhausted: return "NAT-POOL-EXHAUSTED";
    case NatEvent::Type::port_preserved: return "NAT-PORT-ALLOC";
    case NatEvent::Type::port_released: return "NAT-PORT-RELEASE";
    case NatEvent::Type::session_created: return "NAT-SESSION-CREATE";
    case NatEvent::Type::session_deleted: return "NAT-SESSION-DELETE";
  }
  return "NAT-EVENT";
}

int syslog_severity(NatEvent::Type type) {
  switch (type) {
    case NatEvent::Type::ports_exhausted:
    case NatEvent::Type::session_limit:
    case NatEvent::Type::pool_exhausted: return syslog_warning;
    default: return syslog_informational;
  }
}

std::string format_syslog(const NatEvent& e, const SyslogConfig& config, std::string_view procid) {
  const std::string inside = dotted(e.subscriber);
  const std::string pub = dotted(e.public_address);
  const bool has_public = e.public_address.raw != 0;

  // Structured data (RFC 5424 section 6.3). Every value here is digits, dots
  // or a protocol name, so none needs the '"', '\' or ']' escape.
  std::string sd = fmt::format("[{} inside=\"{}\"", config.sd_id, inside);
  if (has_public) sd += fmt::format(" public=\"{}\"", pub);
  std::string msg;
  const std::uint16_t inside_port = e.inside_port.raw != 0 ? e.inside_port.host() : e.port_first;

  switch (e.type) {
    case NatEvent::Type::block_allocated:
    case NatEvent::Type::block_released:
      sd += fmt::format(" port-start=\"{}\" port-end=\"{}\" port-step=\"{}\"", e.port_first, e.port_last,
                        e.port_step == 0 ? 1 : e.port_step);
      msg = fmt::format("{} -> {} ports {}-{} {}", inside, pub, e.port_first, e.port_last,
                        e.type == NatEvent::Type::block_allocated ? "allocated" : "released");
      break;
    case NatEvent::Type::port_preserved:
    case NatEvent::Type::port_released:
      if (e.protocol != 0) sd += fmt::format(" proto=\"{}\"", protocol_name(e.protocol));
      sd += fmt::format(" inside-port=\"{}\" public-port=\"{}\"", inside_port, e.port_first);
      msg = fmt::format("{} -> {} port {}", inside, pub, e.port_first);
      if (e.protocol != 0) msg += fmt::format("/{}", protocol_name(e.protocol));
      msg += e.type == NatEvent::Type::port_preserved ? " preserved" : " released";
      break;
    case NatEvent::Type::session_created:
    case NatEvent::Type::session_deleted:
      sd += fmt::format(" proto=\"{}\" inside-port=\"{}\" public-port=\"{}\"", protocol_name(e.protocol),
                        inside_port, e.port_first);
      msg = fmt::format("{} {}:{} -> {}:{}", protocol_name(e.protocol), inside, inside_port, pub, e.port_first);
      if (config.log_destination) {
        const std::string dest = dotted(e.remote_address);
        sd += fmt::format(" dest=\"{}\" dest-port=\"{}\"", dest, e.remote_port.host());
        msg += fmt::format(" to {}:{}", dest, e.remote_port.host());
      }
      msg += e.type == NatEvent::Type::session_created ? " created" : " deleted";
      break;
    case NatEvent::Type::ports_exhausted:
      msg = fmt::format("{}: no free port left in its blocks on {}", inside, pub);
      break;
    case NatEvent::Type::pool_exhausted:
      msg = fmt::format("{}: pool {} has no free port block", inside, e.pool);
      break;
    case NatEvent::Type::session_limit:
      msg = fmt::format("{}: session limit reached", inside);
      break;
  }
  // Limit events are rate-limited per subscriber and type (issue 11.4).
  if (e.suppressed != 0) {
    sd += fmt::format(" suppressed=\"{}\"", e.suppressed);
    msg += fmt::format(" ({} more since the last report)", e.suppressed);
  }
  // Sessions of static mappings belong to no pool.
  sd += e.pool == 0xffffffffu ? std::string("]") : fmt::format(" pool=\"{}\"]", e.pool);

  // RFC 5424 section 6: HEADER SP STRUCTURED-DATA SP MSG; VERSION is 1.
  const int prival = config.facility * 8 + syslog_severity(e.type);
  return fmt::format("<{}>1 {} {} passgate {} {} {} {}", prival, timestamp(e.time_ms),
                     config.hostname.empty() ? "-" : config.hostname, procid.empty() ? "-" : procid,
                     syslog_msgid(e.type), sd, msg);
}

std::string format_syslog_mapping(const DeterministicMappingEvent& e, const SyslogConfig& config,
                                  std::string_view procid) {
  // Pool names are [a-z0-9_-] (configuration), so no SD escape is needed.
  const std::string sd =
      fmt::format("[{} pool=\"{}\" pool-name=\"{}\" algorithm=\"rfc7422\" port-start=\"{}\" port-end=\"{}\" "
                  "ports-per-subscriber=\"{}\" sharing-ratio=\"{}\"]",
                  config.sd_id, e.pool, e.pool_name, e.port_min, e.port_max, e.ports_per_subscriber, e.ratio);
  const int prival = config.facility * 8 + syslog_informational;
  return fmt::format("<{}>1 {} {} passgate {} NAT-DET-MAP {} deterministic mapping in force: {}", prival,
                     timestamp(e.time_ms), config.hostname.empty() ? "-" : config.hostname,
                     procid.empty() ? "-" : procid, sd, e.line);
}

std::string validate_syslog_config(const SyslogConfig& config) {
  if (config.facility < 0 || config.facility > 23) return "syslog facility must be 0..23";
  if (config.hostname.size() > 255 || !printable_ascii(config.hostname))
    return "syslog hostname must be at most 255 printable ASCII characters without spaces";
  const std::string_view sd_id = config.sd_id;
  if (sd_id.empty() || sd_id.size() > 32 || !printable_ascii(sd_id) || sd_id.find_first_of("=]\"") != sd_id.npos ||
      sd_id.find('@') == sd_id.npos)
    return "syslog sd_id must be NAME@ENTERPRISE-NUMBER, at most 32 characters (RFC 5424 section 6.3.2)";
  return {};
}

std::unique_ptr<SyslogExporter> SyslogExporter::open(const SyslogConfig& config, std::string* error) {
  SyslogConfig c = config;
  if (c.hostname.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0) c.hostname = name;
  }
  if (std::string problem = validate_syslog_config(c); !problem.empty()) {
    *error = problem;
    return nullptr;
  }
  std::unique_ptr<UdpSender> sender = UdpSender::connect(c.server, error);
  if (!sender) {
    *error = "syslog server: " + *error;
    return nullptr;
  }
  return std::unique_ptr<SyslogExporter>(new SyslogExporter(std::move(c), std::move(sender)));
}

SyslogExporter::SyslogExporter(SyslogConfig config, std::unique_ptr<UdpSender> sender)
    : config_(std::move(config)), procid_(std::to_string(getpid())), sender_(std::move(sender)) {}

// Whatever is still queued leaves with the exporter (a reload replaces it).
SyslogExporter::~SyslogExporter() { flush(0); }

void SyslogExporter::add(const NatEvent& e) {
  ++stats_.events;
  queue_.push_back(format_syslog(e, config_, procid_));
  if (queue_.size() >= max_queued) flush(0);
}

void SyslogExporter::add_mapping(const DeterministicMappingEvent& e) {
  ++stats_.events;
  queue_.push_back(format_syslog_mapping(e, config_, procid_));
  if (queue_.size() >= max_queued) flush(0);
}

void SyslogExporter::flush(std::uint64_t /*now_unix_ms*/) {
  if (queue_.empty()) return;
  std::vector<std::span<const std::uint8_t>> datagrams;
  datagrams.reserve(queue_.size());
  for (const std::string& line : queue_)
    datagrams.emplace_back(reinterpret_cast<const std::uint8_t*>(line.data()), line.size());
  const UdpSender::BatchResult r = sender_->send_batch(datagrams);
  stats_.messages_sent += r.sent;
  stats_.records_sent += r.sent;
  stats_.send_errors += r.refused;
  send_calls_ += r.calls;
  if (r.last_error != 0) last_send_error_ = r.last_error;
  queue_.clear();
}

}  // namespace passgate::control
