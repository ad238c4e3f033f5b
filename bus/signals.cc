// StopSignals (see signals.h).
#include "bus/signals.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace vb {

StopSignals::StopSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

StopSignals::~StopSignals() {
  if (fd_ >= 0) close(fd_);
}

int StopSignals::Take() {
  int last = 0;
  signalfd_siginfo si;
  while (fd_ >= 0 && read(fd_, &si, sizeof si) == ssize_t(sizeof si)) last = int(si.ssi_signo);
  return last;
}

}  // namespace vb
