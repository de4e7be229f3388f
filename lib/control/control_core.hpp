// The control core: everything passgate does besides moving packets, on the
// main lcore and DPDK's telemetry thread, never on a worker.
//   - reload: the configuration file is read and checked in full first; a bad
//     file is reported (file:line:column) and the running policy stays;
//   - NAT events: drained from the workers' rings, exported as IPFIX
//     (RFC 7011/8158) and syslog (RFC 5424) to the configured collectors;
//   - telemetry: /passgate/... commands for passgatectl and dpdk-telemetry.py;
//   - one snapshot for Prometheus, telemetry and the stop report.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "config/gateway_config.hpp"
#include "control/health_monitor.hpp"
#include "control/ipfix_exporter.hpp"
#include "control/syslog_exporter.hpp"
#include "control/telemetry.hpp"
#include "dataplane/gateway.hpp"
#include "stats/snapshot.hpp"

namespace passgate::control {

class ControlCore {
 public:
  // `cfg` is what the gateway was started with, read from `path`.
  ControlCore(std::string path, const config::GatewayConfig& cfg, dataplane::Gateway& gateway);
  ~ControlCore();
  ControlCore(const ControlCore&) = delete;
  ControlCore& operator=(const ControlCore&) = delete;

  // Opens the exporters of the configuration; false (and logged) if one
  // cannot be opened. Adds the operator's /passgate/ telemetry commands to
  // `telemetry`, which must outlive this core (the destructor withdraws
  // them).
  bool start(TelemetryRegistry& telemetry);
  // Reads the file again and applies it, or keeps the running policy.
  dataplane::ReloadOutcome reload();
  // Moves the workers' NAT events to the exporters. Call every ~10 ms.
  void pump_events();
  [[nodiscard]] stats::GatewaySnapshot snapshot(bool with_pools) const;
  // health: (issue 15). Drain: withdraw the box for maintenance; false when
  // no health monitor runs. On a clean stop: withdraw, and return how long
  // to keep forwarding while the peers move the traffic away (0 without).
  bool set_drained(bool drained);
  std::uint32_t withdraw_for_stop();

  [[nodiscard]] dataplane::Gateway& gateway() { return gateway_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  bool open_exporters(const config::GatewayConfig& cfg, std::string* error);
  // The deterministic pools' mapping events (takes export_mutex_).
  void log_mappings(const config::GatewayConfig& cfg);
  void note_loaded(const std::string& text);
  // Starts, reconfigures or stops the health monitor for `cfg` (mutex_ held).
  void apply_health(const config::GatewayConfig& cfg);
  // Adds the counts of the open exporters (export_mutex_ held).
  void add_export_stats(stats::ExportState& to) const;

  const std::string path_;
  dataplane::Gateway& gateway_;
  TelemetryRegistry* telemetry_ = nullptr;
  mutable std::mutex mutex_;  // reloads (SIGHUP, passgatectl) and the state below
  stats::ConfigState config_state_;
  mutable std::mutex export_mutex_;  // exporters are swapped by reloads while the pump runs
  std::unique_ptr<IpfixExporter> ipfix_;
  std::unique_ptr<SyslogExporter> syslog_;
  stats::ExportState exports_;
  stats::ExportState retired_exports_;  // counts of exporters a reload replaced
  std::unique_ptr<HealthMonitor> health_;  // with a health: section; under mutex_
};

// FNV-1a 64 of a text, as 16 hex digits: identifies a configuration file's bytes.
std::string digest_of(const std::string& text);

}  // namespace passgate::control
