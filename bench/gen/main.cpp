// passgate-gen: a DPDK packet generator and sink for benchmarking a NAT44
// gateway (passgate, or any other DUT) with two ports: the "inside" port
// plays N subscribers with M flows each, the "outside" port plays the
// internet: it receives the translated packets, counts them, and answers
// each one to the public address and port the DUT chose, so both directions
// carry load and the answers must be translated back.
//
// Theory of operation
// - A flow is a number f in [0, N*M). Its addresses, ports, SPI and protocol
//   are computed from f (FlowModel), so 16M flows need no per-flow table;
//   the only per-flow state is one bit during warm-up.
// - Every generated packet carries a 16-byte stamp after its L4 header:
//   magic, trial number, flow number and the TSC at transmission. The
//   receiver recognises its own packets by the magic, discards stragglers of
//   an earlier trial by the trial number, checks the flow's translation and
//   takes the one-way latency from the TSC (both ports are in this process,
//   so they share one clock).
// - The outside answers in place: addresses and ports swapped, TCP SYN
//   answered by SYN|ACK (so the DUT sees the handshake it needs to call a
//   session established), ICMP echo by echo reply, ESP with the server's SPI
//   (a fixed function of the client's). Checksums are patched per RFC 1624,
//   and the stamp gets a fresh TSC so the return path has its own latency.
// - Warm-up (as FD.io CSIT does for stateful NAT): every flow is sent once
//   at a modest rate, missing answers are retried, and only then does the
//   measurement start, so trials see established sessions only.
// - RFC 2544 section 26.1 throughput: a binary search over the offered rate
//   of trials of fixed length; each trial is followed by a drain period in
//   which stragglers are still received (RFC 2544 section 23 waits 2 s) and
//   a settle period before the next (section 23 asks for at least 5 s; both
//   are options so that a full run fits a small machine). Two rates are
//   searched together: the non-drop rate (zero loss, section 26.1) and the
//   partial-drop rate (loss at most --pdr-loss, 0.5% by default), as
//   CSIT's MLRsearch reports them.
// - Connection rate (--mode cps): every packet is a flow never used before,
//   so each one makes the DUT create a mapping and a session.
//
// The output is one JSON document (stdout or --json FILE); bench/run_perf.py
// turns runs into tables and plots.
//
// Files, in the order of the data flow: options (command line), flow_model
// (what each flow is), inside (subscribers' packets out, answers checked),
// outside (translated packets in, answers out), port (DPDK ports, ARP),
// generator (warm-up, one paced trial), search (NDR/PDR), report (JSON).
#include "generator.hpp"
#include "options.hpp"
#include "report.hpp"
#include "search.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <iostream>

namespace pgen {
std::atomic<bool> interrupted{false};
}  // namespace pgen

