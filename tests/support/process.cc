// Test support implementation (see process.h).
#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace vb::testing {

TempDir::TempDir() {
  std::string base = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  std::string tmpl = base + "/vbtest.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  path_ = mkdtemp(buf.data()) ? std::string(buf.data()) : base;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (std::getenv("VB_KEEP_TMP") == nullptr) std::filesystem::remove_all(path_, ec);
}

void TempDir::Write(const std::string& name, const std::string& text) const { std::ofstream(File(name)) << text; }

Child::~Child() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

Child::Child(Child&& o) noexcept { *this = std::move(o); }
Child& Child::operator=(Child&& o) noexcept {
  std::swap(pid_, o.pid_);
  std::swap(status_, o.status_);
  std::swap(exited_, o.exited_);
  std::swap(log_, o.log_);
  return *this;
}

bool Child::Start(const std::vector<std::string>& argv, const std::string& log_path,
                  const std::vector<std::string>& env) {
  log_ = log_path;
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    for (const auto& e : env) putenv(strdup(e.c_str()));
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    execv(av[0], av.data());
    _exit(127);
  }
  exited_ = false;
  return true;
}

bool Child::running() {
  if (pid_ <= 0 || exited_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
  return !exited_;
}

int Child::Wait(std::chrono::milliseconds timeout) {
  if (!exited_) {
    // A pidfd becomes readable when the child exits: wait on it, no polling.
    int pfd = int(syscall(SYS_pidfd_open, pid_, 0));
    if (pfd >= 0) {
      pollfd p{pfd, POLLIN, 0};
      poll(&p, 1, int(timeout.count()));
      close(pfd);
    }
    if (waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    if (!exited_) return INT_MIN;
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -WTERMSIG(status_);
}

int Child::Stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return INT_MIN;
  if (!exited_) kill(pid_, sig);
  return Wait(timeout);
}

std::string Bin(const std::string& name) {
  if (const char* dir = std::getenv("VB_BIN_DIR")) return std::string(dir) + "/" + name;
  // Run by hand (a benchmark, a test binary): its neighbours are built
  // beside it, wherever the caller stands.
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::string(".") : self.parent_path().string()) + "/" + name;
}

std::string SourceDir() {
  if (const char* dir = std::getenv("VB_SOURCE_DIR")) return dir;
  return VB_SOURCE_DIR_DEFAULT;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool RunUntil(bus::Loop& loop, const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration(0)) return pred();
    loop.RunOnce(std::min<std::chrono::nanoseconds>(left, std::chrono::milliseconds(100)));
  }
  return true;
}

bool AwaitSubscribers(bus::Loop& loop, bus::Node& node, std::initializer_list<std::string> topics,
                      std::chrono::milliseconds timeout) {
  return RunUntil(
      loop,
      [&] {
        for (const auto& t : topics)
          if (!node.HasSubscriber(node.AdvertisedPlane(t), t)) return false;
        return true;
      },
      timeout);
}

bool WaitForText(const std::string& path, const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ReadFile(path).find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output, std::chrono::milliseconds timeout) {
  TempDir dir;
  Child c;
  if (!c.Start(argv, dir.File("out.log"))) return -1;
  int code = c.Wait(timeout);
  if (code == INT_MIN) code = c.Stop(SIGKILL, std::chrono::milliseconds(2000));
  if (output) *output = ReadFile(dir.File("out.log"));
  return code;
}

int ListenOnLoopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int FreeTcpPort() {
  int port = -1;
  const int fd = ListenOnLoopback(&port);
  if (fd >= 0) close(fd);
  return fd >= 0 ? port : -1;
}

}  // namespace vb::testing
