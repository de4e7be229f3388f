// The gateway's counters in the Prometheus text exposition format (0.0.4):
// counters end in _total, gauges do not, labels carry the port and the drop
// reason, and every metric has HELP and TYPE lines. Pure formatting: the
// HTTP endpoint that serves it lives beside it.
#pragma once

#include <string>

#include "stats/snapshot.hpp"

namespace passgate::control {

std::string render_prometheus(const stats::GatewaySnapshot& snapshot);

}  // namespace passgate::control
