#include "control/ipfix_exporter.hpp"

#include <algorithm>
#include <array>

#include "control/udp_sender.hpp"

namespace passgate::control {

namespace ipfix {

namespace {

using nat::NatEvent;

// The templates. Every record starts with when (observationTimeMilliseconds,
// RFC 8158's timeStamp) and what (natEvent), then who: the inside address and
// the public address it was given. natPoolId ends each record so a collector
// can tell pools apart. The shapes follow RFC 8158's templates for the
// matching events; fields the gateway does not have (VRF, NAT instance) are
// left out rather than sent as zero.
constexpr FieldSpec kTime{ie::observationTimeMilliseconds, 8};
constexpr FieldSpec kEvent{ie::natEvent, 1};
constexpr FieldSpec kInside{ie::sourceIPv4Address, 4};
constexpr FieldSpec kPublic{ie::postNATSourceIPv4Address, 4};
constexpr FieldSpec kPool{ie::natPoolId, 4};

constexpr std::array kLimitFields{kTime, kEvent, kInside, kPublic, kPool};
constexpr std::array kQuotaFields{kTime, kEvent, FieldSpec{ie::natQuotaExceededEvent, 4}, kInside, kPublic, kPool};
constexpr std::array kBlockFields{kTime,
                                  kEvent,
                                  kInside,
                                  kPublic,
                                  FieldSpec{ie::portRangeStart, 2},
                                  FieldSpec{ie::portRangeEnd, 2},
                                  FieldSpec{ie::portRangeStepSize, 2},
                                  FieldSpec{ie::portRangeNumPorts, 2},
                                  kPool};
constexpr std::array kMappingFields{kTime,
                                    kEvent,
                                    kInside,
                                    kPublic,
                                    FieldSpec{ie::protocolIdentifier, 1},
                                    FieldSpec{ie::sourceTransportPort, 2},
                                    FieldSpec{ie::postNAPTSourceTransportPort, 2},
                                    kPool};
// NAT44 does not rewrite the destination, so its post-NAT fields equal the
// pre-NAT ones; RFC 8158's session template carries both all the same.
constexpr std::array kSessionDestinationFields{kTime,
                                               kEvent,
                                               kInside,
                                               kPublic,
                                               FieldSpec{ie::protocolIdentifier, 1},
                                               FieldSpec{ie::sourceTransportPort, 2},
                                               FieldSpec{ie::postNAPTSourceTransportPort, 2},
                                               FieldSpec{ie::destinationIPv4Address, 4},
                                               FieldSpec{ie::postNATDestinationIPv4Address, 4},
                                               FieldSpec{ie::destinationTransportPort, 2},
                                               FieldSpec{ie::postNAPTDestinationTransportPort, 2},
                                               kPool};

// A deterministic pool's mapping: the pool, its port range and P, and the
// whole mapping as a line (nat::describe_mapping). No natEvent: RFC 8158
// has no value for it; the template says what the record is.
constexpr std::array kDeterministicMappingFields{kTime,
                                                 kPool,
                                                 FieldSpec{ie::natPoolName, variable_length},
                                                 FieldSpec{ie::portRangeStart, 2},
                                                 FieldSpec{ie::portRangeEnd, 2},
                                                 FieldSpec{ie::portRangeNumPorts, 2},
                                                 FieldSpec{ie::deterministicMapping, variable_length,
                                                           ie::passgate_enterprise}};

constexpr std::size_t sum_lengths(std::span<const FieldSpec> fields) {
  std::size_t n = 0;
  for (const FieldSpec& f : fields) n += f.length;
  return n;
}

// The number of ports first, first+step, ... up to last (RFC 8158
// portRangeNumPorts).
std::uint64_t ports_in_range(const NatEvent& e) {
  if (e.port_last < e.port_first) return 0;
  const unsigned step = e.port_step == 0 ? 1 : e.port_step;
  return (e.port_last - e.port_first) / step + 1u;
}

// The value of one field for one event; the field list of the shape decides
// which are asked for, so a template and its records cannot disagree.
std::uint64_t field_value(std::uint16_t id, const NatEvent& e) {
  switch (id) {
    case ie::observationTimeMilliseconds: return e.time_ms;
    case ie::natEvent: return static_cast<std::uint8_t>(nat_event_value(e.type));
    case ie::natQuotaExceededEvent:
      // The engine's session limit is a per-subscriber limit on state.
      return static_cast<std::uint32_t>(QuotaExceeded::max_entries_per_user);
    case ie::sourceIPv4Address: return e.subscriber.host();
    case ie::postNATSourceIPv4Address: return e.public_address.host();
    case ie::natPoolId: return e.pool;
    case ie::portRangeStart: return e.port_first;
    case ie::portRangeEnd: return e.port_last;
    case ie::portRangeStepSize: return e.port_step == 0 ? 1 : e.port_step;
    case ie::portRangeNumPorts: return ports_in_range(e);
    case ie::protocolIdentifier: return e.protocol;
    case ie::sourceTransportPort:
      // A preserved port keeps the inside port by definition; the engine may
      // leave inside_port unset for it.
      return e.inside_port.raw != 0 ? e.inside_port.host() : e.port_first;
    case ie::postNAPTSourceTransportPort: return e.port_first;
    case ie::destinationIPv4Address:
    case ie::postNATDestinationIPv4Address: return e.remote_address.host();
    case ie::destinationTransportPort:
    case ie::postNAPTDestinationTransportPort: return e.remote_port.host();
    default: return 0;
  }
}

void put_be(std::vector<std::uint8_t>& out, std::uint64_t value, unsigned bytes) {
  for (unsigned i = bytes; i-- > 0;) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

void patch_be(std::vector<std::uint8_t>& out, std::size_t at, std::uint64_t value, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * (bytes - 1 - i)));
}

// RFC 7011 section 3.1: version, length, export time, sequence, domain. The
// length is patched when the message is complete.
void put_header(std::vector<std::uint8_t>& out, std::uint32_t export_time_s, std::uint32_t sequence,
                std::uint32_t domain) {
  put_be(out, version, 2);
  put_be(out, 0, 2);
  put_be(out, export_time_s, 4);
  put_be(out, sequence, 4);
  put_be(out, domain, 4);
}

}  // namespace

std::span<const FieldSpec> fields_of(Shape shape) {
  switch (shape) {
    case Shape::limit: return kLimitFields;
    case Shape::quota: return kQuotaFields;
    case Shape::block: return kBlockFields;
    case Shape::mapping: return kMappingFields;
    case Shape::session_destination: return kSessionDestinationFields;
    case Shape::deterministic_mapping: return kDeterministicMappingFields;
  }
  return {};
}

std::size_t record_bytes(Shape shape) { return sum_lengths(fields_of(shape)); }

NatEventValue nat_event_value(nat::NatEvent::Type type) {
  using T = nat::NatEvent::Type;
  switch (type) {
    case T::block_allocated: return NatEventValue::port_block_allocation;
    case T::block_released: return NatEventValue::port_block_deallocation;
    case T::ports_exhausted: return NatEventValue::nat_ports_exhausted;
    case T::pool_exhausted: return NatEventValue::nat_addresses_exhausted;
    case T::session_limit: return NatEventValue::quota_exceeded;
    // A preserved port is one endpoint-independent mapping outside the
    // blocks: a NAT44 BIB entry in RFC 8158's words.
    case T::port_preserved: return NatEventValue::nat44_bib_create;
    case T::port_released: return NatEventValue::nat44_bib_delete;
    case T::session_created: return NatEventValue::nat44_session_create;
    case T::session_deleted: return NatEventValue::nat44_session_delete;
  }
  return NatEventValue::nat_addresses_exhausted;
}

Shape shape_of(const nat::NatEvent& e, bool log_destination) {
  using T = nat::NatEvent::Type;
  switch (e.type) {
    case T::block_allocated:
    case T::block_released: return Shape::block;
    case T::ports_exhausted:
    case T::pool_exhausted: return Shape::limit;
    case T::session_limit: return Shape::quota;
    case T::port_preserved:
    case T::port_released: return Shape::mapping;
    case T::session_created:
    case T::session_deleted: return log_destination ? Shape::session_destination : Shape::mapping;
  }
  return Shape::limit;
}

}  // namespace ipfix

