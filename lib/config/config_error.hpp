// What kind of problem a configuration error is, for programs and tests to
// tell apart without reading the message (the message is for people and may
// be reworded). One list, expanded wherever the kinds are needed.
#pragma once

#include <cstdint>

namespace passgate::config {

#define PASSGATE_CONFIG_ERRORS(X)                                                                                     \
  X(yaml_syntax)      /* the text is not YAML */                                                                      \
  X(unreadable_file)  /* the file cannot be read */                                                                   \
  X(document)         /* no YAML document, or more than one */                                                        \
  X(wrong_type)       /* a list, mapping, value or nothing where another was expected */                              \
  X(unknown_key)      /* a key the mapping does not take */                                                           \
  X(duplicate_key)    /* a key given twice in one mapping */                                                          \
  X(missing_key)      /* a required key is absent */                                                                  \
  X(empty_list)       /* a list that must not be empty is */                                                          \
  X(not_a_number)     /* not a plain decimal integer */                                                               \
  X(out_of_range)     /* an integer outside its range, or below the RFC's minimum */                                  \
  X(not_a_boolean)    /* not a plain true or false */                                                                 \
  X(bad_name)         /* not a name of lowercase letters, digits, '_' or '-' */                                       \
  X(bad_choice)       /* not one of the words the key takes */                                                        \
  X(bad_device)       /* neither a PCI address nor a DPDK virtual device */                                           \
  X(bad_address)      /* not a dotted IPv4 address */                                                                 \
  X(bad_prefix)       /* not an IPv4 prefix, or a length the key does not take */                                     \
  X(bad_range)        /* not an address or port range, or one that ends before it starts */                           \
  X(bad_endpoint)     /* not IPv4ADDRESS:PORT */                                                                      \
  X(bad_mac)          /* not a unicast MAC address */                                                                 \
  X(bad_interface)    /* not a Linux interface name: 1 to 15 letters, digits, '.', '_' or '-' */                        \
  X(host_bits)        /* a prefix with host bits set */                                                               \
  X(reserved_address) /* an address in a block that names no single host (0/8, 127/8, 224/4, 240/4) */                \
  X(not_a_host)  /* the network or broadcast address of a subnet, or the port's own address, where a host is meant */ \
  X(not_on_link) /* a next hop or neighbour outside the port's subnet */                                              \
  X(overlap)     /* prefixes, ranges or endpoints that share addresses */                                             \
  X(repeated)    /* a name, device, route, neighbour, lcore or mapping given twice */                                 \
  X(port_roles)  /* not exactly one inside and one outside port */                                                    \
  X(conflict)    /* values that do not fit together (windows, block sizes, limits) */                                 \
  X(capacity)    /* more than the engine or the buffer pool can hold */                                               \
  X(unknown_group) /* a group this host does not have */                                                              \
  X(engine_check)  /* found by the NAT engine's own check (NatConfig::validate) */                                    \
  X(internal)      /* a failure of the reader itself */

enum class ConfigErrorCode : std::uint8_t {
#define PASSGATE_X(name) name,
  PASSGATE_CONFIG_ERRORS(PASSGATE_X)
#undef PASSGATE_X
};

const char* to_string(ConfigErrorCode code);  // its name: "unknown_key"

}  // namespace passgate::config
