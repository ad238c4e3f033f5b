// vb-afe-bench: measures each backend on a synthetic echo path and prints
// one JSON document.
//
// Scene (per echo delay): far-end speech through a mildly nonlinear
// loudspeaker (tanh soft clipping), a synthetic room (direct path plus an
// exponentially decaying noise tail, RT60 configurable) and a pure delay
// standing for what the timestamps do not account for; near-end white noise
// throughout; a second talker at the near end. Timeline:
//   A  far end alone (convergence, then steady-state ERLE)
//   B  near end alone (how the near talker passes)
//   C  double talk (how much the near talker is attenuated)
//   D  far end alone again (does double talk disturb the filter?)
// Each backend runs over it twice: echo_only (canceller and residual echo
// suppressor; no noise suppression, no AGC) and full (with noise suppression;
// AGC stays off since a gain change would read as echo loss). Cost: thread
// CPU time and per-frame wall time of 20 ms frames.
//
// usage: vb-afe-bench --far FAR.wav --near NEAR.wav [--delays 30,80,150]
//          [--backends speex,webrtc] [--rt60 0.3] [--tail-ms N] [--block-ms 10|20] [--drive 1.5]
//          [--noise-dbfs -60] [--seconds-a 30] [--out FILE]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "actors/afe/echo_processor.h"
#include "actors/afe/echo_sim.h"
#include "actors/common/wav.h"

namespace {

using vb::afe::EchoProcessor;
using vb::afe::ProcessorConfig;
namespace sim = vb::afe::sim;
using nlohmann::json;

constexpr int kRate = 16000;

struct Options {
  std::string far_path, near_path, out_path;
  std::vector<double> delays = {30, 80, 150};
  std::vector<std::string> backends = {"speex", "webrtc"};
  double rt60 = 0.3, drive = 1.5, noise_dbfs = -60, far_dbfs = -26;
  double echo_gain = 0.5;  // loudspeaker → mic coupling (direct path)
  double seconds_a = 30, seconds_b = 4, seconds_c = 8, seconds_d = 6;
  int tail_ms = ProcessorConfig{}.tail_ms;
  int block_ms = ProcessorConfig{}.block_ms;
  uint32_t seed = 1;
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

bool Parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--far") o->far_path = next();
    else if (a == "--near") o->near_path = next();
    else if (a == "--out") o->out_path = next();
    else if (a == "--delays") {
      o->delays.clear();
      for (auto& d : Split(next())) o->delays.push_back(std::stod(d));
    } else if (a == "--backends") o->backends = Split(next());
    else if (a == "--rt60") o->rt60 = std::stod(next());
    else if (a == "--drive") o->drive = std::stod(next());
    else if (a == "--noise-dbfs") o->noise_dbfs = std::stod(next());
    else if (a == "--tail-ms") o->tail_ms = std::stoi(next());
    else if (a == "--block-ms") o->block_ms = std::stoi(next());
    else if (a == "--seconds-a") o->seconds_a = std::stod(next());
    else if (a == "--seed") o->seed = uint32_t(std::stoul(next()));
    else {
      std::cerr << "unknown argument " << a << "\n";
      return false;
    }
  }
  if (o->far_path.empty() || o->near_path.empty()) {
    std::cerr << "usage: vb-afe-bench --far FAR.wav --near NEAR.wav [options] (see source)\n";
    return false;
  }
  return true;
}

// Loads a speech file as 16 kHz mono float at the given active level.
bool LoadSpeech(const std::string& path, double dbfs, std::vector<float>* out) {
  vb::audio::PcmBuffer b;
  if (auto s = vb::audio::ReadWav(path, &b); !s.ok()) {
    std::cerr << path << ": " << s.message() << "\n";
    return false;
  }
  if (b.sample_rate != kRate || b.channels != 1) {
    std::cerr << path << ": want 16 kHz mono (run_bench.sh converts)\n";
    return false;
  }
  *out = sim::ToFloat(b.samples);
  double active = sim::PowerDb(*out, 0, out->size(), *out, -50);
  sim::Scale(out, std::pow(10.0, (dbfs - active) / 20.0));
  return true;
}

// `len` samples of `src` starting at *cursor, looping.
std::vector<float> Take(const std::vector<float>& src, size_t* cursor, size_t len) {
  std::vector<float> y(len);
  for (size_t i = 0; i < len; ++i) y[i] = src[(*cursor + i) % src.size()];
  *cursor += len;
  return y;
}

struct Scene {
  std::vector<float> far, echo, near, mic;
  size_t a_end, b_end, c_end, d_end;
};

Scene Build(const Options& o, const std::vector<float>& far_speech, const std::vector<float>& near_speech,
            double delay_ms) {
  Scene s;
  s.a_end = size_t(o.seconds_a * kRate);
  s.b_end = s.a_end + size_t(o.seconds_b * kRate);
  s.c_end = s.b_end + size_t(o.seconds_c * kRate);
  s.d_end = s.c_end + size_t(o.seconds_d * kRate);
  size_t n = s.d_end;
  s.far.assign(n, 0.0f);
  s.near.assign(n, 0.0f);
  size_t fc = 0, nc = 0;
  auto place = [](std::vector<float>* dst, size_t from, const std::vector<float>& v) {
    std::copy(v.begin(), v.end(), dst->begin() + ptrdiff_t(from));
  };
  place(&s.far, 0, Take(far_speech, &fc, s.a_end));
  place(&s.near, s.a_end, Take(near_speech, &nc, s.b_end - s.a_end));
  place(&s.far, s.b_end, Take(far_speech, &fc, s.c_end - s.b_end));
  place(&s.near, s.b_end, Take(near_speech, &nc, s.c_end - s.b_end));
  place(&s.far, s.c_end, Take(far_speech, &fc, s.d_end - s.c_end));
  auto room = sim::RoomImpulse(kRate, o.rt60, 0.0, o.seed);
  auto speaker = sim::SoftClip(s.far, o.drive);
  s.echo = sim::Delay(sim::Convolve(speaker, room), size_t(delay_ms * kRate / 1000));
  sim::Scale(&s.echo, o.echo_gain);
  auto noise = sim::Noise(n, std::pow(10.0, o.noise_dbfs / 20.0), o.seed + 100);
  s.mic.resize(n);
  for (size_t i = 0; i < n; ++i) s.mic[i] = s.echo[i] + s.near[i] + noise[i];
  return s;
}

