// LwsService, the one libwebsockets bridge: a wake from another thread
// reaches the owner's handler on the service thread, Stop joins it and
// destroys the context, a wake after Stop is harmless, and a server whose
// port is taken is refused without leaving anything behind.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "bus/lws_service.h"
#include "tests/support/process.h"

namespace vb {
namespace {

// A context that listens nowhere, with one protocol whose callback is the bridge's.
lws_context_creation_info NoListenInfo() {
  static const lws_protocols kProtocols[] = {{"test", LwsService::Callback, 0, 0, 0, nullptr, 0},
                                             {nullptr, nullptr, 0, 0, 0, nullptr, 0}};
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.gid = -1;
  info.uid = -1;
  return info;
}

TEST(LwsService, AWakeFromAnyThreadReachesTheHandlerOnTheServiceThread) {
  std::mutex mu;
  std::condition_variable cv;
  int wakes = 0;
  std::thread::id served_on;
  LwsService service([&](lws*, int reason, void*, void*, size_t) {
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
      std::lock_guard lk(mu);
      ++wakes;
      served_on = std::this_thread::get_id();
      cv.notify_all();
    }
    return 0;
  });
  lws_context_creation_info info = NoListenInfo();
  LwsService::RouteLogs();
  ASSERT_TRUE(service.Create(info));
  service.StartThread();
  std::thread other([&] { service.Wake(); });
  other.join();
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return wakes > 0; }));
    EXPECT_NE(served_on, std::this_thread::get_id());
  }
  EXPECT_FALSE(service.stopping());
  service.Stop();
  EXPECT_TRUE(service.stopping());
  EXPECT_EQ(service.context(), nullptr);
  service.Wake();  // after Stop: a no-op, not a crash
  service.Stop();  // twice: fine
}

TEST(LwsService, ServingOnTheCallersThreadEndsOnRequestStopFromAnother) {
  LwsService service([](lws*, int, void*, void*, size_t) { return 0; });
  lws_context_creation_info info = NoListenInfo();
  ASSERT_TRUE(service.Create(info));
  int passes = 0;
  std::thread stopper([&] { service.RequestStop(); });
  service.Serve([&] { ++passes; });  // returns once the stop is seen
  stopper.join();
  EXPECT_TRUE(service.stopping());
  service.Stop();
}

// A server whose port is taken: Create says so and leaves no context; under
// the ASan run, LSan checks that nothing of the refused context is left
// (Debian's lws 4.1 leaked 72 bytes when lws_create_context failed to bind).
TEST(LwsService, ATakenPortIsRefusedAndNothingIsLeft) {
  int port = 0;
  const int s = testing::ListenOnLoopback(&port);
  ASSERT_GE(s, 0);
  LwsService service([](lws*, int, void*, void*, size_t) { return 0; });
  lws_context_creation_info info = NoListenInfo();
  info.port = port;
  info.iface = "127.0.0.1";
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  EXPECT_FALSE(service.Create(info));
  EXPECT_EQ(service.context(), nullptr);
  close(s);
  // The port free again: the same service listens there.
  LwsService server([&](lws*, int, void*, void*, size_t) { return 0; });
  info = NoListenInfo();
  info.port = port;
  info.iface = "127.0.0.1";
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  ASSERT_TRUE(server.Create(info));
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  const int bound = connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  close(probe);
  EXPECT_EQ(bound, 0) << "nothing listens on the port the server was made for";
  server.Stop();
}

}  // namespace
}  // namespace vb
