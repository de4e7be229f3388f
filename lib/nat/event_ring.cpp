#include "nat/event_ring.hpp"

namespace passgate::nat {

const char* to_string(NatEvent::Type t) {
  switch (t) {
    case NatEvent::Type::block_allocated: return "block-allocated";
    case NatEvent::Type::block_released: return "block-released";
    case NatEvent::Type::ports_exhausted: return "ports-exhausted";
    case NatEvent::Type::session_limit: return "session-limit";
    case NatEvent::Type::pool_exhausted: return "pool-exhausted";
    case NatEvent::Type::port_preserved: return "port-preserved";
    case NatEvent::Type::port_released: return "port-released";
    case NatEvent::Type::session_created: return "session-created";
    case NatEvent::Type::session_deleted: return "session-deleted";
  }
  return "?";
}

}  // namespace passgate::nat
