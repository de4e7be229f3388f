// passgate-gen's command line: the options of a run and the EAL arguments
// after "--".
#pragma once

#include "flow_model.hpp"
#include "generator.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pgen {

struct CommandLine {
  Options opt;
  FlowModel model;
  // Text as given (the ARP error names the DUT's addresses), then parsed.
  std::string gen_in_ip = "10.0.0.2", dut_in_ip = "10.0.0.1", gen_out_ip = "198.18.0.2", dut_out_ip = "198.18.0.1";
  std::uint32_t gen_in = 0, dut_in = 0, gen_out = 0, dut_out = 0;
  unsigned frame_size = 64;
  unsigned rx_queues = 1, tx_queues = 1;
  std::vector<std::string> eal_extra;
};

// Fills `cl`; returns the exit status when the program ends here (0 after
// --help, 2 on a usage error, already reported on stderr).
std::optional<int> parse_command_line(int argc, char** argv, CommandLine& cl);

// argv for rte_eal_init: the program name, the arguments after "--", then
// each device as a vdev or an allowed PCI address.
std::vector<std::string> eal_arguments(const CommandLine& cl);

}  // namespace pgen
