#include "config/yaml_checker.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <sstream>

#include "packet/address.hpp"
#include "packet/address_text.hpp"

namespace passgate::config {

using packet::text::parse_ipv4;
using packet::text::parse_mac;
using packet::text::parse_prefix;
using packet::text::parse_uint;

std::string join(std::span<const std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string got(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "'" + n.Scalar() + "'";
}

int line_of(const YAML::Mark& m) { return m.line >= 0 ? m.line + 1 : 0; }

// ------------------------------------------------------------ Checker

void Checker::error_at(Code code, const YAML::Mark& m, std::string message) {
  ConfigError e{file_, line_of(m), 0, std::move(message), code};
  if (e.line > 0) e.column = m.column >= 0 ? m.column + 1 : 1;
  errors_.push_back(std::move(e));
}

void Checker::error(Code code, const Field& f, std::string_view message) {
  const bool empty = !f.node.IsDefined() || f.node.IsNull();
  error_at(code, empty ? f.key_mark : f.node.Mark(),
           f.path.empty() ? std::string(message) : f.path + ": " + std::string(message));
}

void Checker::error_at_key(Code code, const Field& f, std::string_view message) {
  error_at(code, f.key_mark, f.path.empty() ? std::string(message) : f.path + ": " + std::string(message));
}

std::optional<std::string> Checker::text(const Field& f, std::string_view expected) {
  if (!f.node.IsScalar()) {
    error(Code::wrong_type, f, fmt::format("expected {}, got {}", expected, got(f.node)));
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<std::uint64_t> Checker::integer(const Field& f, std::uint64_t min, std::uint64_t max,
                                              std::string_view unit, std::string_view minimum_note) {
  const std::string range = unit.empty() ? fmt::format("an integer from {} to {}", min, max)
                                         : fmt::format("an integer from {} to {} ({})", min, max, unit);
  const auto s = text(f, range);
  if (!s) return std::nullopt;
  const auto v = parse_uint(*s);
  if (!v) {
    error(Code::not_a_number, f, fmt::format("expected {}, got '{}'", range, *s));
    return std::nullopt;
  }
  if (*v < min && !minimum_note.empty()) {
    error(Code::out_of_range, f, fmt::format("{} is below {}; expected {}", *v, minimum_note, range));
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    error(Code::out_of_range, f, fmt::format("expected {}, got {}", range, *v));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Checker::boolean(const Field& f) {
  const auto s = text(f, "true or false");
  if (!s) return std::nullopt;
  const std::string& tag = f.node.Tag();
  const bool plain = tag == "?" || tag == "tag:yaml.org,2002:bool";
  if (plain && (*s == "true" || *s == "True" || *s == "TRUE")) return true;
  if (plain && (*s == "false" || *s == "False" || *s == "FALSE")) return false;
  if (tag == "!") {
    error(Code::not_a_boolean, f,
          fmt::format("expected true or false, got the quoted string '{}'; write the boolean without quotes", *s));
  } else if (plain && (*s == "yes" || *s == "no" || *s == "on" || *s == "off" || *s == "y" || *s == "n" ||
                       *s == "Yes" || *s == "No" || *s == "On" || *s == "Off" || *s == "YES" || *s == "NO" ||
                       *s == "ON" || *s == "OFF")) {
    error(Code::not_a_boolean, f,
          fmt::format("expected true or false, got '{}' (a YAML 1.1 spelling, not a boolean here)", *s));
  } else {
    error(Code::not_a_boolean, f, fmt::format("expected true or false, got '{}'", *s));
  }
  return std::nullopt;
}

std::optional<std::string> Checker::name(const Field& f, std::string_view example) {
  const std::string expected =
      fmt::format("a name of 1 to 32 lowercase letters, digits, '_' or '-' like {}", example);
  const auto s = text(f, expected);
  if (!s) return std::nullopt;
  const bool ok = !s->empty() && s->size() <= 32 && std::all_of(s->begin(), s->end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
  if (!ok) {
    error(Code::bad_name, f, fmt::format("expected {}, got '{}'", expected, *s));
    return std::nullopt;
  }
  return s;
}

std::optional<be32> Checker::address(const Field& f, std::string_view example) {
  const std::string expected = fmt::format("an IPv4 address like {}", example);
  const auto s = text(f, expected);
  if (!s) return std::nullopt;
  const auto a = parse_ipv4(*s);
  if (!a) {
    error(Code::bad_address, f, fmt::format("expected {}, got '{}'", expected, *s));
    return std::nullopt;
  }
  if (const packet::ReservedBlock* r = packet::reserved_in(a->host(), a->host())) {
    error(Code::reserved_address, f, fmt::format("{} is in {}; expected a unicast address", *s, r->what));
    return std::nullopt;
  }
  return a;
}

std::optional<Ipv4Prefix> Checker::network_prefix(const Field& f, std::string_view example) {
  const std::string expected = fmt::format("an IPv4 prefix like {}", example);
  const auto s = text(f, expected);
  if (!s) return std::nullopt;
  const auto p = parse_prefix(*s);
  if (!p) {
    error(Code::bad_prefix, f, fmt::format("expected {}, got '{}'", expected, *s));
    return std::nullopt;
  }
  if (p->address.host() != p->network()) {
    error(Code::host_bits, f, fmt::format("{} has host bits set; expected the network address {}", *s, to_string(*p)));
    return std::nullopt;
  }
  return p;
}

// ------------------------------------------------------------ Mapping

Mapping::Mapping(Checker& c, const Field& f, std::span<const std::string_view> keys) : c_(c), f_(f) {
  if (!f.node.IsMap()) {
    c.error(Code::wrong_type, f, fmt::format("expected a mapping with the keys {}, got {}", join(keys), got(f.node)));
    return;
  }
  ok_ = true;
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      c.error_at(Code::wrong_type, key.Mark(), fmt::format("expected a key name in {}, got {}", where(), got(key)));
      continue;
    }
    const std::string& k = key.Scalar();
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      c.error_at(Code::unknown_key, key.Mark(),
                 fmt::format("unknown key '{}' in {}; expected one of: {}", k, where(), join(keys)));
      continue;
    }
    if (const Field* first = get(k)) {
      c.error_at(Code::duplicate_key, key.Mark(),
                 fmt::format("duplicate key '{}' in {}; first given on line {}", k, where(), line_of(first->key_mark)));
      continue;
    }
    entries_.emplace_back(k, Field{it->second, key.Mark(), f.path.empty() ? k : f.path + "." + k});
  }
}

const Field* Mapping::get(std::string_view key) const {
  for (const auto& [k, field] : entries_)
    if (k == key) return &field;
  return nullptr;
}

const Field* Mapping::require(std::string_view key) const {
  if (!ok_) return nullptr;
  const Field* f = get(key);
  if (!f) c_.error_at(Code::missing_key, f_.key_mark, fmt::format("missing required key '{}' in {}", key, where()));
  return f;
}

// ------------------------------------------------------------ values

std::optional<std::vector<Field>> sequence(Checker& c, const Field& f, std::string_view of_what, bool may_be_empty) {
  std::vector<Field> items;
  if (f.node.IsNull()) {
    if (may_be_empty) return items;
    c.error(Code::wrong_type, f, fmt::format("expected a list of {}, got nothing", of_what));
    return std::nullopt;
  }
  if (!f.node.IsSequence()) {
    c.error(Code::wrong_type, f, fmt::format("expected a list of {}, got {}", of_what, got(f.node)));
    return std::nullopt;
  }
  std::size_t i = 0;
  for (const YAML::Node& item : f.node) {
    items.push_back(Field{item, item.Mark(), fmt::format("{}[{}]", f.path, i)});
    ++i;
  }
  if (items.empty() && !may_be_empty) {
    c.error(Code::empty_list, f, fmt::format("expected at least one of {}, got an empty list", of_what));
    return std::nullopt;
  }
  return items;
}

void set_bool(Checker& c, const Mapping& m, std::string_view key, bool& out) {
  if (const Field* f = m.get(key))
    if (const auto v = c.boolean(*f)) out = *v;
}

std::optional<MacAddress> unicast_mac(Checker& c, const Field& f) {
  const std::string_view expected = "a unicast MAC address like 02:00:00:00:00:10";
  const auto s = c.text(f, expected);
  if (!s) return std::nullopt;
  const auto mac = parse_mac(*s);
  if (!mac)
    c.error(Code::bad_mac, f, fmt::format("expected {}, got '{}'", expected, *s));
  else if (mac->bytes[0] & 1)
    c.error(Code::bad_mac, f,
            fmt::format("{} is a multicast MAC address (first octet odd); expected {}", *s, expected));
  else if (*mac == MacAddress{})
    c.error(Code::bad_mac, f, fmt::format("{} is the zero MAC address; expected {}", *s, expected));
  else
    return mac;
  return std::nullopt;
}

// Where each YAML document of the text starts. yaml-cpp 0.7's LoadAll loops
// forever on a stray ',' where a document should start (the parser reports an
// empty document without consuming the token), so documents are walked here
// first with a parser that only records their starts; a document starting
// where the previous one did is that case, reported as a syntax error.
// Syntax errors elsewhere are thrown as YAML::ParserException.
std::vector<YAML::Mark> document_starts(const std::string& text, Checker& c) {
  struct Starts : YAML::EventHandler {
    std::vector<YAML::Mark> marks;
    void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  } starts;
  std::istringstream in(text);
  YAML::Parser parser(in);
  while (parser.HandleNextDocument(starts)) {
    const std::size_t n = starts.marks.size();
    if (n >= 2 && starts.marks[n - 1].pos == starts.marks[n - 2].pos) {
      const YAML::Mark& at = starts.marks[n - 1];
      const std::size_t pos = static_cast<std::size_t>(at.pos);
      c.error_at(Code::yaml_syntax, at,
                 fmt::format("YAML syntax error: unexpected '{}'", pos < text.size() ? text.substr(pos, 1) : ""));
      break;
    }
  }
  return starts.marks;
}

}  // namespace passgate::config
