// The event loop: timers fire in order, Post() crosses threads, and an idle
// loop does not busy-wait — its wake-ups are counted.
#include <gtest/gtest.h>

#include <zmq.hpp>

#include <thread>
#include <utility>

#include "bus/loop.h"

namespace vb::bus {
namespace {

using namespace std::chrono_literals;

TEST(LoopTest, OneShotTimersFireInDueOrder) {
  Loop loop;
  std::vector<int> order;
  loop.AddOneShot(30ms, [&] {
    order.push_back(3);
    loop.Stop();
  });
  loop.AddOneShot(10ms, [&] { order.push_back(1); });
  loop.AddOneShot(20ms, [&] { order.push_back(2); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(LoopTest, CancelledTimerNeverFires) {
  Loop loop;
  bool fired = false;
  auto id = loop.AddOneShot(10ms, [&] { fired = true; });
  loop.CancelTimer(id);
  loop.AddOneShot(30ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_FALSE(fired);
}

TEST(LoopTest, CancelledTimersDoNotWakeTheLoop) {
  // An actor that re-arms a deadline at every event cancels a timer each
  // time: a cancelled timer must not leave a wake-up behind.
  Loop loop;
  int fired = 0;
  for (int i = 1; i <= 20; ++i) loop.CancelTimer(loop.AddOneShot(i * 10ms, [&] { ++fired; }));
  EXPECT_EQ(loop.timers(), 0u);
  loop.AddOneShot(300ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(fired, 0);
  EXPECT_LE(loop.wakeups(), 3u) << "woken by cancelled timers";
}

TEST(LoopTest, PostRunsOnLoopThreadAndWakesIt) {
  Loop loop;
  std::thread::id ran_on;
  std::thread t([&] {
    loop.Post([&] {
      ran_on = std::this_thread::get_id();
      loop.Stop();
    });
  });
  loop.Run();
  t.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

// Runs `loop` with a 4 Hz timer for ~1 s and checks it woke only for its
// timers: about 4 wake-ups (a busy loop would make thousands; slack for the
// stop timer and scheduling). 4 ticks on time; a loop starved for over
// 250 ms (a loaded CI machine) skips the missed period by design.
void ExpectOnlyTimerWakeups(Loop& loop) {
  int ticks = 0;
  loop.AddTimer(250ms, [&] { ++ticks; });
  loop.AddOneShot(1050ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_GE(ticks, 3);
  EXPECT_LE(ticks, 4);
  EXPECT_LE(loop.wakeups(), 8u) << "the loop woke up without work to do";
}

TEST(LoopTest, IdleLoopWakesOnlyForItsTimers) {
  Loop loop;
  ExpectOnlyTimerWakeups(loop);
}

// A pipe closed on every way out of a test (an ASSERT included).
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() {
    if (pipe(fds) != 0) fds[0] = fds[1] = -1;
  }
  ~Pipe() { Close(); }
  void Close() {
    for (int& fd : fds)
      if (fd >= 0) close(std::exchange(fd, -1));
  }
  int in() const { return fds[0]; }
  int out() const { return fds[1]; }
};

TEST(LoopTest, FdCallbackSeesReadiness) {
  Loop loop;
  Pipe p;
  ASSERT_GE(p.in(), 0);
  std::string got;
  loop.AddFd(p.in(), POLLIN, [&](short revents) {
    char buf[16];
    ssize_t n = read(p.in(), buf, sizeof buf);
    got.assign(buf, size_t(std::max<ssize_t>(n, 0)));
    loop.Stop();
  });
  ASSERT_EQ(write(p.out(), "hi", 2), 2);
  loop.Run();
  EXPECT_EQ(got, "hi");
}

// Two owners watching one descriptor (epoll refuses a second registration
// of a number): the loop falls back to poll(2) and both still hear it.
TEST(LoopTest, OneDescriptorInTwoGroupsReachesBoth) {
  Loop loop;
  Pipe p;
  ASSERT_GE(p.in(), 0);
  int first = 0, second = 0;
  loop.AddFd(p.in(), POLLIN, [&](short) { ++first; });
  loop.AddFd(p.in(), POLLIN, [&](short) { ++second; });
  ASSERT_EQ(write(p.out(), "x", 1), 1);
  loop.RunOnce(1s);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
}

// A device reopened under the same descriptor number (a sound card that
// came back, a reconnected peer) is heard through its new registration,
// not lost with the old file.
TEST(LoopTest, ReusedDescriptorNumberIsWatchedAgain) {
  Loop loop;
  Pipe a;
  ASSERT_GE(a.in(), 0);
  int old_hits = 0, new_hits = 0;
  auto g = loop.AddFd(a.in(), POLLIN, [&](short) { ++old_hits; });
  loop.RunOnce(0ms);  // registered
  const int number = a.in();
  a.Close();
  Pipe b;
  ASSERT_EQ(b.in(), number) << "the kernel hands out the lowest free number";
  loop.RemovePollGroup(g);
  loop.AddFd(b.in(), POLLIN, [&](short) {
    ++new_hits;
    char c;
    (void)!read(b.in(), &c, 1);
  });
  ASSERT_EQ(write(b.out(), "y", 1), 1);
  loop.RunOnce(1s);
  EXPECT_EQ(old_hits, 0);
  EXPECT_EQ(new_hits, 1);
}

// The loop polls ZeroMQ sockets' ZMQ_FD itself and asks a socket added with
// marks_use only when its fd fired, its callback ran or it was Used(). A use
// of the socket outside its callback may take the fd's signal for a message
// already queued (a send does when its command throttle allows; asking
// ZMQ_EVENTS, as here, always does): without Used() the loop would sleep
// on a socket that holds a message.
TEST(LoopTest, ZmqSocketUsedOutsideItsCallbackIsAskedAgain) {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair), b(ctx, zmq::socket_type::pair);
  a.bind("inproc://loop-used");
  b.connect("inproc://loop-used");
  Loop loop;
  std::string got;
  loop.AddZmqSocket(
      a.handle(),
      [&] {
        zmq::message_t m;
        while (a.recv(m, zmq::recv_flags::dontwait)) got = m.to_string();
        if (!got.empty()) loop.Stop();
      },
      true);
  loop.RunOnce(0ms);  // asked once: empty, so not asked again unless its fd fires
  ASSERT_TRUE(got.empty());
  ASSERT_TRUE(b.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait));  // a's fd fires…
  (void)a.get(zmq::sockopt::events);  // …and this takes the signal: the fd is quiet now
  loop.Used(a.handle());
  loop.AddOneShot(5s, [&] { loop.Stop(); });  // a stall fails instead of hanging
  loop.Run();
  EXPECT_EQ(got, "hello");
}

TEST(LoopTest, IdleZmqSocketsDoNotWakeTheLoop) {
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::xpub), sub(ctx, zmq::socket_type::sub);
  pub.bind("inproc://loop-idle");
  sub.connect("inproc://loop-idle");
  Loop loop;
  int calls = 0;
  loop.AddZmqSocket(pub.handle(), [&] {
    zmq::message_t m;
    while (pub.recv(m, zmq::recv_flags::dontwait)) ++calls;
  });
  loop.AddZmqSocket(
      sub.handle(), [&] {}, true);
  ExpectOnlyTimerWakeups(loop);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace vb::bus
