#include "flow_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace pgen {

bool parse_mix(const std::string& text, std::array<Proto, 100>& mix, std::string& error) {
  std::vector<std::pair<Proto, unsigned>> parts;
  unsigned total = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const std::size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    unsigned weight = 100;
    if (colon != std::string::npos) {
      try {
        weight = static_cast<unsigned>(std::stoul(item.substr(colon + 1)));
      } catch (...) {
        error = fmt::format("bad weight in '{}'", item);
        return false;
      }
    }
    auto it = std::find_if(proto_names.begin(), proto_names.end(), [&](const char* n) { return name == n; });
    if (it == proto_names.end()) {
      error = fmt::format("unknown protocol '{}' (udp, tcp, icmp, esp, gre, natt)", name);
      return false;
    }
    parts.emplace_back(static_cast<Proto>(it - proto_names.begin()), weight);
    total += weight;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (total == 0) {
    error = "the protocol mix has no weight";
    return false;
  }
  unsigned slot = 0;
  unsigned acc = 0;
  for (const auto& [proto, weight] : parts) {
    acc += weight;
    const unsigned end = (acc * 100 + total / 2) / total;
    for (; slot < end && slot < 100; ++slot) mix[slot] = proto;
  }
  for (; slot < 100; ++slot) mix[slot] = parts.back().first;
  return true;
}

std::string mix_json(const std::array<Proto, 100>& mix) {
  std::string out;
  std::array<unsigned, proto_names.size()> pct{};
  for (Proto p : mix) ++pct[static_cast<unsigned>(p)];
  for (unsigned i = 0; i < pct.size(); ++i)
    if (pct[i]) out += (out.empty() ? "" : ", ") + fmt::format("\"{}\": {}", proto_names[i], pct[i]);
  return out;
}

}  // namespace pgen
