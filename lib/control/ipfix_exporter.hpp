// NAT event logging as IPFIX (RFC 7011) over UDP, with the information
// elements of RFC 8158. Theory of operation:
//
//   The control core drains the workers' event rings and hands every event
//   (time already in Unix milliseconds) to IpfixExporter::add. The exporter
//   maps it to an RFC 8158 natEvent value and one of a few record shapes;
//   each shape has its own template (RFC 7011 section 3.4.1). Records are
//   appended to the message being built and a message is sent as soon as the
//   next record would not fit into max_message_bytes (RFC 7011 section 10.3.3:
//   a message must fit the path MTU). flush() sends what is buffered; the
//   control core calls it about once a second so a quiet gateway still logs
//   promptly.
//
//   Templates travel in messages of their own, before any data that uses
//   them and again every template_refresh_s seconds (RFC 7011 section 8.4:
//   over UDP, templates are retransmitted periodically, and SHOULD come in a
//   separate message ahead of the data). The header's sequence number is the
//   count of data records sent before the message, modulo 2^32 (RFC 7011
//   sections 3.1 and 10.3.2); template records do not count.
//
//   RFC 6888 REQ-12: destinations are logged only when log_destination is on;
//   without it, no record shape even has a destination field.
//
// All the encoding lives in IpfixEncoder, which does no I/O, so the tests can
// check the bytes; IpfixExporter adds the UDP socket and the statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "nat/event_ring.hpp"

namespace passgate::control {

class UdpSender;

// The mapping of one deterministic pool in force from time_ms on (RFC 7422):
// logged at start and at every reload, so the logs prove which subscriber
// held any public port at any time without per-block records.
struct DeterministicMappingEvent {
  std::uint64_t time_ms;   // Unix milliseconds
  std::uint32_t pool;      // index, as in block events
  std::string pool_name;
  std::uint16_t port_min, port_max;
  std::uint32_t ratio, ports_per_subscriber;
  std::string line;        // nat::describe_mapping: the whole mapping, parse_mapping reads it back
};

struct ExportStats {
  std::uint64_t events = 0, records_sent = 0, messages_sent = 0, send_errors = 0;
};

struct IpfixConfig {
  std::string collector;                 // "ADDRESS:PORT" (IPv4), UDP
  std::uint32_t observation_domain_id = 1;
  std::uint32_t template_refresh_s = 600;  // 0: templates before every data message
  std::uint16_t max_message_bytes = 1400;  // the IPFIX message; IPv4 + UDP add 28
  bool log_destination = false;          // RFC 6888 REQ-12: destinations are not logged by default
};

namespace ipfix {

inline constexpr std::uint16_t version = 10;            // RFC 7011 section 3.1
inline constexpr std::uint16_t template_set_id = 2;     // RFC 7011 section 3.3.2
inline constexpr std::uint16_t first_data_set_id = 256;
inline constexpr std::size_t message_header_bytes = 16;
inline constexpr std::size_t set_header_bytes = 4;
// Small enough for any sane MTU, large enough that every template and every
// record fits into one message with its headers.
inline constexpr std::uint16_t min_message_bytes = 128;

// Information element ids from the IANA IPFIX registry (RFC 7012, RFC 8158).
namespace ie {
inline constexpr std::uint16_t protocolIdentifier = 4;
inline constexpr std::uint16_t sourceTransportPort = 7;
inline constexpr std::uint16_t sourceIPv4Address = 8;
inline constexpr std::uint16_t destinationTransportPort = 11;
inline constexpr std::uint16_t destinationIPv4Address = 12;
inline constexpr std::uint16_t postNATSourceIPv4Address = 225;
inline constexpr std::uint16_t postNATDestinationIPv4Address = 226;
inline constexpr std::uint16_t postNAPTSourceTransportPort = 227;
inline constexpr std::uint16_t postNAPTDestinationTransportPort = 228;
inline constexpr std::uint16_t natEvent = 230;
inline constexpr std::uint16_t natPoolId = 283;
inline constexpr std::uint16_t natPoolName = 284;
inline constexpr std::uint16_t observationTimeMilliseconds = 323;
inline constexpr std::uint16_t portRangeStart = 361;
inline constexpr std::uint16_t portRangeEnd = 362;
inline constexpr std::uint16_t portRangeStepSize = 363;
inline constexpr std::uint16_t portRangeNumPorts = 364;
inline constexpr std::uint16_t natQuotaExceededEvent = 466;
// passgate's own element (enterprise bit set, RFC 7011 section 3.2), under
// the Private Enterprise Number IANA reserves for documentation (RFC 5612),
// as the syslog SD-ID is: the deterministic mapping line, a string.
inline constexpr std::uint32_t passgate_enterprise = 32473;
inline constexpr std::uint16_t deterministicMapping = 1;
}  // namespace ie

// RFC 7011 section 7: a field of variable length.
inline constexpr std::uint16_t variable_length = 0xffff;

// natEvent values, RFC 8158 section 4.3 (IANA "NAT Event Type"). 1 and 2
// are historic; NAT44 sessions are 4 and 5.
enum class NatEventValue : std::uint8_t {
  nat_addresses_exhausted = 3,
  nat44_session_create = 4,
  nat44_session_delete = 5,
  nat44_bib_create = 8,
  nat44_bib_delete = 9,
  nat_ports_exhausted = 12,
  quota_exceeded = 13,
  port_block_allocation = 16,
  port_block_deallocation = 17,
};

// natQuotaExceededEvent values (RFC 8158, IANA "NAT Quota Exceeded Event Type").
enum class QuotaExceeded : std::uint32_t {
  max_session_entries = 1,
  max_bib_entries = 2,
  max_entries_per_user = 3,
  max_active_hosts = 4,
  max_fragments_pending = 5,
};

// The record shapes, one template each (template id = 256 + shape).
//   limit    pool/ports exhausted: who, which public address, which pool
//   quota    a per-subscriber limit: natQuotaExceededEvent added
//   block    port block (de)allocation: the range, its step and size
//   mapping  a single translated port: a preserved port (NAT44 BIB entry)
//            or a session without destination
//   session_destination  a session with the remote end (log_destination only)
//   deterministic_mapping  a deterministic pool's mapping (variable length:
//            the pool's name and the mapping line; IpfixEncoder::add_mapping)
enum class Shape : std::uint8_t { limit, quota, block, mapping, session_destination, deterministic_mapping };
inline constexpr unsigned shape_count = 6;

struct FieldSpec {
  std::uint16_t id;
  std::uint16_t length;          // variable_length: a 1 or 3 byte length prefix in each record
  std::uint32_t enterprise = 0;  // 0: an IANA element
};

std::span<const FieldSpec> fields_of(Shape shape);
std::size_t record_bytes(Shape shape);
constexpr std::uint16_t template_id(Shape shape) { return static_cast<std::uint16_t>(first_data_set_id + static_cast<unsigned>(shape)); }
Shape shape_of(const nat::NatEvent& e, bool log_destination);
NatEventValue nat_event_value(nat::NatEvent::Type type);

}  // namespace ipfix

// One IPFIX message and how many data records it carries (0 for templates).
struct IpfixMessage {
  std::vector<std::uint8_t> bytes;
  std::uint32_t data_records = 0;
};

// The IPFIX encoding state of one Transport Session and Observation Domain:
// the message being built, the sequence number and when templates were last
// sent. Deterministic: time comes only from the events and flush().
class IpfixEncoder {
 public:
  explicit IpfixEncoder(const IpfixConfig& config);

