// The generic checker (lib/config/yaml_checker): the document's shape,
// unknown, duplicate and missing keys, YAML syntax errors and empty values,
// each at its line and column.
#include <gtest/gtest.h>

#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"

namespace passgate::config::testing {
namespace {

TEST(GatewayConfig, DocumentShape) {
  expect_rows({
      {"just a string\n", 1, 1, Code::wrong_type, "expected a mapping with the keys dataplane, ports, nat"},
      {minimal + "---\nports: []\n", 16, 1, Code::document, "a second YAML document"},
      {minimal + "extra: 1\n", 16, 1, Code::unknown_key, "unknown key 'extra' in the top level"},
      {"# comment\n" + with(minimal,
                            "nat:\n  pools:\n    - name: cgn\n      subscribers: [100.64.0.0/10]\n"
                            "      public: [198.51.100.10-198.51.100.13]\n",
                            ""),
       2, 1, Code::missing_key, "missing required key 'nat' in the top level"},
      {minimal.substr(0, minimal.find("nat:")) + "nat:\n  max_sessions: 10\n", 11, 1, Code::missing_key,
       "missing required key 'pools' in nat"},
      {with(minimal, "      subscribers: [100.64.0.0/10]\n", "      subscribers: []\n"), 14, 20, Code::empty_list,
       "expected at least one of subscriber prefixes"},
      {"ports:\n" + minimal.substr(minimal.find("nat:")), 1, 1, Code::wrong_type,
       "expected a list of ports (one inside, one outside), got nothing"},
  });
}

TEST(GatewayConfig, YamlSyntaxErrorHasItsPosition) {
  const LoadResult r = parse("ports:\n  - name: inside\n   role: x\n");
  ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
  // yaml-cpp 0.7's LoadAll never returns on these; they must be errors, fast.
  expect_rows({
      {",\n" + minimal, 1, 1, Code::yaml_syntax, "YAML syntax error: unexpected ','"},
      {"- a\n,\n", 2, 1, Code::yaml_syntax, "YAML syntax error: unexpected ','"},
  });
}

TEST(GatewayConfig, EmptyValueIsReportedAtItsKey) {
  // yaml-cpp places an empty value where the next token starts; the key is
  // the useful place.
  expect_one_error(with(minimal, "gateway: 198.51.100.254", "gateway:"), 10, 5, Code::wrong_type,
                   "ports[1].gateway: expected an IPv4 address like 198.51.100.254, got nothing");
}

}  // namespace
}  // namespace passgate::config::testing
