// Who may talk to the running gateway. DPDK's telemetry socket
// (RUNTIME_DIR/dpdk_telemetry.v2, RUNTIME_DIR = /var/run/dpdk/PREFIX for
// root) is passgatectl's way in: whoever can connect reads every subscriber's
// state and can reload the policy. DPDK creates the directory 0700 but reuses
// one that already exists, and the socket's mode follows the umask. So after
// EAL init passgate sets them itself:
//   - no group: directory 0700, sockets 0600 (passgate's user, root, only);
//   - control.telemetry_group: directory 0750 and sockets 0660 with that
//     group, and the parent directory (/var/run/dpdk, DPDK makes it 0700)
//     gains search permission for others (0711: names cannot be listed) so
//     the group's members can reach it;
//   - other files there lose every group and other bit;
//   - a directory owned by another user, or a symbolic link, is refused.
// Plain POSIX, no DPDK: the caller passes rte_eal_get_runtime_dir().
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace passgate::control {

// True when done; *summary says what was set ("/var/run/dpdk/rte 0700, 1 socket 0600").
// False and *error (naming the path and the reason) otherwise.
bool restrict_runtime_dir(const std::string& dir, std::optional<gid_t> group, std::string* summary,
                          std::string* error);

}  // namespace passgate::control
