// BusPumpLoop: PumpLoop (pump_loop.h) over the actor's bus::Loop. Adapter
// code only: the logic libraries never include it (they do not link the bus).
#pragma once

#include <chrono>

#include "actors/common/pump_loop.h"
#include "bus/loop.h"

namespace vb::audio {

class BusPumpLoop : public PumpLoop {
 public:
  explicit BusPumpLoop(bus::Loop& loop) : loop_(loop) {}
  int64_t NowNs() override { return bus::MonoNs(); }
  Id Every(int64_t period_ns, std::function<void()> fn) override {
    return loop_.AddTimer(std::chrono::nanoseconds(period_ns), std::move(fn));
  }
  Id After(int64_t delay_ns, std::function<void()> fn) override {
    return loop_.AddOneShot(std::chrono::nanoseconds(delay_ns), std::move(fn));
  }
  void Cancel(Id timer) override { loop_.CancelTimer(timer); }
  Id Watch(std::vector<pollfd> fds, PollFn fn) override { return loop_.AddPollGroup(std::move(fds), std::move(fn)); }
  void Unwatch(Id group) override { loop_.RemovePollGroup(group); }
  void Post(std::function<void()> fn) override { loop_.Post(std::move(fn)); }
  bool stopped() const override { return loop_.stopped(); }

 private:
  bus::Loop& loop_;
};

}  // namespace vb::audio
