// Logging to stderr, one line per event, prefixed with time and the process's
// name. RateLimit keeps a flood of bad input from flooding the log: the first
// occurrence is logged, then at most one line per interval with a count of
// what was suppressed.
//
// Every line, whatever its source, also passes one process-wide budget (a
// token bucket: a burst of kLogBurst lines, then kLogPerSecond a second);
// lines beyond it are counted and the count is written with the next line
// that passes. So no path — a forgotten VB_LOG in a handler, or protobuf's
// own error lines, which InstallProtobufLogHandler() routes here — can let a
// hostile publisher fill the disk.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace vb {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Set once at start-up by main(); read by every log line.
void SetLogIdentity(std::string name);
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Thread-safe (one write per line; the budget is shared by all threads).
void LogLine(LogLevel level, std::string_view message);
inline constexpr int kLogBurst = 200;
inline constexpr int kLogPerSecond = 20;
// Lines dropped by the process-wide budget so far.
uint64_t LogLinesSuppressed();

// Routes libprotobuf's log (parse errors, invalid UTF-8 in string fields)
// through LogLine, with its own rate limit. Idempotent; called by every
// bus::Node, so every bus process has it. Fatal lines always pass.
void InstallProtobufLogHandler();

class LogStream {
 public:
  explicit LogStream(LogLevel level) : level_(level) {}
  ~LogStream() { LogLine(level_, out_.str()); }
  template <class T>
  LogStream& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream out_;
};

// A one-pass for, not an if: safe inside an unbraced if/else of the caller.
#define VB_LOG(level)                                                                                        \
  for (bool vb_log_once_ = ::vb::LogLevel::level >= ::vb::GetLogLevel(); vb_log_once_; vb_log_once_ = false) \
  ::vb::LogStream(::vb::LogLevel::level)

class RateLimit {
 public:
  explicit RateLimit(int64_t interval_ns = 1'000'000'000) : interval_ns_(interval_ns) {}
  // True if a line may be logged now; *suppressed gets how many were not.
  bool Allow(int64_t now_ns, uint64_t* suppressed);

 private:
  int64_t interval_ns_;
  int64_t last_ns_ = INT64_MIN / 2;
  uint64_t suppressed_ = 0;
};

}  // namespace vb
