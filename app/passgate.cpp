// passgate: the carrier-grade NAT44 gateway. Command line, wiring and
// signals only; the packet path lives in lib/dataplane and lib/nat.
//
//   passgate --config FILE [--stats-interval S] [-- EAL arguments]
//   passgate --check --config FILE
#include <rte_eal.h>
#include <rte_errno.h>

#include <sys/random.h>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <syslog.h>
#include <iostream>
#include <thread>

#include "config/gateway_config.hpp"
#include "control/control_core.hpp"
#include "control/log.hpp"
#include "control/metrics_server.hpp"
#include "control/prometheus.hpp"
#include "control/runtime_access.hpp"
#include "control/telemetry.hpp"
#include "dataplane/gateway.hpp"
#include "cli.hpp"

namespace po = boost::program_options;
using namespace passgate;

namespace {

std::atomic<bool> stop_requested{false};
std::atomic<bool> reload_requested{false};
void on_signal(int) { stop_requested = true; }
void on_hangup(int) { reload_requested = true; }

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  unsigned stats_interval = 0;
  std::string prometheus_listen;
  std::vector<std::string> eal_extra;
  cli::CommandLine cli({"passgate",
                        "passgate: carrier-grade NAT44 gateway on DPDK\n\n"
                        "Usage: passgate --config FILE [options] [-- EAL arguments]",
                        "Everything after -- goes to the DPDK EAL (for example -- --in-memory -l 0,1).\n",
                        " (NAT44, DPDK 22.11)"});
  cli.add_options()("config,c", po::value(&config_path), "YAML configuration file (see conf/README.md)")(
      "check", "validate the configuration, print every problem, exit non-zero on any")(
      "stats-interval", po::value(&stats_interval)->default_value(0),
      "print the counters every S seconds (0: only when stopping)")(
      "prometheus", po::value(&prometheus_listen),
      "serve Prometheus metrics at http://ADDRESS:PORT/metrics; a bare PORT binds 127.0.0.1 only (as in the file); "
      "overrides control.prometheus");
  cli.positionals("eal", &eal_extra);
  if (const auto status = cli.parse(argc, argv)) return *status;
  if (config_path.empty()) return cli.usage_error("--config FILE is required (see --help)");
  // Read like control.prometheus: loopback unless an address is written.
  if (cli.has("prometheus")) {
    std::string problem;
    const auto listen = config::parse_listen_address(prometheus_listen, &problem);
    if (!listen) return cli.usage_error("--prometheus: " + problem);
    prometheus_listen = *listen;
  }

