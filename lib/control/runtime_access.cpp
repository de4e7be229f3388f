#include "control/runtime_access.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace passgate::control {

namespace {

std::string parent_of(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const auto slash = d.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : d.substr(0, slash);
}

}  // namespace

bool restrict_runtime_dir(const std::string& dir, std::optional<gid_t> group, std::string* summary,
                          std::string* error) {
  const auto fail = [&](const std::string& what, int err) {
    *error = fmt::format("telemetry socket directory {}: {}{}", dir, what,
                         err ? fmt::format(": {}", std::strerror(err)) : std::string());
    return false;
  };
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return fail("cannot read it", errno);
  if (S_ISLNK(st.st_mode)) return fail("is a symbolic link; remove it (passgate does not follow it)", 0);
  if (!S_ISDIR(st.st_mode)) return fail("is not a directory", 0);
  if (st.st_uid != ::geteuid())
    return fail(fmt::format("owned by uid {}, not by passgate's uid {}: another user could reach the socket; "
                            "remove the directory or run with another --file-prefix",
                            st.st_uid, ::geteuid()),
                0);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail("cannot open it", errno);
  const mode_t dir_mode = group ? 0750 : 0700;
  const mode_t socket_mode = group ? 0660 : 0600;
  if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(fmt::format("cannot give it to group {}", *group), err);
  }
  if (::fchmod(fd, dir_mode) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(fmt::format("cannot set mode {:04o}", dir_mode), err);
  }
  DIR* d = ::fdopendir(fd);  // owns fd from here
  if (!d) {
    const int err = errno;
    ::close(fd);
    return fail("cannot list it", err);
  }
  unsigned sockets = 0;
  std::string problem;
  int problem_errno = 0;
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat es {};
    if (::fstatat(fd, e->d_name, &es, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    if (S_ISSOCK(es.st_mode)) {
      if (group && ::fchownat(fd, e->d_name, static_cast<uid_t>(-1), *group, AT_SYMLINK_NOFOLLOW) != 0) {
        problem = fmt::format("cannot give socket {} to group {}", e->d_name, *group);
        problem_errno = errno;
        break;
      }
      if (::fchmodat(fd, e->d_name, socket_mode, 0) != 0) {
        problem = fmt::format("cannot set socket {} to mode {:04o}", e->d_name, socket_mode);
        problem_errno = errno;
        break;
      }
      ++sockets;
    } else if (S_ISREG(es.st_mode) && (es.st_mode & 077) != 0) {
      if (::fchmodat(fd, e->d_name, es.st_mode & 0700, 0) != 0) {
        problem = fmt::format("cannot take group and other permissions off {}", e->d_name);
        problem_errno = errno;
        break;
      }
    }
  }
  ::closedir(d);
  if (!problem.empty()) return fail(problem, problem_errno);

  // The group's members must be able to pass the parent (DPDK makes it 0700).
  std::string parent_note;
  if (group) {
    const std::string parent = parent_of(dir);
    struct stat ps {};
    if (::stat(parent.c_str(), &ps) == 0 && ps.st_uid == ::geteuid() && (ps.st_mode & 0011) != 0011) {
      if (::chmod(parent.c_str(), (ps.st_mode & 07777) | 0011) != 0)
        return fail(fmt::format("cannot let the group pass its parent {}", parent), errno);
      parent_note = fmt::format(", parent {} {:04o}", parent, (ps.st_mode & 07777) | 0011);
    }
  }
  *summary = group ? fmt::format("{} {:04o} group {}, {} socket(s) {:04o}{}", dir, dir_mode, *group, sockets,
                                 socket_mode, parent_note)
                   : fmt::format("{} {:04o}, {} socket(s) {:04o} (owner only)", dir, dir_mode, sockets, socket_mode);
  return true;
}

}  // namespace passgate::control
