// DPDK telemetry commands under /passgate/ (usable with DPDK's own
// dpdk-telemetry.py), for passgatectl and the operator. Commands run on
// DPDK's telemetry threads, never a worker.
//
// DPDK calls a command as a plain function without user data and cannot
// unregister it, so the commands of the whole program go through one
// TelemetryRegistry: it owns every handler, and one trampoline registered
// with DPDK finds the handler by the command's name. While a registry
// exists it is the one answering (main owns it); withdraw() stops every
// command before what the handlers read goes away.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "stats/snapshot.hpp"

struct rte_tel_data;

namespace passgate::control {

class TelemetryRegistry {
 public:
  // params: what follows the command's comma (may be null); fills d;
  // returns 0, or a negative value for an error answer.
  using Handler = std::function<int(const char* params, rte_tel_data* d)>;

  TelemetryRegistry();
  ~TelemetryRegistry();
  TelemetryRegistry(const TelemetryRegistry&) = delete;
  TelemetryRegistry& operator=(const TelemetryRegistry&) = delete;

  // `command` ("/passgate/...") answered by `handler` from now on; false if
  // DPDK refused the name (at most 64 characters, starting with '/').
  bool add(const std::string& command, const char* help, Handler handler);
  // Every command answers with an error from now on; returns once no
  // handler is running. Call before what the handlers read is destroyed.
  void withdraw();

 private:
  static int dispatch(const char* command, const char* params, rte_tel_data* d);
  std::map<std::string, Handler> handlers_;
};

using SnapshotSource = std::function<stats::GatewaySnapshot()>;

// The commands that read the gateway's snapshot (/passgate/nat, nat_drops,
// ports, steering, protocols, passthrough, mempool): the same snapshot the
// Prometheus endpoint renders. Returns false if a command could not be added.
bool add_snapshot_commands(TelemetryRegistry& registry, SnapshotSource source);

}  // namespace passgate::control