  config::LoadResult loaded = config::load_gateway_config(config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::cerr << config::to_string(e) << "\n";
    return cli.failure(fmt::format("{} error{} in {}; not started", loaded.errors.size(),
                                   loaded.errors.size() == 1 ? "" : "s", config_path));
  }
  config::GatewayConfig cfg = std::move(*loaded.config);
  if (cli.has("check")) {
    std::cout << fmt::format("{}: OK ({} ports, {} pools, {} static mappings)\n", config_path, cfg.ports.size(),
                             cfg.nat.pools.size(), cfg.nat.static_mappings.size());
    return cli::exit_ok;
  }
  // RFC 6056: port choice must not be guessable from outside, so unless the
  // operator pins a seed (tests, reproducible benchmarks) it comes from the
  // kernel's random source.
  if (!cfg.random_seed_given) {
    std::uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) return cli.failure("cannot read a random seed from the kernel");
    cfg.nat.random_seed = seed;
  }

  std::vector<std::string> args = dataplane::eal_arguments(cfg, eal_extra);
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  std::cerr << "passgate: EAL";
  for (const auto& a : args) std::cerr << " " << a;
  std::cerr << "\n";
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0)
    return cli.failure(fmt::format("DPDK EAL initialisation failed: {}", rte_strerror(rte_errno)));
  if (const auto level = control::parse_level(cfg.control.log_level)) control::set_min_level(*level);
  if (cfg.control.log_to_syslog) control::enable_syslog("passgate", LOG_DAEMON);
  if (prometheus_listen.empty()) prometheus_listen = cfg.control.prometheus;
  // The telemetry socket (passgatectl's way in) for passgate's user only, or
  // a configured group (lib/control/runtime_access.hpp).
  {
    std::string summary, error;
    const std::optional<gid_t> group =
        cfg.control.telemetry_group.empty() ? std::nullopt : std::optional<gid_t>(cfg.control.telemetry_gid);
    if (!control::restrict_runtime_dir(rte_eal_get_runtime_dir(), group, &summary, &error)) {
      control::log(control::Level::error, "{}; not started", error);
      rte_eal_cleanup();
      return cli::exit_failure;
    }
    control::log(control::Level::info, "telemetry socket directory {}{}", summary,
                 group ? fmt::format(" ({})", cfg.control.telemetry_group) : std::string());
  }
  // health: the routing daemon withdraws this box before its kernel
  // interfaces exist, so no BGP session comes up announcing a box that does
  // not serve yet (announcements left enabled by a crash, for example).
  if (cfg.health) {
    if (const std::string problem = control::withdraw_before_start(*cfg.health); !problem.empty())
      control::log(control::Level::warning, "health: could not withdraw before start ({}); the monitor keeps trying",
                   problem);
    else
      control::log(control::Level::info, "health: BIRD protocols disabled until passgate can serve");
  }
  int rc = 0;
  {
    std::string error;
    auto gateway = dataplane::Gateway::create(cfg, &error);
    if (!gateway || !gateway->start(&error)) {
      control::log(control::Level::error, "{}", error);
      rc = cli::exit_failure;
    } else {
      // Every /passgate/ telemetry command; outlives the core its commands read.
      control::TelemetryRegistry telemetry;
      control::ControlCore core(config_path, cfg, *gateway);
      core.start(telemetry);
      std::unique_ptr<control::MetricsServer> metrics;
      if (!prometheus_listen.empty()) {
        metrics = control::MetricsServer::start(
            prometheus_listen, [&] { return control::render_prometheus(core.snapshot(true)); }, &error);
        if (!metrics) {
          // Asked for and not there: stop now rather than run unwatched.
          control::log(control::Level::error, "{}; stopping", error);
          stop_requested = true;
          rc = cli::exit_failure;
        } else {
          control::log(control::Level::info, "Prometheus metrics at http://{}/metrics", prometheus_listen);
        }
      }
      if (!control::add_snapshot_commands(telemetry, [&] { return core.snapshot(false); }))
        control::log(control::Level::warning, "some /passgate telemetry commands could not be registered");
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      std::signal(SIGHUP, on_hangup);
      control::log(control::Level::notice,
                   "running with {} port(s), {} worker(s), policy {} (digest {}); SIGHUP reloads, SIGINT or SIGTERM stops",
                   cfg.ports.size(), core.snapshot(false).workers, config_path, core.snapshot(false).config.digest);
      auto last = std::chrono::steady_clock::now();
      while (!stop_requested) {
        // Every 10 ms: the event rings are drained well before they fill.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        core.pump_events();
        if (reload_requested.exchange(false)) core.reload();
        if (stats_interval && std::chrono::steady_clock::now() - last >= std::chrono::seconds(stats_interval)) {
          last = std::chrono::steady_clock::now();
          gateway->print(stdout);
          std::fflush(stdout);
        }
      }
      control::log(control::Level::notice, "stopping");
      // Routers first: the peers move the traffic away while this box still
      // forwards what reaches it, instead of dropping it.
      if (const std::uint32_t grace = core.withdraw_for_stop()) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace);
        while (std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          core.pump_events();
        }
      }
      metrics.reset();
      // No command answers once stopping has begun.
      telemetry.withdraw();
      gateway->stop();
      core.pump_events();  // events of the last moments still reach the collectors
      gateway->print(stdout);
      std::fflush(stdout);
    }
  }
  if (const int cleanup = rte_eal_cleanup(); cleanup != 0) {
    const int failed = cli.failure(fmt::format("DPDK EAL cleanup failed: {}", rte_strerror(-cleanup)));
    if (rc == cli::exit_ok) rc = failed;
  }
  return rc;
}
