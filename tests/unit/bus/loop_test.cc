// The event loop: timers fire in order, Post() crosses threads, and an idle
// loop does not busy-wait — its wake-ups are counted.
#include <gtest/gtest.h>

#include <thread>

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

TEST(LoopTest, IdleLoopWakesOnlyForItsTimers) {
  // A 4 Hz timer over ~1 s: about 4 wake-ups. A busy loop would make
  // thousands; allow slack for the stop timer and scheduling.
  Loop loop;
  int ticks = 0;
  loop.AddTimer(250ms, [&] { ++ticks; });
  loop.AddOneShot(1050ms, [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(ticks, 4);
  EXPECT_LE(loop.wakeups(), 8u) << "the loop woke up without work to do";
}

TEST(LoopTest, FdCallbackSeesReadiness) {
  Loop loop;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string got;
  loop.AddFd(fds[0], POLLIN, [&](short revents) {
    char buf[16];
    ssize_t n = read(fds[0], buf, sizeof buf);
    got.assign(buf, size_t(std::max<ssize_t>(n, 0)));
    loop.Stop();
  });
  ASSERT_EQ(write(fds[1], "hi", 2), 2);
  loop.Run();
  EXPECT_EQ(got, "hi");
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace vb::bus