  // Appends the event's record; messages that became full go to *out.
  void add(const nat::NatEvent& e, std::vector<IpfixMessage>* out);
  void add_mapping(const DeterministicMappingEvent& e, std::vector<IpfixMessage>* out);
  // The buffered records as a message, and a template message first when the
  // templates are due (also when nothing is buffered: a refresh).
  void flush(std::uint64_t now_unix_ms, std::vector<IpfixMessage>* out);

  // Data records in the messages handed out so far (the next sequence number).
  [[nodiscard]] std::uint32_t sequence() const { return sequence_; }
  [[nodiscard]] std::uint32_t buffered_records() const { return records_; }

 private:
  [[nodiscard]] bool templates_due() const;
  void emit_templates(std::vector<IpfixMessage>* out);
  void finish_message(std::vector<IpfixMessage>* out);
  void close_set();
  // Room for a record of `bytes` of `shape`, the set opened if need be.
  void open_record(ipfix::Shape shape, std::size_t bytes, std::vector<IpfixMessage>* out);

  std::uint32_t domain_;
  std::uint64_t refresh_ms_;
  std::size_t max_bytes_;
  bool log_destination_;

  std::uint64_t now_ms_ = 0;
  bool templates_sent_ = false;
  std::uint64_t templates_sent_ms_ = 0;
  std::uint32_t sequence_ = 0;

  std::vector<std::uint8_t> current_;
  std::uint32_t records_ = 0;
  std::size_t set_offset_ = 0;  // where the open data set's header is
  int set_shape_ = -1;          // the open data set's shape, -1 when none
};

// Pure helper for tests and tools: a fresh session's messages for events,
// flushed at now_unix_ms (templates first).
std::vector<IpfixMessage> encode_ipfix(std::span<const nat::NatEvent> events, const IpfixConfig& config,
                                       std::uint64_t now_unix_ms);

class IpfixExporter {
 public:
  // nullptr and *error for a collector that is not "IPv4:PORT", an unusable
  // max_message_bytes, or no socket.
  static std::unique_ptr<IpfixExporter> open(const IpfixConfig& config, std::string* error);
  ~IpfixExporter();
  IpfixExporter(const IpfixExporter&) = delete;
  IpfixExporter& operator=(const IpfixExporter&) = delete;

  void add(const nat::NatEvent& e);            // buffers; sends a full message at once
  void add_mapping(const DeterministicMappingEvent& e);
  void flush(std::uint64_t now_unix_ms);       // sends what is buffered; resends templates when due
  [[nodiscard]] const ExportStats& stats() const { return stats_; }

 private:
  IpfixExporter(const IpfixConfig& config, std::unique_ptr<UdpSender> sender);
  void send(std::vector<IpfixMessage>& messages);

  IpfixEncoder encoder_;
  std::unique_ptr<UdpSender> sender_;
  std::vector<IpfixMessage> pending_;
  ExportStats stats_;
};

}  // namespace passgate::control