namespace {
void on_signal(int) { pgen::interrupted = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace pgen;
  CommandLine cl;
  if (const auto status = parse_command_line(argc, argv, cl)) return *status;
  const Options& opt = cl.opt;
  const FlowModel& model = cl.model;

  std::vector<std::string> args = eal_arguments(cl);
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::cerr << "passgate-gen: EAL initialisation failed: " << rte_strerror(rte_errno) << "\n";
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int rc = 0;
  {
    rte_mempool* pool = rte_pktmbuf_pool_create("gen_mbufs", 32767, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                static_cast<int>(rte_socket_id()));
    Port inside_port, outside_port;
    inside_port.device = opt.inside_dev;
    inside_port.ip = cl.gen_in;
    inside_port.peer_ip = cl.dut_in;
    outside_port.device = opt.outside_dev;
    outside_port.ip = cl.gen_out;
    outside_port.peer_ip = cl.dut_out;
    for (Port* p : {&inside_port, &outside_port}) {
      p->rx_queues = cl.rx_queues;
      p->tx_queues = cl.tx_queues;
    }
    std::string error;
    if (!pool) {
      std::cerr << "passgate-gen: cannot create the buffer pool: " << rte_strerror(rte_errno) << "\n";
      rte_eal_cleanup();
      return 1;
    }
    if (!setup_port(inside_port, pool, error) || !setup_port(outside_port, pool, error)) {
      std::cerr << "passgate-gen: " << error << "\n";
      rte_eal_cleanup();
      return 1;
    }
    RunState state;
    InsideSide inside;
    inside.port = &inside_port;
    inside.pool = pool;
    inside.model = &model;
    inside.state = &state;
    inside.frame_len = cl.frame_size - RTE_ETHER_CRC_LEN;
    inside.hz_ = rte_get_tsc_hz();
    inside.subscriber_queue.assign(model.subscribers, 0xff);
    OutsideSide outside;
    outside.port = &outside_port;
    outside.pool = pool;
    outside.model = &model;
    outside.state = &state;
    outside.reply = opt.reply;
    outside.hz = rte_get_tsc_hz();

    // Two lcores: the outside (receive, answer) runs on the first worker
    // lcore, the inside (send, receive answers) on the main one.
    const bool two_lcores = rte_lcore_count() >= 2;
    unsigned outside_lcore = 0;
    if (two_lcores) {
      outside_lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
      rte_eal_remote_launch(outside_lcore_main, &outside, outside_lcore);
    }
    Generator gen(opt, inside, outside, state, two_lcores);

    std::string body;
    const bool resolved = gen.resolve_neighbours();
    if (!resolved) {
      std::cerr << fmt::format("passgate-gen: no ARP answer from the DUT ({} inside: {}, {} outside: {})\n",
                               cl.dut_in_ip, inside_port.peer_known ? "ok" : "none", cl.dut_out_ip,
                               outside_port.peer_known ? "ok" : "none");
      rc = 1;
    } else {
      std::string warm_json = "null";
      if (opt.warmup && opt.mode != "cps") {
        const auto w = gen.warm_up();
        warm_json = json_warmup(w);
        std::cerr << fmt::format("passgate-gen: warm-up: {} of {} flows answered in {:.1f} s ({} passes)\n",
                                 w.answered, w.flows, w.seconds, w.passes);
        gen.idle(opt.settle);
      }
      TrialLog log(gen, opt, opt.mode == "cps" ? Phase::cps : Phase::measure);
      std::string result_json;
      if (opt.mode == "fixed") {
        const TrialResult t = log.run(opt.rate);
        result_json = fmt::format("{{\"trial\": {}}}", json_trial(t));
      } else {
        const SearchResult s = search_throughput(gen, log, opt);
        result_json = json_search(s, opt.pdr_loss, opt.reply);
        std::cerr << fmt::format("passgate-gen: NDR {:.0f} pps, PDR({}%) {:.0f} pps{}\n",
                                 s.ndr ? s.ndr->offered_pps() : 0.0, opt.pdr_loss * 100,
                                 s.pdr ? s.pdr->offered_pps() : 0.0,
                                 s.generator_limited ? " (generator-limited)" : "");
      }
      body = json_document(RunReport{cl, two_lcores, inside_port, outside_port, outside.publics, warm_json,
                                     result_json, log.trials()});
      if (interrupted) rc = 130;
    }
    if (two_lcores) {
      state.stop_outside_lcore = true;
      rte_eal_mp_wait_lcore();
    }
    if (!body.empty()) {
      if (opt.json_path.empty()) std::cout << body;
      else if (std::FILE* f = std::fopen(opt.json_path.c_str(), "w")) {
        std::fputs(body.c_str(), f);
        std::fclose(f);
      } else {
        std::cerr << "passgate-gen: cannot write " << opt.json_path << "\n";
        rc = 1;
      }
    }
    rte_eth_dev_stop(inside_port.id);
    rte_eth_dev_stop(outside_port.id);
    rte_eth_dev_close(inside_port.id);
    rte_eth_dev_close(outside_port.id);
  }
  rte_eal_cleanup();
  return rc;
}
