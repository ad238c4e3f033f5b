// stderr logging (see log.h).
#include "bus/log.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace vb {
namespace {
std::string& Identity() {
  static std::string id = "vb";
  return id;
}
LogLevel g_level = LogLevel::kInfo;

// The process-wide line budget (see log.h).
struct Budget {
  std::mutex mu;
  double tokens = kLogBurst;
  int64_t last_ns = 0;
  uint64_t suppressed_since = 0;  // since the last line written
  uint64_t suppressed_total = 0;
};
Budget& LineBudget() {
  static Budget b;
  return b;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// True if a line may be written; *suppressed gets how many were not since
// the last one that was.
bool TakeLine(uint64_t* suppressed) {
  Budget& b = LineBudget();
  std::lock_guard lock(b.mu);
  int64_t now = NowNs();
  if (b.last_ns != 0) b.tokens = std::min<double>(kLogBurst, b.tokens + double(now - b.last_ns) * kLogPerSecond / 1e9);
  b.last_ns = now;
  if (b.tokens < 1) {
    ++b.suppressed_since;
    ++b.suppressed_total;
    return false;
  }
  b.tokens -= 1;
  *suppressed = b.suppressed_since;
  b.suppressed_since = 0;
  return true;
}

// True if stderr is the journal stream systemd gave us: JOURNAL_STREAM is
// "DEV:INODE" of that stream, and is inherited by children whose stderr
// may be a log file instead.
bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  unsigned long long dev = 0, ino = 0;
  struct stat st {};
  return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev_t(dev) &&
         st.st_ino == ino_t(ino);
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    LogLine(LogLevel::kError, std::string("protobuf fatal: ") + message);
    return;
  }
  // Protobuf logs one line per bad string field it parses; a header flood
  // would be a log flood. One line a second at most, with the count.
  static std::mutex mu;
  static RateLimit limit;
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(mu);
    if (!limit.Allow(NowNs(), &suppressed)) return;
  }
  std::string text = "protobuf: " + message.substr(0, 300);
  if (suppressed) text += " (" + std::to_string(suppressed) + " more protobuf lines not logged)";
  LogLine(level >= google::protobuf::LOGLEVEL_ERROR ? LogLevel::kWarn : LogLevel::kDebug, text);
  (void)file;
  (void)line;
}
}  // namespace

uint64_t LogLinesSuppressed() {
  Budget& b = LineBudget();
  std::lock_guard lock(b.mu);
  return b.suppressed_total;
}

void InstallProtobufLogHandler() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&ProtobufLog); });
}

void SetLogIdentity(std::string name) { Identity() = std::move(name); }
void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }

void LogLine(LogLevel level, std::string_view message) {
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  uint64_t suppressed = 0;
  if (!TakeLine(&suppressed)) return;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  localtime_r(&ts.tv_sec, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%H:%M:%S", &t);
  std::string line;
  line.reserve(message.size() + 64);
  // Under systemd (stderr to the journal) a "<N>" syslog prefix gives the
  // line its level: journalctl -p warning shows warnings and errors.
  static const bool journal = StderrIsJournal();
  static const char* kPrefix[] = {"<7>", "<6>", "<4>", "<3>"};
  if (journal) line += kPrefix[int(level)];
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
  if (suppressed) line += " [" + std::to_string(suppressed) + " log lines suppressed before this one]";
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
