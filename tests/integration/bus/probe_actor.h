// ProbeActor: a test actor for the bus integration tests. It publishes
// numbered audio frames at a configured rate and, optionally, relays what it
// hears on one topic to another, so tests can see messages flow end to end
// through real processes and a real broker. `slow_us` makes it a slow
// subscriber (busy work per message) to show that losses are counted.
#pragma once

#include "bus/actor.h"

namespace vb::testing {

class ProbeActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override {
    s.Key("publish_hz", &publish_hz_, 0.0, {0, 100000}, "audio.mic frames per second (0 = none)");
    s.Key("relay", &relay_, false, "republish every audio.mic frame heard as audio.clean");
    s.Key("slow_us", &slow_us_, 0, {0, 1000000}, "busy time per received frame (a slow subscriber)");
  }
  Status Configure(bus::Context& ctx) override {
    mic_ = ctx.bus().Advertise(bus::topics::kAudioMic);
    clean_ = ctx.bus().Advertise(bus::topics::kAudioClean);
    if (relay_ || slow_us_ > 0) {
      ctx.bus().Subscribe<v1::AudioFrame>(
          bus::topics::kAudioMic,
          [this, &ctx](const auto& m) {
            ctx.Count("heard");
            if (slow_us_ > 0) {
              int64_t until = bus::MonoNs() + int64_t(slow_us_) * 1000;
              while (bus::MonoNs() < until) {
              }
            }
            if (relay_) clean_.Publish(m.msg, {.origin_ns = m.header.origin_ns()});
          },
          "*");
    }
    if (publish_hz_ > 0) {
      // Keeps the nominal rate on average: a tick that comes late publishes
      // what is due (a loaded machine delays timers).
      start_ns_ = bus::MonoNs();
      ctx.loop().AddTimer(std::chrono::nanoseconds(int64_t(1e9 / publish_hz_)), [this] {
        uint64_t due = uint64_t(double(bus::MonoNs() - start_ns_) * publish_hz_ / 1e9);
        for (int burst = 0; sent_ < due && burst < 1000; ++burst, ++sent_) {
          v1::AudioFrame f;
          f.set_sample_rate(16000);
          f.set_channels(1);
          f.set_sample_index(index_);
          f.mutable_pcm()->assign(640, '\0');
          index_ += 320;
          mic_.Publish(f, {.origin_ns = bus::MonoNs()});
        }
      });
    }
    return Status::Ok();
  }

 private:
  double publish_hz_ = 0;
  bool relay_ = false;
  int slow_us_ = 0;
  uint64_t index_ = 0;
  uint64_t sent_ = 0;
  int64_t start_ns_ = 0;
  bus::Publisher<v1::AudioFrame> mic_, clean_;
};

}  // namespace vb::testing
