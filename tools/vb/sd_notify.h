// The service manager's notification protocol (sd_notify(3)), written out:
// one datagram "KEY=VALUE\n…" to the AF_UNIX socket named by $NOTIFY_SOCKET
// (a path, or an abstract name when it starts with '@'). Ten lines do not
// justify a dependency on libsystemd, and the same code serves any manager
// that speaks the protocol.
//
// `vb run` under Type=notify: READY=1 once every actor has beaten once,
// WATCHDOG=1 at half of $WATCHDOG_USEC from its loop, STATUS= with the
// dialog state, STOPPING=1 when it stops.
//
// Not thread-safe; use from the loop thread.
#pragma once

#include <chrono>
#include <string>

namespace vb::cli {

class SdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then unsets them so
  // children do not inherit them (their notifications would be refused).
  SdNotifier();
  ~SdNotifier();
  SdNotifier(const SdNotifier&) = delete;
  SdNotifier& operator=(const SdNotifier&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // The watchdog interval systemd expects (0: no watchdog for us).
  std::chrono::microseconds watchdog() const { return watchdog_; }
  // Sends "state" (e.g. "READY=1\nSTATUS=…"); false if it could not.
  bool Notify(const std::string& state);

 private:
  int fd_ = -1;
  std::string path_;
  std::chrono::microseconds watchdog_{0};
};

}  // namespace vb::cli
