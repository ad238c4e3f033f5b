// bench_wakevad: what vb-wakevad costs per 20 ms frame on this machine.
// Runs each voice detector, the wake spotter, and the whole pipeline over
// 30 s of espeak speech in pink noise (or --wav FILE, 16 kHz mono), several
// rounds, and prints JSON: thread CPU µs per frame (median of rounds, and the
// ratio to the 20 ms budget), and the verifier's CPU per wake. The machine is shared: compare figures from one
// run, not across runs.
#include <time.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "actors/common/wav.h"
#include "actors/wakevad/voice_pipeline.h"
#include "actors/wakevad/wake_verifier.h"

namespace vb::wakevad {
namespace {

double ThreadUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool MakeSignal(const std::string& dir, std::vector<int16_t>* pcm) {
  std::string text = WakeOptions{}.phrase +
                     ", what is the weather like today? I would like to know whether "
                     "I need an umbrella this afternoon, and also set a timer for ten minutes please.";
  std::string cmd = "espeak-ng -v en-us -s 150 -w " + dir + "/raw.wav '" + text + "' && sox " + dir +
                    "/raw.wav -r 16000 -c 1 -b 16 " + dir +
                    "/speech.wav pad 1 1 repeat 2 && sox -n -r 16000 -c 1 -b 16 " + dir +
                    "/noise.wav synth 30 pinknoise vol 0.02 && sox -m " + dir + "/speech.wav " + dir +
                    "/noise.wav -b 16 " + dir + "/mix.wav trim 0 30";
  if (std::system(cmd.c_str()) != 0) return false;
  audio::PcmBuffer b;
  if (!audio::ReadWav(dir + "/mix.wav", &b).ok()) return false;
  *pcm = std::move(b.samples);
  return true;
}

}  // namespace
}  // namespace vb::wakevad

int main(int argc, char** argv) {
  using namespace vb::wakevad;
  std::vector<int16_t> pcm;
  if (argc >= 3 && std::string(argv[1]) == "--wav") {
    vb::audio::PcmBuffer b;
    if (!vb::audio::ReadWav(argv[2], &b).ok() || b.sample_rate != 16000 || b.channels != 1) {
      std::cerr << "need a 16 kHz mono WAV\n";
      return 2;
    }
    pcm = std::move(b.samples);
  } else {
    char dir[] = "/tmp/vb-wakevad-bench-XXXXXX";
    if (!mkdtemp(dir) || !MakeSignal(dir, &pcm)) {
      std::cerr << "espeak-ng/sox failed\n";
      return 2;
    }
    std::system(("rm -rf " + std::string(dir)).c_str());
  }
  const size_t frames = pcm.size() / kFrameSamples;
  const int rounds = 5;
  nlohmann::json out;
  out["audio_s"] = double(pcm.size()) / kSampleRate;
  out["frame_ms"] = 20;
  out["rounds"] = rounds;
  auto report = [&](const std::string& what, std::vector<double> us_per_frame) {
    double m = Median(us_per_frame);
    out["cpu_us_per_frame"][what] = m;
    out["budget_fraction"][what] = m / 20000.0;
    std::cerr << what << ": " << m << " us/frame\n";
  };
  for (const auto& name : DetectorNames()) {
    std::vector<double> r;
    for (int k = 0; k < rounds; ++k) {
      std::unique_ptr<VoiceDetector> d;
      if (!MakeDetector(name, {}, &d).ok()) return 1;
      VadTracker t({});
      volatile float sink = 0;
      double t0 = ThreadUs();
      for (size_t i = 0; i < frames; ++i) {
        float p = d->Process(std::span<const int16_t>(pcm.data() + i * kFrameSamples, kFrameSamples));
        t.Push(i * kFrameSamples, kFrameSamples, p);
        sink = sink + p;
      }
      r.push_back((ThreadUs() - t0) / frames);
    }
    report("vad_" + name, r);
  }
  {
    std::vector<double> r;
    for (int k = 0; k < rounds; ++k) {
      WakeSpotter w;
      if (!w.Init({}).ok()) return 1;
      double t0 = ThreadUs();
      for (size_t i = 0; i < frames; ++i)
        w.Process(i * kFrameSamples, std::span<const int16_t>(pcm.data() + i * kFrameSamples, kFrameSamples), false);
      r.push_back((ThreadUs() - t0) / frames);
    }
    report("wake_pocketsphinx", r);
  }
  {
    // The second stage runs once per spotter detection, not per frame: one
    // forced decode of the phrase with 300 ms around it (the signal's first
    // phrase starts at 1 s and lasts ~0.9 s).
    std::vector<double> r;
    WakeVerifier v;
    if (!v.Init({}).ok()) return 1;
    const size_t from = size_t(0.7 * kSampleRate), to = std::min(pcm.size(), size_t(2.2 * kSampleRate));
    std::span<const int16_t> window(pcm.data() + from, to - from);
    double score = 0;
    for (int k = 0; k < rounds; ++k) {
      double t0 = ThreadUs();
      score = v.Score(window, size_t(0.9 * kSampleRate));
      r.push_back(ThreadUs() - t0);
    }
    out["verify_cpu_ms_per_wake"] = Median(r) / 1000;
    out["verify_window_s"] = double(window.size()) / kSampleRate;
    out["verify_score"] = score;
    std::cerr << "verify: " << Median(r) / 1000 << " ms per wake (score " << score << ")\n";
  }
  {
    // The actor's whole per-frame work with its defaults (framing, energy
    // VAD, wake spotter, history, event payloads).
    std::vector<double> r;
    int wakes = 0;
    for (int k = 0; k < rounds; ++k) {
      VoicePipeline p;
      if (!p.Init(
                {}, [](const VadOutput&) {}, [&](const WakeOutput&) { ++wakes; })
               .ok())
        return 1;
      double t0 = ThreadUs();
      for (size_t i = 0; i < frames; ++i)
        p.Feed(i * kFrameSamples, std::span<const int16_t>(pcm.data() + i * kFrameSamples, kFrameSamples));
      r.push_back((ThreadUs() - t0) / frames);
    }
    report("pipeline_default", r);
    out["pipeline_wakes_per_round"] = wakes / rounds;
  }
  out["realtime_margin_default"] = 20000.0 / out["cpu_us_per_frame"]["pipeline_default"].get<double>();
  std::cout << out.dump(2) << "\n";
  return 0;
}
