// StopSignals: the one signal setup of every voicebus process. SIGINT and
// SIGTERM are blocked and delivered through a signalfd that the process's
// event loop polls like any other descriptor (no handler, no global flag);
// SIGPIPE is ignored, so a closed socket is an error code, not a death.
// Children started after it inherit the blocked mask: the launcher unblocks
// it in the child before exec.
//
// Part of vb_base (no ZeroMQ). Create it on the main thread before any other
// thread starts, so every thread inherits the mask and the signals reach
// only the descriptor.
#pragma once

namespace vb {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Readable (POLLIN) when SIGINT or SIGTERM is pending; -1 if the kernel
  // refused a signalfd (then the signals stay blocked and pending).
  int fd() const { return fd_; }
  // Reads every pending stop signal; returns the last one's number, 0 if none.
  int Take();

 private:
  int fd_ = -1;
};

}  // namespace vb
