// The operator's commands, both ends, without DPDK: passgatectl turns a
// command line into a telemetry request, the control core reads the
// request's parameters and writes session lines.
//
// Privacy (RFC 6888 REQ-12's spirit: a CGN does not record where subscribers
// go unless required): the commands that list sessions (subscriber, public)
// show a session's remote address and port only when asked explicitly,
// `passgatectl --destinations`, which adds the parameter `destinations` to
// the request (/passgate/subscriber,ADDRESS[,LIMIT],destinations). Without
// it the gateway leaves the remote endpoint out of its answer, so neither a
// plain passgatectl nor a plain dpdk-telemetry.py query reveals it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stats/runtime.hpp"

namespace passgate::control {

// passgatectl: the request for COMMAND ARGS..., or `error` (a usage line) when
// the words do not make one, with what kind of problem it is (passgatectl
// lists the commands after an unknown one). destinations: the
// --destinations switch.
struct CtlRequest {
  enum class Problem : std::uint8_t { none, no_command, destinations_not_applicable, usage, unknown_command };
  std::string path;   // "/passgate/subscriber,100.64.0.11,destinations"
  std::string error;  // empty when path is set
  Problem problem = Problem::none;
};
CtlRequest ctl_request(const std::vector<std::string>& words, bool destinations);
// Commands whose answer can hold remote endpoints (the switch applies to them only).
bool reveals_destinations(const std::string& command);

// Control core: the parameters after the command's name, split at commas
// (spaces dropped), and whether the word `destinations` was among them
// (taken out of the list).
std::vector<std::string> split_params(const char* params);
bool take_destinations(std::vector<std::string>& params);

// One session for the operator: "udp 100.64.0.11:40001 -> 198.51.100.10:20308
// remote 203.0.113.10:9000 none idle 0s worker 0"; without destinations the
// "remote ..." part is left out.
struct SessionText {
  std::string protocol, inside, public_endpoint, remote, state;
  std::uint32_t idle_s = 0;
  unsigned worker = 0;
};
std::string session_line(const SessionText& s, bool destinations);

// `passgatectl runtime`: per worker, a VPP `show runtime`-like table of the
// stages that ran (calls, packets, clocks per packet, packets per call,
// share of the worker's cycles), headed by the time covered, the cycle
// counter's rate and the clocks per packet of all stages but idle.
std::string runtime_table(const stats::RuntimeSnapshot& s);

}  // namespace passgate::control