using namespace ipfix;

IpfixEncoder::IpfixEncoder(const IpfixConfig& config)
    : domain_(config.observation_domain_id),
      refresh_ms_(std::uint64_t{config.template_refresh_s} * 1000),
      max_bytes_(std::max(config.max_message_bytes, min_message_bytes)),
      log_destination_(config.log_destination) {}

void IpfixEncoder::open_record(Shape shape, std::size_t bytes, std::vector<IpfixMessage>* out) {
  const auto needed = [&] { return bytes + (set_shape_ == static_cast<int>(shape) ? 0 : set_header_bytes); };
  if (records_ > 0 && current_.size() + needed() > max_bytes_) finish_message(out);
  if (current_.empty()) put_header(current_, 0, 0, domain_);  // export time and sequence set when finished
  if (set_shape_ != static_cast<int>(shape)) {
    close_set();
    set_offset_ = current_.size();
    put_be(current_, template_id(shape), 2);
    put_be(current_, 0, 2);
    set_shape_ = static_cast<int>(shape);
  }
}

void IpfixEncoder::add(const nat::NatEvent& e, std::vector<IpfixMessage>* out) {
  now_ms_ = std::max(now_ms_, e.time_ms);
  const Shape shape = shape_of(e, log_destination_);
  open_record(shape, record_bytes(shape), out);
  for (const FieldSpec& f : fields_of(shape)) put_be(current_, field_value(f.id, e), f.length);
  ++records_;
}

