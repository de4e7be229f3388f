#include "packet/address_text.hpp"

#include <charconv>

namespace passgate::packet {

namespace text {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s)
    if (ch < '0' || ch > '9') return false;
  return true;
}

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return ch - 'A' + 10;
}

}  // namespace

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  // from_chars alone would take a leading '-' for signed types and stop at
  // the first non-digit; both are refused here.
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<be32> parse_ipv4(std::string_view s) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t end = i < 3 ? s.find('.') : s.size();
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view part = s.substr(0, end);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
    const auto octet = parse_uint(part);
    if (!octet || *octet > 255) return std::nullopt;
    value = (value << 8) | static_cast<std::uint32_t>(*octet);
    s = i < 3 ? s.substr(end + 1) : std::string_view{};
  }
  return be32::from_host(value);
}

std::optional<Ipv4Prefix> parse_prefix(std::string_view s) {
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address = parse_ipv4(s.substr(0, slash));
  const std::string_view len_text = s.substr(slash + 1);
  if (!address || len_text.empty() || len_text.size() > 2) return std::nullopt;
  const auto length = parse_uint(len_text);
  if (!length || *length > 32) return std::nullopt;
  return Ipv4Prefix{*address, static_cast<std::uint8_t>(*length)};
}

std::optional<MacAddress> parse_mac(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddress mac;
  for (std::size_t i = 0; i < 6; ++i) {
    const char hi = s[i * 3], lo = s[i * 3 + 1];
    if (!is_hex_digit(hi) || !is_hex_digit(lo) || (i < 5 && s[i * 3 + 2] != ':')) return std::nullopt;
    mac.bytes[i] = static_cast<std::uint8_t>(hex_value(hi) << 4 | hex_value(lo));
  }
  return mac;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.size() > 5) return std::nullopt;
  const auto v = parse_uint(s);
  if (!v || *v == 0 || *v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

std::optional<Ipv4Endpoint> parse_endpoint(std::string_view s) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto address = parse_ipv4(s.substr(0, colon));
  const auto port = parse_port(s.substr(colon + 1));
  if (!address || !port) return std::nullopt;
  return Ipv4Endpoint{*address, *port};
}

}  // namespace text

namespace {

// Appends v in decimal; to_chars never fails for a buffer this size.
void append_decimal(std::string& out, std::uint32_t v) {
  char digits[10];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  (void)ec;
  out.append(digits, end);
}

void append_ipv4(std::string& out, std::uint32_t host) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    append_decimal(out, (host >> shift) & 0xffu);
    if (shift) out += '.';
  }
}

}  // namespace

std::string to_string(be32 address) {
  std::string out;
  append_ipv4(out, address.host());
  return out;
}

std::string to_string(const Ipv4Prefix& p) {
  std::string out;
  append_ipv4(out, p.network());
  out += '/';
  append_decimal(out, p.length);
  return out;
}

std::string to_string(const AddressRange& r) {
  std::string out;
  append_ipv4(out, r.first.host());
  if (r.first == r.last) return out;
  out += '-';
  append_ipv4(out, r.last.host());
  return out;
}

std::string to_string(const Ipv4Endpoint& e) {
  std::string out;
  append_ipv4(out, e.address.host());
  out += ':';
  append_decimal(out, e.port);
  return out;
}

std::string to_string(const MacAddress& mac) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < mac.bytes.size(); ++i) {
    if (i) out += ':';
    out += hex[mac.bytes[i] >> 4];
    out += hex[mac.bytes[i] & 0xf];
  }
  return out;
}

}  // namespace passgate::packet
