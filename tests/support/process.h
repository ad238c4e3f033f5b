// Test support: child processes the test owns (started with arguments,
// output captured to a file, stopped by PID), temporary directories, and
// waiting for a condition on an event loop without sleeping.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "bus/loop.h"
#include "bus/node.h"

namespace vb::testing {

// A directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  void Write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

class Child {
 public:
  Child() = default;
  ~Child();  // kills (SIGKILL) if still running
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;

  // Starts argv; stdout and stderr go to `log_path` (appended).
  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             const std::vector<std::string>& env = {});
  int pid() const { return pid_; }
  bool running();
  // Sends `sig` and waits up to `timeout`; returns the exit code (or -signal),
  // or INT_MIN if it did not exit in time.
  int Stop(int sig, std::chrono::milliseconds timeout);
  // Waits for exit without signalling.
  int Wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_; }

 private:
  int pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::string log_;
};

// Path of a built binary (VB_BIN_DIR from ctest, else the folder of the
// running executable).
std::string Bin(const std::string& name);
// The source tree (VB_SOURCE_DIR from ctest, else the one this test was
// built from): its scripts and data, whatever folder the test is run from.
std::string SourceDir();
std::string ReadFile(const std::string& path);

// Runs `loop` until pred() is true or `timeout` passes; returns pred().
bool RunUntil(bus::Loop& loop, const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// Runs `loop` until every topic has a subscriber visible to `node`'s
// publishers. A PUB with no connected peer drops silently, and a test's own
// publisher can connect to the broker after the actor's status reached it.
bool AwaitSubscribers(bus::Loop& loop, bus::Node& node, std::initializer_list<std::string> topics,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Waits (polling the file as it grows, ≤ 50 ms apart) until `path` contains
// `needle`. For logs of processes we do not talk to over the bus.
bool WaitForText(const std::string& path, const std::string& needle, std::chrono::milliseconds timeout);

// A loopback TCP port that is free right now (bound to port 0, then
// released). Another process may take it before the caller binds it: use it
// for servers that report a bind failure clearly.
int FreeTcpPort();
// A socket listening on a free 127.0.0.1 port (a port taken, for tests of
// what a server does then); the port in *port; -1 on failure. Close it.
int ListenOnLoopback(int* port);

// Runs a command to completion, capturing stdout+stderr; returns exit code.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

}  // namespace vb::testing
