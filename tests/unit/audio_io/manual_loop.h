// ManualLoop: a PumpLoop (actors/common/pump_loop.h) whose clock moves only
// when the test says so: timers fire in order as Advance() passes their time.
// Device fakes without descriptors never need Watch().
#pragma once

#include <deque>
#include <map>

#include "actors/common/pump_loop.h"

namespace vb::audio::testing {

class ManualLoop : public PumpLoop {
 public:
  int64_t NowNs() override { return now_; }
  Id Every(int64_t period_ns, std::function<void()> fn) override { return Add(period_ns, period_ns, std::move(fn)); }
  Id After(int64_t delay_ns, std::function<void()> fn) override { return Add(delay_ns, 0, std::move(fn)); }
  void Cancel(Id timer) override { timers_.erase(timer); }
  Id Watch(std::vector<pollfd>, PollFn) override { return next_++; }
  void Unwatch(Id) override {}
  void Post(std::function<void()> fn) override { posted_.push_back(std::move(fn)); }
  bool stopped() const override { return false; }

  // Runs everything due until now + ns, in time order.
  void Advance(int64_t ns) {
    const int64_t end = now_ + ns;
    for (;;) {
      RunPosted();
      auto due = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it)
        if (it->second.due <= end && (due == timers_.end() || it->second.due < due->second.due)) due = it;
      if (due == timers_.end()) break;
      now_ = due->second.due;
      auto fn = due->second.fn;
      if (due->second.period) due->second.due += due->second.period;
      else timers_.erase(due);
      fn();
    }
    now_ = end;
    RunPosted();
  }
  void AdvanceMs(int64_t ms) { Advance(ms * 1'000'000); }

 private:
  struct Timer {
    int64_t due, period;
    std::function<void()> fn;
  };
  Id Add(int64_t delay, int64_t period, std::function<void()> fn) {
    timers_[next_] = {now_ + delay, period, std::move(fn)};
    return next_++;
  }
  void RunPosted() {
    for (int i = 0; i < 10000 && !posted_.empty(); ++i) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }
  int64_t now_ = 1'000'000'000;
  Id next_ = 1;
  std::map<Id, Timer> timers_;
  std::deque<std::function<void()>> posted_;
};

}  // namespace vb::audio::testing
