// vb-cozesim as a process: `--port 0` prints the port first, REST answers on
// it, the WebSocket handshake is refused with 401 for a bad or missing token
// and accepted (101) with either auth form, bad flags exit 2, SIGTERM exits 0.
// Raw sockets keep this test free of any client library.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

std::string Binary() {
  const char* dir = std::getenv("VB_BIN_DIR");
  return std::string(dir ? dir : "bin") + "/vb-cozesim";
}

struct Sim {
  pid_t pid = -1;
  int out = -1;
  int port = 0;
};

// Starts the simulator; reads its first stdout line with a timeout.
Sim Start(std::vector<std::string> args) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Sim s;
  s.pid = fork();
  if (s.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::vector<char*> argv;
    std::string bin = Binary();
    argv.push_back(bin.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  s.out = fds[0];
  std::string line;
  pollfd p{s.out, POLLIN, 0};
  while (line.find('\n') == std::string::npos && poll(&p, 1, 10000) > 0) {
    char buf[256];
    ssize_t n = read(s.out, buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, size_t(n));
  }
  if (line.rfind("listening 127.0.0.1:", 0) == 0) s.port = std::atoi(line.c_str() + 20);
  return s;
}

int Stop(Sim& s) {
  kill(s.pid, SIGTERM);
  int status = 0;
  waitpid(s.pid, &status, 0);
  close(s.out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int Status(const std::string& resp);

// One raw HTTP exchange; returns the whole response (headers + body).
std::string Http(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return {};
  }
  EXPECT_EQ(write(fd, request.data(), request.size()), ssize_t(request.size()));
  std::string resp;
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, 5000) > 0) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    resp.append(buf, size_t(n));
    // Stop at a complete response: upgrade (no body) or Content-Length satisfied.
    size_t hdr = resp.find("\r\n\r\n");
    if (hdr == std::string::npos) continue;
    if (Status(resp) == 101) break;
    size_t cl = resp.find("content-length: ");
    if (cl != std::string::npos && resp.size() >= hdr + 4 + size_t(std::atol(resp.c_str() + cl + 16))) break;
  }
  close(fd);
  return resp;
}

// The status code of a raw response ("HTTP/1.x NNN …"), or 0.
int Status(const std::string& resp) {
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return 0;
  return std::atoi(resp.c_str() + 9);
}

std::string Upgrade(const std::string& target, const std::string& extra = "") {
  return "GET " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         extra + "\r\n";
}

TEST(CozeSimProcess, PortZeroRestAndHandshakeAuth) {
  Sim s = Start({"--port", "0", "--token", "test-token"});
  ASSERT_GT(s.port, 0);
  std::string health = Http(s.port, "GET /_sim/health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(health.find("200 OK"), std::string::npos) << health;
  std::string body = R"({"bot_id":"7000000000000000001"})";
  std::string created = Http(s.port,
                             "POST /v1/conversation/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
                             "Content-Type: application/json\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body);
  auto j = nlohmann::json::parse(created.substr(created.find("\r\n\r\n") + 4));
  EXPECT_EQ(j["code"], 0);
  EXPECT_EQ(j["data"]["id"].get<std::string>().size(), 19u);
  EXPECT_NE(created.find("X-Tt-Logid: "), std::string::npos);

  EXPECT_EQ(Status(Http(s.port, Upgrade("/v1/chat?bot_id=1"))), 401);
  EXPECT_EQ(Status(Http(s.port, Upgrade("/v1/chat?bot_id=1", "Authorization: Bearer wrong\r\n"))), 401);
  EXPECT_EQ(Status(Http(s.port, Upgrade("/v1/chat?bot_id=1&authorization=Bearer%20wrong"))), 401);
  EXPECT_EQ(Status(Http(s.port, Upgrade("/v1/chat?bot_id=1", "Authorization: Bearer test-token\r\n"))), 101);
  EXPECT_EQ(Status(Http(s.port, Upgrade("/v1/chat?bot_id=1&authorization=Bearer%20test-token"))), 101);
  EXPECT_EQ(Status(Http(s.port, Upgrade("/v2/other", "Authorization: Bearer test-token\r\n"))), 404);
  EXPECT_EQ(Stop(s), 0);
}

TEST(CozeSimProcess, RefuseHandshakeFlagAndBadFlags) {
  Sim s = Start({"--port", "0", "--refuse-handshake", "503"});
  ASSERT_GT(s.port, 0);
  EXPECT_EQ(Status(Http(s.port, Upgrade("/v1/chat?bot_id=1", "Authorization: Bearer any\r\n"))), 503);
  EXPECT_EQ(Stop(s), 0);
  Sim bad = Start({"--no-such-flag"});
  EXPECT_EQ(bad.port, 0);
  int status = 0;
  waitpid(bad.pid, &status, 0);
  close(bad.out);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
