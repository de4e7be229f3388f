// passgate-gen's output: one JSON document (stdout or --json FILE) that
// bench/run_perf.py turns into tables and plots, and bench/smoke_gen.sh
// checks field by field.
#pragma once

#include "counters.hpp"
#include "generator.hpp"
#include "options.hpp"
#include "port.hpp"
#include "search.hpp"

#include <string>
#include <vector>

namespace pgen {

std::string json_trial(const TrialResult& t);
std::string json_warmup(const WarmupResult& w);
// reply: whether the outside answered (bidirectional rates are twice the
// offered rate then).
std::string json_search(const SearchResult& s, double pdr_loss, bool reply);

struct RunReport {
  const CommandLine& cl;
  bool two_lcores;
  const Port& inside;
  const Port& outside;
  const PublicAddresses& publics;
  std::string warmup_json;  // "null" when there was none
  std::string result_json;
  const std::vector<TrialResult>& trials;
};
std::string json_document(const RunReport& r);

}  // namespace pgen