// RFC 7011 section 7: a length below 255 in one byte, else 255 and two
// bytes. A mapping longer than max_message_bytes goes in a message of its
// own, larger than the limit (IP fragments it) rather than not at all.
void IpfixEncoder::add_mapping(const DeterministicMappingEvent& e, std::vector<IpfixMessage>* out) {
  now_ms_ = std::max(now_ms_, e.time_ms);
  const auto prefix = [](std::size_t n) -> std::size_t { return n < 255 ? 1 : 3; };
  const std::size_t name = std::min<std::size_t>(e.pool_name.size(), 0xfffe);
  const std::size_t line = std::min<std::size_t>(e.line.size(), 0xfffe);
  const std::size_t bytes = 8 + 4 + prefix(name) + name + 2 + 2 + 2 + prefix(line) + line;
  open_record(Shape::deterministic_mapping, bytes, out);
  const auto put_string = [&](const std::string& text, std::size_t n) {
    if (n < 255) {
      put_be(current_, n, 1);
    } else {
      put_be(current_, 255, 1);
      put_be(current_, n, 2);
    }
    current_.insert(current_.end(), text.begin(), text.begin() + static_cast<std::ptrdiff_t>(n));
  };
  put_be(current_, e.time_ms, 8);
  put_be(current_, e.pool, 4);
  put_string(e.pool_name, name);
  put_be(current_, e.port_min, 2);
  put_be(current_, e.port_max, 2);
  put_be(current_, std::min<std::uint32_t>(e.ports_per_subscriber, 0xffff), 2);
  put_string(e.line, line);
  ++records_;
}

void IpfixEncoder::flush(std::uint64_t now_unix_ms, std::vector<IpfixMessage>* out) {
  now_ms_ = std::max(now_ms_, now_unix_ms);
  if (records_ > 0) {
    finish_message(out);
    return;
  }
  // Idle: still refresh the templates on time, and announce them at start so
  // the collector knows them before the first data arrives. With refresh 0
  // they ride along with data only.
  if (!templates_sent_ || (refresh_ms_ != 0 && templates_due())) emit_templates(out);
}

bool IpfixEncoder::templates_due() const {
  return !templates_sent_ || refresh_ms_ == 0 || now_ms_ - templates_sent_ms_ >= refresh_ms_;
}

