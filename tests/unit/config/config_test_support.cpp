#include "config_test_support.hpp"

#include <algorithm>

namespace passgate::config::testing {

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "test bug: '" << from << "' not in the document";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

LoadResult parse(const std::string& text) { return parse_gateway_config(text, "test.yaml"); }

std::string describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + to_string(e) + " [" + to_string(e.code) + "]\n";
  return out;
}

bool mentions(const std::vector<ConfigError>& errors, const std::string& text) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const ConfigError& e) { return e.message.find(text) != std::string::npos; });
}

void expect_one_error(const std::string& yaml, int line, int column, Code code, const std::string& text) {
  const LoadResult r = parse(yaml);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, line) << describe(r.errors);
  EXPECT_EQ(r.errors[0].column, column) << describe(r.errors);
  EXPECT_STREQ(to_string(r.errors[0].code), to_string(code)) << describe(r.errors);
  EXPECT_NE(r.errors[0].message.find(text), std::string::npos) << describe(r.errors);
}

void expect_rows(const std::vector<ErrorRow>& rows) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i) + ": '" + rows[i].text + "'");
    expect_one_error(rows[i].yaml, rows[i].line, rows[i].column, rows[i].code, rows[i].text);
  }
}

}  // namespace passgate::config::testing
