// NAT event logging as RFC 5424 syslog messages over UDP (RFC 5426), for
// operators whose log pipeline is syslog rather than an IPFIX collector.
// Theory of operation: the control core hands every drained event to add(),
// which formats it into one message for one datagram (RFC 5426 section 3.1)
// and queues it; flush(), called after each drain, sends the queue in as few
// sendmmsg() calls as it takes (64 datagrams a call), so a burst of events
// costs a handful of system calls rather than one each. add() flushes by
// itself when max_queued messages wait. Sends never block: every datagram the
// socket refuses (buffer full, ENOBUFS, ICMP-reported ECONNREFUSED, ...) is
// dropped and counted in stats().send_errors, exported as
// passgate_export_errors_total{exporter="syslog"} and the telemetry field
// syslog_errors; so events == messages_sent + send_errors + queued(). A line
// looks like
//
//   <134>1 2026-11-21T10:00:00.123Z cgn1 passgate 4242 NAT-BLOCK-ALLOC
//     [passgate@32473 inside="100.64.0.5" public="192.0.2.1" port-start="1024"
//     port-end="1535" port-step="1" pool="0"] 100.64.0.5 -> 192.0.2.1 ports 1024-1535 allocated
//
// (one line on the wire). The MSGID names the event, the structured data
// carries its fields for machines, and MSG repeats them for people. Time is
// the event's, in UTC with milliseconds (RFC 5424 section 6.2.3).
// RFC 6888 REQ-12: session destinations appear only with log_destination.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/ipfix_exporter.hpp"  // ExportStats
#include "nat/event_ring.hpp"

namespace passgate::control {

class UdpSender;

struct SyslogConfig {
  std::string server;                    // "ADDRESS:PORT" (IPv4), UDP
  int facility = 16;                     // local0 (RFC 5424 section 6.2.1)
  std::string hostname;                  // empty: this machine's name
  bool log_destination = false;          // RFC 6888 REQ-12
  // The SD-ID of the structured data. RFC 5424 section 7.2.2: a name of our
  // own takes the form name@<private enterprise number>; 32473 is the number
  // IANA reserves for documentation (RFC 5612). Operators with their own
  // number can put it here.
  std::string sd_id = "passgate@32473";
};

// RFC 5424 severities used for NAT events.
inline constexpr int syslog_warning = 4;
inline constexpr int syslog_informational = 6;

// The MSGID of an event type, e.g. "NAT-BLOCK-ALLOC".
const char* syslog_msgid(nat::NatEvent::Type type);
// Warning for exhaustion and limits, informational for the rest.
int syslog_severity(nat::NatEvent::Type type);

// One RFC 5424 message, without a trailing newline (RFC 5426: one message per
// datagram, no framing). procid is the PROCID field ("-" when unknown); an
// empty config.hostname becomes the NILVALUE "-".
std::string format_syslog(const nat::NatEvent& e, const SyslogConfig& config, std::string_view procid);

// A deterministic pool's mapping (MSGID NAT-DET-MAP, informational): the
// structured data names the pool; MSG is "deterministic mapping in force: "
// and the mapping line (nat::describe_mapping), which passgate-lookup reads.
std::string format_syslog_mapping(const DeterministicMappingEvent& e, const SyslogConfig& config,
                                  std::string_view procid);

// Checks what format_syslog trusts: facility 0..23, hostname and SD-ID in
// RFC 5424's character sets and lengths. Empty string when fine.
std::string validate_syslog_config(const SyslogConfig& config);

class SyslogExporter {
 public:
  static std::unique_ptr<SyslogExporter> open(const SyslogConfig& config, std::string* error);
  ~SyslogExporter();
  SyslogExporter(const SyslogExporter&) = delete;
  SyslogExporter& operator=(const SyslogExporter&) = delete;

  static constexpr std::size_t max_queued = 4096;

  void add(const nat::NatEvent& e);            // formats and queues (flushes at max_queued)
  void add_mapping(const DeterministicMappingEvent& e);
  void flush(std::uint64_t now_unix_ms);       // sends everything queued
  [[nodiscard]] const ExportStats& stats() const { return stats_; }
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }
  // System calls made to send (sendmmsg, and send for a lone retry).
  [[nodiscard]] std::uint64_t send_calls() const { return send_calls_; }
  // errno of the last refused datagram (0: none yet).
  [[nodiscard]] int last_send_error() const { return last_send_error_; }

 private:
  SyslogExporter(SyslogConfig config, std::unique_ptr<UdpSender> sender);

  SyslogConfig config_;
  std::string procid_;
  std::unique_ptr<UdpSender> sender_;
  ExportStats stats_;
  std::vector<std::string> queue_;  // formatted messages of this drain
  std::uint64_t send_calls_ = 0;
  int last_send_error_ = 0;
};

}  // namespace passgate::control
