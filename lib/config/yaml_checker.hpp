// The generic half of reading a YAML configuration: values with their
// place in the document, and a checker that reports every problem with file,
// line and column and never stops at one. Nothing here knows a section of
// passgate's file; the readers (config/read_*.cpp) do.
//
// A value that does not fit is reported (what was expected, what was found)
// and the reader gets nullopt, so it keeps its default and reading goes on.
// yaml-cpp's marks are 0-based; reports are 1-based. yaml-cpp throws: only
// lib/config (built with exceptions) includes this header.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/gateway_config.hpp"

namespace passgate::config {

using Code = ConfigErrorCode;

// "a, b, c".
std::string join(std::span<const std::string_view> items);
// What a node holds, for "expected X, got Y": 'text', a list, a mapping, nothing.
std::string got(const YAML::Node& n);
int line_of(const YAML::Mark& m);  // 1-based; 0 when yaml-cpp has no place

// A value in the document, where its key (or list item) is, and its path.
struct Field {
  YAML::Node node;
  YAML::Mark key_mark;
  std::string path;  // "nat.pools[0].ports"; empty for the top level
};

class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void error_at(Code code, const YAML::Mark& m, std::string message);
  // At the value; an empty value is reported at its key (yaml-cpp places it
  // where the next token starts).
  void error(Code code, const Field& f, std::string_view message);
  // At the key: for a problem with a list or mapping as a whole.
  void error_at_key(Code code, const Field& f, std::string_view message);

  [[nodiscard]] std::size_t count() const { return errors_.size(); }
  std::vector<ConfigError> take() { return std::move(errors_); }

  std::optional<std::string> text(const Field& f, std::string_view expected);
  // minimum_note names the rule behind `min` ("the minimum of 120 s (RFC 4787 REQ-5)").
  std::optional<std::uint64_t> integer(const Field& f, std::uint64_t min, std::uint64_t max, std::string_view unit = {},
                                       std::string_view minimum_note = {});
  // A YAML boolean: plain true or false (YAML 1.2 also spells them True, TRUE,
  // False, FALSE). YAML 1.1's yes/no/on/off, 1/0 and quoted strings are refused.
  std::optional<bool> boolean(const Field& f);
  std::optional<std::string> name(const Field& f, std::string_view example);
  // A unicast host address (not in packet::reserved_blocks).
  std::optional<be32> address(const Field& f, std::string_view example);
  // A prefix naming a network: no host bits set.
  std::optional<Ipv4Prefix> network_prefix(const Field& f, std::string_view example);

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

// A mapping with a fixed set of keys: wrong type, unknown keys and repeated
// keys are reported when it is opened.
class Mapping {
 public:
  Mapping(Checker& c, const Field& f, std::initializer_list<std::string_view> keys)
      : Mapping(c, f, std::span<const std::string_view>(keys.begin(), keys.size())) {}
  // Keys from a table (the passthrough protocols).
  Mapping(Checker& c, const Field& f, std::span<const std::string_view> keys);

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const Field* get(std::string_view key) const;
  // Missing keys are reported at the mapping's own key (or list item).
  const Field* require(std::string_view key) const;

 private:
  [[nodiscard]] std::string where() const { return f_.path.empty() ? "the top level" : f_.path; }

  Checker& c_;
  Field f_;
  bool ok_ = false;
  std::vector<std::pair<std::string, Field>> entries_;
};

// A list; an empty value (every item commented out) is an empty list.
std::optional<std::vector<Field>> sequence(Checker& c, const Field& f, std::string_view of_what, bool may_be_empty);

template <typename T>
void set_integer(Checker& c, const Mapping& m, std::string_view key, T& out, std::uint64_t min, std::uint64_t max,
                 std::string_view unit = {}, std::string_view minimum_note = {}) {
  if (const Field* f = m.get(key))
    if (const auto v = c.integer(*f, min, max, unit, minimum_note)) out = static_cast<T>(*v);
}

void set_bool(Checker& c, const Mapping& m, std::string_view key, bool& out);

std::optional<MacAddress> unicast_mac(Checker& c, const Field& f);

// Where each YAML document of the text starts (see yaml_checker.cpp for why
// this walk comes before YAML::Load). Syntax errors are thrown as
// YAML::ParserException.
std::vector<YAML::Mark> document_starts(const std::string& text, Checker& c);

}  // namespace passgate::config
