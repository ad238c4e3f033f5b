// A short dialog recorded as `vb sniff record` would write it, made by the
// tests themselves (no fixture file): the agent plays a speech-like signal
// (audio.ref/local) from 0.5 s to 3.5 s, its echo reaches the microphone
// 20 ms later through a small room, and the user speaks from 4.0 s to
// 5.2 s into a quiet room (audio.mic/local). Times as the live bus has
// them: the reference is published 40 ms before it plays, a mic frame
// reaches the recorder 1 ms after its 20 ms were captured.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "actors/afe/echo_sim.h"
#include "bus/status.h"
#include "tools/sniffer/mcap_writer.h"
#include "tools/sniffer/recording.h"
#include "vb/v1/audio.pb.h"
#include "vb/v1/header.pb.h"

namespace vb::tune::testing {

// with_clean: also audio.clean/local as a live vb-afe with backend bypass
// would have published it (the mic, same sample_index).
inline Status WriteDialogRecording(const std::string& path, double seconds = 6.0, bool with_clean = false) {
  namespace sim = afe::sim;
  constexpr int kRate = 16000, kFrame = 320;  // 20 ms
  constexpr int64_t kT0 = 1'000'000'000'000, kFrameNs = 20'000'000;
  const size_t n = size_t(seconds * kRate) / kFrame * kFrame;
  auto in = [&](double from_s, double to_s, std::vector<float> x) {
    for (size_t i = 0; i < x.size(); ++i)
      if (i < size_t(from_s * kRate) || i >= size_t(to_s * kRate)) x[i] = 0;
    return x;
  };
  const auto far = in(0.5, 3.5, sim::Babble(n, kRate, 0.1, 11));
  auto echo = sim::Delay(sim::Convolve(far, sim::RoomImpulse(kRate, 0.15, 3.0, 12)), size_t(0.020 * kRate));
  sim::Scale(&echo, 0.5);
  const auto near = in(4.0, 5.2, sim::Babble(n, kRate, 0.05, 13));
  const auto noise = sim::Noise(n, 0.0005, 14);  // about -66 dBFS
  std::vector<float> mic(n);
  for (size_t i = 0; i < n; ++i) mic[i] = echo[i] + near[i] + noise[i];
  const auto mic16 = sim::ToS16(mic), far16 = sim::ToS16(far);

  sniff::McapWriter writer;
  if (Status st = writer.Open(path); !st.ok()) return st;
  std::string schema_name, schema;
  if (!sniff::RecordedSchema("vb.v1.AudioFrame", &schema_name, &schema)) return Status::Internal("no schema");
  const uint16_t sid = writer.AddSchema(schema_name, "protobuf", schema);
  auto channel = [&](const char* topic) {
    return writer.AddChannel(sid, topic, "protobuf", {{"plane", "stream"}, {"payload_type", "vb.v1.AudioFrame"}});
  };
  const uint16_t mic_ch = channel("audio.mic/local"), ref_ch = channel("audio.ref/local");
  const uint16_t clean_ch = with_clean ? channel("audio.clean/local") : 0;
  struct Item {
    uint64_t log;
    bool mic;
    size_t k;
    bool clean = false;
  };
  std::vector<Item> items;
  for (size_t k = 0; k < n / kFrame; ++k) {
    const int64_t t = kT0 + int64_t(k) * kFrameNs;
    items.push_back({uint64_t(t + kFrameNs + 1'000'000), true, k});
    if (with_clean) items.push_back({uint64_t(t + kFrameNs + 2'000'000), true, k, true});
    if (t >= kT0 + 500'000'000 && t < kT0 + 3'500'000'000) items.push_back({uint64_t(t - 40'000'000), false, k});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.log < b.log; });
  uint32_t seq_mic = 0, seq_ref = 0;
  std::string data;
  for (const Item& it : items) {
    const int64_t t = kT0 + int64_t(it.k) * kFrameNs;
    v1::Header h;
    h.set_type("vb.v1.AudioFrame");
    h.set_seq(it.mic ? ++seq_mic : ++seq_ref);
    h.set_mono_ns(int64_t(it.log) - 500'000);
    h.set_origin_ns(it.mic ? t : 0);
    h.set_source(it.mic ? "capture" : "playback");
    v1::AudioFrame f;
    f.set_sample_rate(kRate);
    f.set_channels(1);
    f.set_sample_index(it.k * kFrame);
    f.set_play_ns(t);
    f.set_reference_channel(-1);
    const int16_t* pcm = (it.mic ? mic16 : far16).data() + it.k * kFrame;
    f.set_pcm(std::string(reinterpret_cast<const char*>(pcm), kFrame * 2));
    sniff::EncodeRecorded(h.SerializeAsString(), f.SerializeAsString(), &data);
    if (Status st = writer.Write(it.clean ? clean_ch
                                 : it.mic ? mic_ch
                                          : ref_ch,
                                 it.mic ? seq_mic : seq_ref, it.log, uint64_t(h.mono_ns()), data);
        !st.ok())
      return st;
  }
  return writer.Close();
}

}  // namespace vb::tune::testing
