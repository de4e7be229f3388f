// YAML to GatewayConfig, with every problem reported at once.
//
// Theory of operation: the document is walked once, section by section, by
// small readers that never stop at a problem (config/read_*.cpp, over the
// generic checker in config/yaml_checker.hpp). A value that does not fit is
// reported (file, line, column, what was expected, what was found) and left at
// its default, so one run lists every mistake in the file. Rules between
// fields (on-link next hops, one inside and one outside port, pool overlaps,
// static mappings against dynamic port ranges, sizes that cannot work) run on
// the values that did parse and skip what depends on a value already
// reported, so one typo is not reported three times. Last, NatConfig::validate()
// (the engine's own check) runs on the pools and static mappings that passed;
// anything it finds that was not already reported is added at the `nat` key,
// so no rule the engine enforces can be missed here.
//
// yaml-cpp throws; that stays inside lib/config (the core libraries are built
// without exceptions). Marks from yaml-cpp are 0-based and reported 1-based.
#include "config/gateway_config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>

#include "config/readers.hpp"
#include "config/yaml_checker.hpp"

namespace passgate::config {

const char* to_string(ConfigErrorCode code) {
  switch (code) {
#define PASSGATE_X(name) \
  case ConfigErrorCode::name: return #name;
    PASSGATE_CONFIG_ERRORS(PASSGATE_X)
#undef PASSGATE_X
  }
  return "?";
}

std::string to_string(const ConfigError& e) {
  if (e.line <= 0) return fmt::format("{}: error: {}", e.file, e.message);
  return fmt::format("{}:{}:{}: error: {}", e.file, e.line, e.column, e.message);
}

LoadResult parse_gateway_config(const std::string& yaml_text, const std::string& source_name) {
  LoadResult result;
  Checker c(source_name);
  std::vector<YAML::Mark> documents;
  YAML::Node root;
  try {
    documents = document_starts(yaml_text, c);
    if (c.count() == 0 && !documents.empty()) root = YAML::Load(yaml_text);  // the first document
  } catch (const YAML::Exception& e) {
    c.error_at(Code::yaml_syntax, e.mark, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    c.error_at(Code::yaml_syntax, YAML::Mark::null_mark(), std::string("cannot parse YAML: ") + e.what());
  }
  if (c.count() > 0) {
    result.errors = c.take();
    return result;
  }

  GatewayConfig g;
  g.source = source_name;
  try {
    if (documents.empty()) {
      c.error_at(Code::document, YAML::Mark::null_mark(),
                 "the file holds no YAML document; expected a mapping with the keys "
                 "dataplane, ports and nat");
    } else {
      if (documents.size() > 1)
        c.error_at(Code::document, documents[1],
                   "a second YAML document; expected the whole configuration in one document");
      YAML::Mark root_mark = root.Mark();
      if (root_mark.line < 0) root_mark = YAML::Mark{};
      const Field top{root, root_mark, ""};
      const Mapping m(c, top, {"dataplane", "ports", "nat", "control", "health"});
      if (m.ok()) {
        std::vector<PortSeen> ports;
        std::vector<PoolSeen> pools;
        std::vector<StaticSeen> statics;
        DataplaneSeen dp;
        NatSeen ns;

        const std::size_t errors_before_l2 = c.count();
        if (const Field* f = m.require("ports")) read_ports(c, *f, ports);
        for (const PortSeen& p : ports) g.ports.push_back(p.cfg);
        const bool ports_clean = c.count() == errors_before_l2;
        if (const Field* f = m.get("dataplane")) read_dataplane(c, *f, g.dataplane, dp);
        if (ports_clean && dp.clean && !ports.empty()) check_buffers(c, g, dp, root_mark);

        if (const Field* f = m.require("nat"))
          read_nat(c, *f, g, ports, pools, statics, ns);
        else
          ns.pools_reported = true;
        cross_check_with_engine(c, g, pools, statics, ns, root_mark);
        if (const Field* f = m.get("control")) read_control(c, *f, g.control);
        if (const Field* f = m.get("health")) read_health(c, *f, g.health);
        g.nat.log_sessions = g.control.log_sessions;
      }
    }
  } catch (const std::exception& e) {  // yaml-cpp misuse would land here; never expected
    c.error_at(Code::internal, YAML::Mark::null_mark(),
               std::string("internal error while reading the configuration: ") + e.what());
  }

  result.errors = c.take();
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  if (result.errors.empty()) result.config = std::move(g);
  return result;
}

std::vector<std::string> restart_required_changes(const GatewayConfig& running, const GatewayConfig& next) {
  std::vector<std::string> out;
  if (running.ports.size() != next.ports.size()) {
    out.push_back(fmt::format("ports: {} ports instead of {}; ports change only with a restart", next.ports.size(),
                              running.ports.size()));
  } else {
    for (std::size_t i = 0; i < next.ports.size(); ++i)
      if (!(running.ports[i] == next.ports[i]))
        out.push_back(fmt::format("ports: '{}' changes; ports change only with a restart", next.ports[i].name));
  }
  if (!(running.dataplane == next.dataplane)) out.push_back("dataplane: changes only with a restart");
  if (running.control.prometheus != next.control.prometheus)
    out.push_back("control.prometheus: the listen address changes only with a restart");
  if (running.control.telemetry_group != next.control.telemetry_group)
    out.push_back("control.telemetry_group: the telemetry socket's group changes only with a restart");
  return out;
}

LoadResult load_gateway_config(const std::string& path) {
  const auto fail = [&](int err) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0,
                                   fmt::format("cannot read the configuration file: {}", std::strerror(err)),
                                   ConfigErrorCode::unreadable_file});
    return r;
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return fail(errno);
  std::string text;
  char buffer[16384];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int err = errno;
  std::fclose(file);
  if (failed) return fail(err == 0 ? EIO : err);
  return parse_gateway_config(text, path);
}

}  // namespace passgate::config
