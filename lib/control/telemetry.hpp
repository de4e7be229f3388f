// DPDK telemetry commands under /passgate/ (usable with DPDK's own
// dpdk-telemetry.py): counters and gauges of the running gateway, read from
// the same snapshot the Prometheus endpoint uses. Registered once, after
// EAL init; the callbacks run on DPDK's telemetry thread, never a worker.
#pragma once

#include <functional>

#include "stats/snapshot.hpp"

namespace passgate::control {

using SnapshotSource = std::function<stats::GatewaySnapshot()>;

// Returns false if a command could not be registered.
bool register_telemetry(SnapshotSource source);
// Stop answering (the gateway is going away); commands then report an error.
void unregister_telemetry_source();

}  // namespace passgate::control
