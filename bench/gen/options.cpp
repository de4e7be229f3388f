#include "options.hpp"

#include "port.hpp"
#include "wire.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <iostream>

namespace po = boost::program_options;

namespace pgen {

std::optional<int> parse_command_line(int argc, char** argv, CommandLine& cl) {
  Options& opt = cl.opt;
  FlowModel& model = cl.model;
  std::string subscriber_base = "100.64.0.1", server_base = "198.19.0.0", mix = "udp";

  po::options_description opts(
      "passgate-gen: DPDK traffic generator and sink for NAT44 benchmarks (RFC 2544)\n\n"
      "Usage: passgate-gen --inside DEV --outside DEV [options] [-- EAL arguments]\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "print this help and exit")
    ("inside", po::value(&opt.inside_dev)->required(), "subscriber-side device: a PCI address or a vdev (net_memif0,role=client,socket=...)")
    ("outside", po::value(&opt.outside_dev)->required(), "internet-side device")
    ("gen-inside-ip", po::value(&cl.gen_in_ip)->default_value(cl.gen_in_ip), "our address on the inside link (the DUT routes subscribers to it)")
    ("dut-inside-ip", po::value(&cl.dut_in_ip)->default_value(cl.dut_in_ip), "the DUT's inside address (our next hop)")
    ("gen-outside-ip", po::value(&cl.gen_out_ip)->default_value(cl.gen_out_ip), "our address on the outside link (the DUT's gateway)")
    ("dut-outside-ip", po::value(&cl.dut_out_ip)->default_value(cl.dut_out_ip), "the DUT's outside address")
    ("subscribers,n", po::value(&model.subscribers)->default_value(model.subscribers), "subscribers (consecutive addresses from --subscriber-base)")
    ("flows,m", po::value(&model.flows_per_subscriber)->default_value(model.flows_per_subscriber), "flows per subscriber")
    ("subscriber-base", po::value(&subscriber_base)->default_value(subscriber_base), "first subscriber address")
    ("servers", po::value(&model.servers)->default_value(model.servers), "servers (consecutive addresses from --server-base)")
    ("server-base", po::value(&server_base)->default_value(server_base), "first server address (RFC 2544 appendix C: 198.18.0.0/15)")
    ("mix", po::value(&mix)->default_value(mix), "protocol mix, e.g. udp:70,tcp:20,icmp:5,esp:3,gre:2 (natt = UDP 4500 both ends)")
    ("rx-queues", po::value(&cl.rx_queues)->default_value(cl.rx_queues), "receive queues per port: the DUT's transmit queues (one per worker), all polled")
    ("tx-queues", po::value(&cl.tx_queues)->default_value(cl.tx_queues), "transmit queues per port: the DUT's receive queues. Inside: a subscriber's packets go to the queue its answers came back on (before that: subscriber modulo queues); outside: each answer leaves on the queue its packet arrived on")
    ("frame-size", po::value(&cl.frame_size)->default_value(cl.frame_size), "Ethernet frame size with FCS (RFC 2544 section 9); grown where headers need more")
    ("mode", po::value(&opt.mode)->default_value(opt.mode), "fixed (one trial at --rate), search (RFC 2544 throughput), cps (new sessions per second search)")
    ("rate", po::value(&opt.rate)->default_value(opt.rate), "fixed mode: inside-to-outside packets/s (0 = as fast as possible)")
    ("duration", po::value(&opt.duration)->default_value(opt.duration), "seconds per trial")
    ("no-warmup", "skip the warm-up that opens every flow before measuring")
    ("warmup-rate", po::value(&opt.warmup_rate)->default_value(opt.warmup_rate), "packets/s during warm-up")
    ("warmup-passes", po::value(&opt.warmup_passes)->default_value(opt.warmup_passes), "warm-up retries for unanswered flows")
    ("no-reply", "the outside only counts; nothing travels outside to inside")
    ("drain", po::value(&opt.drain)->default_value(opt.drain), "seconds to keep receiving after a trial (RFC 2544 section 23: 2)")
    ("settle", po::value(&opt.settle)->default_value(opt.settle), "seconds between trials (RFC 2544 section 23: at least 5)")
    ("pdr-loss", po::value(&opt.pdr_loss)->default_value(opt.pdr_loss), "loss ratio accepted for the partial-drop rate")
    ("precision", po::value(&opt.precision)->default_value(opt.precision), "search ends when the bounds are this close (relative)")
    ("max-trials", po::value(&opt.max_trials)->default_value(opt.max_trials), "search: at most this many trials")
    ("max-rate", po::value(&opt.max_rate)->default_value(opt.max_rate), "search: upper bound (0 = measure the generator's own maximum first)")
    ("cps-budget", po::value(&opt.cps_budget)->default_value(opt.cps_budget), "cps: stop before this many new flows in total (the DUT's session table size); 0 = no limit")
    ("label", po::value(&opt.label), "free text copied into the JSON")
    ("json", po::value(&opt.json_path), "write the JSON result here (default: stdout)");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("eal", po::value(&cl.eal_extra));
  po::positional_options_description positional;
  positional.add("eal", -1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << opts << "\nEverything after -- goes to the DPDK EAL (e.g. -- -l 0 --no-huge -m 512 --file-prefix pb-gen).\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "passgate-gen: " << e.what() << "\n";
    return 2;
  }
  opt.warmup = !vm.count("no-warmup");
  opt.reply = !vm.count("no-reply");
  {
    std::string error;
    if (!parse_mix(mix, model.mix, error)) {
      std::cerr << "passgate-gen: --mix: " << error << "\n";
      return 2;
    }
  }
  const auto sb = parse_ipv4(subscriber_base), svb = parse_ipv4(server_base), gi = parse_ipv4(cl.gen_in_ip),
             di = parse_ipv4(cl.dut_in_ip), go = parse_ipv4(cl.gen_out_ip), dout = parse_ipv4(cl.dut_out_ip);
  if (!sb || !svb || !gi || !di || !go || !dout) {
    std::cerr << "passgate-gen: an address option is not a dotted-quad IPv4 address\n";
    return 2;
  }
  if (opt.mode != "fixed" && opt.mode != "search" && opt.mode != "cps") {
    std::cerr << "passgate-gen: --mode must be fixed, search or cps\n";
    return 2;
  }
  if (model.subscribers == 0 || model.flows_per_subscriber == 0 || model.servers == 0 || cl.frame_size < 64 ||
      cl.frame_size > 1518) {
    std::cerr << "passgate-gen: subscribers, flows and servers must be at least 1; frame size 64 to 1518\n";
    return 2;
  }
  model.subscriber_base = *sb;
  model.server_base = *svb;
  if (cl.rx_queues < 1 || cl.rx_queues > Port::max_queues || cl.tx_queues < 1 || cl.tx_queues > Port::max_queues) {
    std::cerr << fmt::format("passgate-gen: --rx-queues and --tx-queues must be 1 to {}\n", Port::max_queues);
    return 2;
  }
  cl.gen_in = *gi;
  cl.dut_in = *di;
  cl.gen_out = *go;
  cl.dut_out = *dout;
  return std::nullopt;
}

std::vector<std::string> eal_arguments(const CommandLine& cl) {
  std::vector<std::string> args{"passgate-gen"};
  args.insert(args.end(), cl.eal_extra.begin(), cl.eal_extra.end());
  for (const auto* dev : {&cl.opt.inside_dev, &cl.opt.outside_dev}) {
    if (is_vdev(*dev)) args.push_back("--vdev=" + *dev);
    else {
      args.push_back("-a");
      args.push_back(*dev);
    }
  }
  return args;
}

}  // namespace pgen
