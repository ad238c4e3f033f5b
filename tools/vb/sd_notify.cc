// sd_notify(3) over a datagram socket (see sd_notify.h).
#include "tools/vb/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace vb::cli {

SdNotifier::SdNotifier() {
  const char* sock = getenv("NOTIFY_SOCKET");
  const char* usec = getenv("WATCHDOG_USEC");
  const char* wpid = getenv("WATCHDOG_PID");
  // WATCHDOG_PID names who must ping: not us if it is another process.
  if (usec && (!wpid || atol(wpid) == long(getpid()))) {
    long long v = atoll(usec);
    if (v > 0) watchdog_ = std::chrono::microseconds(v);
  }
  if (sock && (sock[0] == '/' || sock[0] == '@') && strlen(sock) < sizeof(sockaddr_un::sun_path)) {
    path_ = sock;
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

SdNotifier::~SdNotifier() {
  if (fd_ >= 0) close(fd_);
}

bool SdNotifier::Notify(const std::string& state) {
  if (fd_ < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path_.data(), path_.size());
  if (path_[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + path_.size());
  return sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr),
                len) == ssize_t(state.size());
}

}  // namespace vb::cli
