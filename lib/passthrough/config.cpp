#include "passthrough/config.hpp"

#include <fmt/format.h>

namespace passgate::passthrough {

void validate(const PassthroughConfig& config, std::vector<std::string>& problems) {
  auto error = [&](std::string text) { problems.push_back(std::move(text)); };

  const EspConfig& esp = config.esp;
  if (esp.max_sas == 0 || esp.max_sas > (1u << 24)) error("passthrough.esp.max_sas must be between 1 and 2^24");
  if (esp.idle_timeout < 30 || esp.idle_timeout > 86400) error("passthrough.esp.idle_timeout must be between 30 and 86400 s");
  if (esp.hold_packets == 0 || esp.hold_packets > 65536) error("passthrough.esp.hold_packets must be between 1 and 65536");
  if (esp.learn_window_ms < 100 || esp.hold_window_ms < 100 || esp.hold_window_ms > esp.learn_window_ms)
    error("passthrough.esp: learn_window_ms and hold_window_ms must be at least 100, hold no longer than learn");
  if (esp.learner_turn_ms != 0 && (esp.learner_turn_ms < esp.learn_window_ms || esp.learner_turn_ms > 600000))
    error("passthrough.esp.learner_turn_ms must be 0 (twice learn_window_ms) or from learn_window_ms to 600000");

  const PptpConfig& pptp = config.pptp;
  if (pptp.max_calls == 0 || pptp.max_calls > (1u << 22)) error("passthrough.pptp.max_calls must be between 1 and 2^22");
  if (pptp.call_idle_timeout < 60 || pptp.call_idle_timeout > 86400 * 7)
    error("passthrough.pptp.call_idle_timeout must be between 60 s and a week");
  if (pptp.max_calls_per_subscriber == 0 || pptp.max_calls_per_subscriber > 65535)
    error("passthrough.pptp.max_calls_per_subscriber must be between 1 and 65535");

  if (config.gre.timeout < 60 || config.gre.timeout > 86400)
    error("passthrough.gre.timeout must be between 60 and 86400 s");
  if (config.gre.conflict_idle == 0 || config.gre.conflict_idle > 86400)
    error("passthrough.gre.conflict_idle must be between 1 and 86400 s");
  if (config.gre.contended_hold < 10 || config.gre.contended_hold > 86400)
    error("passthrough.gre.contended_hold must be between 10 and 86400 s");
  if (config.gre.max_tunnels == 0 || config.gre.max_tunnels > (1u << 20))
    error("passthrough.gre.max_tunnels must be between 1 and 2^20");
  for (const auto* svc : {&config.ike, &config.l2tp})
    if (svc->timeout < 120 || svc->timeout > 86400)
      error(fmt::format("passthrough.{}.timeout {} s must be between 120 (RFC 4787 REQ-5) and 86400",
                        svc == &config.ike ? "ike" : "l2tp", svc->timeout));
}

}  // namespace passgate::passthrough