int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t WallNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

json Measure(const Options& o, const Scene& s, const std::string& backend, bool full) {
  ProcessorConfig c;
  c.agc = false;
  c.noise_suppression = full;
  c.tail_ms = o.tail_ms;
  c.block_ms = o.block_ms;
  std::unique_ptr<EchoProcessor> p;
  if (auto st = vb::afe::MakeProcessor(backend, c, &p); !st.ok()) return {{"error", st.message()}};
  auto mic = sim::ToS16(s.mic), ref = sim::ToS16(s.far);
  std::vector<int16_t> out(mic.size());
  const size_t frame = kRate / 50, block = p->block_samples();
  std::vector<double> frame_us;
  int64_t cpu0 = ThreadCpuNs();
  for (size_t at = 0; at + frame <= mic.size(); at += frame) {
    int64_t t0 = WallNs();
    for (size_t b = 0; b < frame; b += block) p->Process(&mic[at + b], &ref[at + b], &out[at + b]);
    frame_us.push_back(double(WallNs() - t0) / 1000.0);
  }
  double cpu_us = double(ThreadCpuNs() - cpu0) / 1000.0 / double(frame_us.size());
  std::sort(frame_us.begin(), frame_us.end());
  auto o_f = sim::ToFloat(out);
  const double gate = -55;  // echo frames above this count as echo-active
  size_t steady_from = s.a_end - std::min(s.a_end / 2, size_t(10 * kRate));
  auto conv = [&](double target) -> json {
    double t = sim::ConvergenceSeconds(s.mic, o_f, s.echo, 0, s.a_end, target, 0.5, gate);
    return t < 0 ? json(nullptr) : json(std::round(t * 100) / 100);
  };
  auto r1 = [](double v) { return std::round(v * 10) / 10; };
  // Near end: output power where the near talker is active, against the
  // talker's own power at the mic (positive = attenuated).
  double near_b = sim::PowerDb(s.near, s.a_end, s.b_end, s.near, -50);
  double out_b = sim::PowerDb(o_f, s.a_end, s.b_end, s.near, -50);
  double near_c = sim::PowerDb(s.near, s.b_end, s.c_end, s.near, -50);
  double out_c = sim::PowerDb(o_f, s.b_end, s.c_end, s.near, -50);
  double echo_c = sim::PowerDb(s.echo, s.b_end, s.c_end, s.near, -50);
  return {
      {"erle_steady_db", r1(sim::Erle(s.mic, o_f, s.echo, steady_from, s.a_end, gate))},
      {"erle_after_double_talk_db", r1(sim::Erle(s.mic, o_f, s.echo, s.c_end, s.d_end, gate))},
      {"convergence_15db_s", conv(15)},
      {"convergence_20db_s", conv(20)},
      {"near_single_talk_attenuation_db", r1(near_b - out_b)},
      {"double_talk_near_attenuation_db", r1(near_c - out_c)},
      {"double_talk_echo_to_near_db", r1(echo_c - near_c)},
      {"cpu_us_per_20ms_mean", r1(cpu_us)},
      {"wall_us_per_20ms_median", r1(frame_us[frame_us.size() / 2])},
      {"wall_us_per_20ms_p99", r1(frame_us[frame_us.size() * 99 / 100])},
      {"realtime_load_percent", std::round(cpu_us / 20000.0 * 1e4) / 100},
  };
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!Parse(argc, argv, &o)) return 2;
  std::vector<float> far, near;
  if (!LoadSpeech(o.far_path, o.far_dbfs, &far) || !LoadSpeech(o.near_path, o.far_dbfs, &near)) return 1;
  json results = json::array();
  for (double d : o.delays) {
    Scene s = Build(o, far, near, d);
    // The best ERLE this scene allows: echo power over the noise floor.
    double ceiling = sim::PowerDb(s.echo, 0, s.a_end, s.echo, -55) - o.noise_dbfs;
    for (const auto& backend : o.backends) {
      for (bool full : {false, true}) {
        json r = Measure(o, s, backend, full);
        r["backend"] = backend;
        r["profile"] = full ? "full" : "echo_only";
        r["delay_ms"] = d;
        r["erle_ceiling_db"] = std::round(ceiling * 10) / 10;
        results.push_back(r);
        std::cerr << r.dump() << "\n";
      }
    }
  }
  json doc = {
      {"bench", "afe_erle"},
      {"scene",
       {{"rate", kRate},
        {"rt60_s", o.rt60},
        {"softclip_drive", o.drive},
        {"noise_dbfs", o.noise_dbfs},
        {"far_active_dbfs", o.far_dbfs},
        {"echo_gain", o.echo_gain},
        {"tail_ms", o.tail_ms},
        {"block_ms", o.block_ms},
        {"segments_s",
         {{"far_alone", o.seconds_a},
          {"near_alone", o.seconds_b},
          {"double_talk", o.seconds_c},
          {"far_alone_again", o.seconds_d}}}}},
      {"results", results},
  };
  std::string text = doc.dump(2);
  std::cout << text << "\n";
  if (!o.out_path.empty()) std::ofstream(o.out_path) << text << "\n";
  return 0;
}
