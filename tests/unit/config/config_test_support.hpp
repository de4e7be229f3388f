// What the configuration tests share: the smallest valid file and ways to
// change one piece of it, and the one check most of them make: exactly one
// error, at line:column, of a kind, whose message holds a phrase. Tests that
// make that check many times list their cases as rows (ErrorRow).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/gateway_config.hpp"
#include "support/minimal_config.hpp"

#ifndef PASSGATE_SOURCE_DIR
#error "PASSGATE_SOURCE_DIR must name the source tree (set in tests/unit/meson.build)"
#endif

namespace passgate::config::testing {

using Code = ConfigErrorCode;

inline const std::filesystem::path source_dir{PASSGATE_SOURCE_DIR};

// The smallest valid file; tests replace one piece of it.
inline const std::string& minimal = passgate::testing::minimal_gateway_yaml;

// `text` with the first `from` replaced by `to` (a test bug when absent).
std::string with(std::string text, const std::string& from, const std::string& to);
LoadResult parse(const std::string& text);  // as file "test.yaml"
std::string describe(const std::vector<ConfigError>& errors);
bool mentions(const std::vector<ConfigError>& errors, const std::string& text);

// Exactly one error, at line:column, of that kind, whose message contains `text`.
void expect_one_error(const std::string& yaml, int line, int column, Code code, const std::string& text);

struct ErrorRow {
  std::string yaml;
  int line, column;
  Code code;
  std::string text;  // a phrase of the message
};
// expect_one_error for each row, the row's number and phrase in any failure.
void expect_rows(const std::vector<ErrorRow>& rows);

}  // namespace passgate::config::testing