// Every template in use, in as few messages as max_bytes_ allows. Template
// records do not advance the sequence number (RFC 7011 section 3.1).
void IpfixEncoder::emit_templates(std::vector<IpfixMessage>* out) {
  std::vector<std::uint8_t> m;
  std::size_t set_at = 0;
  const auto finish = [&] {
    patch_be(m, set_at + 2, m.size() - set_at, 2);
    patch_be(m, 2, m.size(), 2);
    out->push_back(IpfixMessage{std::move(m), 0});
    m.clear();
  };
  for (unsigned s = 0; s < shape_count; ++s) {
    const Shape shape = static_cast<Shape>(s);
    if (shape == Shape::session_destination && !log_destination_) continue;
    const std::span<const FieldSpec> fields = fields_of(shape);
    std::size_t bytes = 4 + 4 * fields.size();  // RFC 7011 section 3.4.1
    for (const FieldSpec& f : fields) bytes += f.enterprise != 0 ? 4 : 0;
    if (!m.empty() && m.size() + bytes > max_bytes_) finish();
    if (m.empty()) {
      put_header(m, static_cast<std::uint32_t>(now_ms_ / 1000), sequence_, domain_);
      set_at = m.size();
      put_be(m, template_set_id, 2);
      put_be(m, 0, 2);
    }
    put_be(m, template_id(shape), 2);
    put_be(m, fields.size(), 2);
    for (const FieldSpec& f : fields) {
      put_be(m, f.enterprise != 0 ? (f.id | 0x8000u) : f.id, 2);  // RFC 7011 section 3.2: the enterprise bit
      put_be(m, f.length, 2);
      if (f.enterprise != 0) put_be(m, f.enterprise, 4);
    }
  }
  if (!m.empty()) finish();
  templates_sent_ = true;
  templates_sent_ms_ = now_ms_;
}

void IpfixEncoder::close_set() {
  if (set_shape_ < 0) return;
  patch_be(current_, set_offset_ + 2, current_.size() - set_offset_, 2);  // RFC 7011 section 3.3.2
  set_shape_ = -1;
}

void IpfixEncoder::finish_message(std::vector<IpfixMessage>* out) {
  if (records_ == 0) return;
  // RFC 7011 section 8.2/8.4: the templates go before the data they describe.
  if (templates_due()) emit_templates(out);
  close_set();
  patch_be(current_, 2, current_.size(), 2);
  patch_be(current_, 4, now_ms_ / 1000, 4);
  patch_be(current_, 8, sequence_, 4);
  out->push_back(IpfixMessage{std::move(current_), records_});
  sequence_ += records_;  // modulo 2^32 by unsigned arithmetic (RFC 7011 section 10.3.2)
  current_.clear();
  records_ = 0;
}

std::vector<IpfixMessage> encode_ipfix(std::span<const nat::NatEvent> events, const IpfixConfig& config,
                                       std::uint64_t now_unix_ms) {
  IpfixEncoder encoder(config);
  std::vector<IpfixMessage> out;
  for (const nat::NatEvent& e : events) encoder.add(e, &out);
  encoder.flush(now_unix_ms, &out);
  return out;
}

std::unique_ptr<IpfixExporter> IpfixExporter::open(const IpfixConfig& config, std::string* error) {
  if (config.max_message_bytes < min_message_bytes) {
    *error = "IPFIX max_message_bytes must be at least " + std::to_string(min_message_bytes);
    return nullptr;
  }
  std::unique_ptr<UdpSender> sender = UdpSender::connect(config.collector, error);
  if (!sender) {
    *error = "IPFIX collector: " + *error;
    return nullptr;
  }
  return std::unique_ptr<IpfixExporter>(new IpfixExporter(config, std::move(sender)));
}

IpfixExporter::IpfixExporter(const IpfixConfig& config, std::unique_ptr<UdpSender> sender)
    : encoder_(config), sender_(std::move(sender)) {}

IpfixExporter::~IpfixExporter() = default;

void IpfixExporter::add(const nat::NatEvent& e) {
  ++stats_.events;
  encoder_.add(e, &pending_);
  if (!pending_.empty()) send(pending_);
}

void IpfixExporter::add_mapping(const DeterministicMappingEvent& e) {
  ++stats_.events;
  encoder_.add_mapping(e, &pending_);
  if (!pending_.empty()) send(pending_);
}

void IpfixExporter::flush(std::uint64_t now_unix_ms) {
  encoder_.flush(now_unix_ms, &pending_);
  send(pending_);
}

// A message the kernel refuses is lost, and its records stay counted in the
// sequence number, so the collector sees the gap (RFC 7011 section 10.3.2).
void IpfixExporter::send(std::vector<IpfixMessage>& messages) {
  for (const IpfixMessage& m : messages) {
    if (sender_->send(m.bytes)) {
      ++stats_.messages_sent;
      stats_.records_sent += m.data_records;
    } else {
      ++stats_.send_errors;
    }
  }
  messages.clear();
}

}  // namespace passgate::control
