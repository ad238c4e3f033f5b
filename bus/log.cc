// stderr logging (see log.h).
#include "bus/log.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace vb {
namespace {
std::string& Identity() {
  static std::string id = "vb";
  return id;
}
LogLevel g_level = LogLevel::kInfo;
}  // namespace

void SetLogIdentity(std::string name) { Identity() = std::move(name); }
void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }

void LogLine(LogLevel level, std::string_view message) {
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  localtime_r(&ts.tv_sec, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%H:%M:%S", &t);
  std::string line;
  line.reserve(message.size() + 64);
  line += buf;
  char ms[24];
  snprintf(ms, sizeof ms, ".%03ld", ts.tv_nsec / 1000000);
  line += ms;
  line += ' ';
  line += Identity();
  line += ' ';
  line += kNames[int(level)];
  line += ": ";
  line += message;
  line += '\n';
  (void)!write(STDERR_FILENO, line.data(), line.size());  // one write: lines never interleave
}

bool RateLimit::Allow(int64_t now_ns, uint64_t* suppressed) {
  if (now_ns - last_ns_ >= interval_ns_) {
    *suppressed = suppressed_;
    suppressed_ = 0;
    last_ns_ = now_ns;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace vb
