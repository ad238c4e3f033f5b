// Implementation of the echo scenes and measures. Plain loops: scenes are a
// few tens of seconds, and the bench times only the processors.
#include "actors/afe/echo_sim.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace vb::afe::sim {

std::vector<float> RoomImpulse(int rate, double rt60_s, double direct_to_reverb_db, uint32_t seed) {
  size_t n = size_t(rate * rt60_s);  // past RT60 the tail is 60 dB down
  std::vector<float> h(n, 0.0f);
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 1);
  const size_t onset = size_t(rate * 0.003);                // first reflections after 3 ms
  const double decay = std::log(1000.0) / (rt60_s * rate);  // amplitude, per sample
  double energy = 0;
  std::vector<double> tail(n, 0.0);
  for (size_t i = onset; i < n; ++i) {
    tail[i] = g(rng) * std::exp(-decay * double(i - onset));
    energy += tail[i] * tail[i];
  }
  double gain = std::sqrt(std::pow(10.0, -direct_to_reverb_db / 10.0) / energy);
  h[0] = 1.0f;
  for (size_t i = onset; i < n; ++i) h[i] = float(tail[i] * gain);
  return h;
}

std::vector<float> Convolve(const std::vector<float>& x, const std::vector<float>& h) {
  std::vector<float> y(x.size(), 0.0f);
  // Scatter form: skips the (many) zero input samples of speech pauses.
  for (size_t i = 0; i < x.size(); ++i) {
    float xi = x[i];
    if (xi == 0.0f) continue;
    size_t m = std::min(h.size(), x.size() - i);
    float* out = y.data() + i;
    for (size_t k = 0; k < m; ++k) out[k] += xi * h[k];
  }
  return y;
}

std::vector<float> SoftClip(const std::vector<float>& x, double drive) {
  if (drive <= 0) return x;
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = float(std::tanh(drive * x[i]) / drive);
  return y;
}

std::vector<float> Noise(size_t n, double rms, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, rms);
  std::vector<float> y(n);
  for (auto& v : y) v = float(g(rng));
  return y;
}

std::vector<float> Babble(size_t n, int rate, double rms, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> y(n, 0.0f);
  // Voiced syllables: harmonics of a gliding pitch shaped by two formants
  // that change every syllable, plus a little breath noise. Voice activity
  // detectors inside the backends (webrtc's AGC) take it for speech.
  constexpr int kHarmonics = 24;
  double phase = 0;
  size_t i = 0;
  while (i < n) {
    size_t syllable = size_t(rate * (0.12 + 0.2 * u(rng)));
    size_t end = std::min(n, i + syllable);
    double f0 = 100 + 120 * u(rng), glide = (u(rng) - 0.5) * 40;
    double f1 = 350 + 500 * u(rng), f2 = 1000 + 1400 * u(rng);
    double weight[kHarmonics];
    for (int k = 0; k < kHarmonics; ++k) {
      double f = (k + 1) * f0;
      weight[k] = (1.0 / (1.0 + std::pow((f - f1) / 120.0, 2)) + 0.5 / (1.0 + std::pow((f - f2) / 180.0, 2)) + 0.03) /
                  std::sqrt(k + 1.0);
    }
    for (size_t k = i; k < end; ++k) {
      double t = double(k - i) / double(end - i);
      double env = std::sin(M_PI * t);
      double pitch = f0 + glide * t;
      phase += pitch / rate;
      phase -= std::floor(phase);
      double v = 0;
      for (int h = 0; h < kHarmonics && (h + 1) * pitch < rate / 2.0; ++h)
        v += weight[h] * std::sin(2 * M_PI * (h + 1) * phase);
      y[k] = float(env * (v + 0.05 * g(rng)));
    }
    i = end;
    // Short gaps between syllables, longer pauses between phrases.
    i += size_t(rate * (u(rng) < 0.2 ? 0.3 + 0.5 * u(rng) : 0.02 + 0.05 * u(rng)));
  }
  double r = Rms(y);
  if (r > 0) Scale(&y, rms / r);
  return y;
}

std::vector<float> ToFloat(const std::vector<int16_t>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = float(x[i]) / 32768.0f;
  return y;
}

std::vector<int16_t> ToS16(const std::vector<float>& x) {
  std::vector<int16_t> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double v = std::round(double(x[i]) * 32768.0);
    y[i] = int16_t(std::clamp(v, -32768.0, 32767.0));
  }
  return y;
}

double Rms(const std::vector<float>& x) {
  if (x.empty()) return 0;
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s / double(x.size()));
}

void Scale(std::vector<float>* x, double gain) {
  for (auto& v : *x) v = float(v * gain);
}

std::vector<float> Delay(const std::vector<float>& x, size_t samples) {
  std::vector<float> y(x.size(), 0.0f);
  for (size_t i = samples; i < x.size(); ++i) y[i] = x[i - samples];
  return y;
}

namespace {

double FramePower(const std::vector<float>& x, size_t at, size_t len) {
  double s = 0;
  for (size_t i = at; i < at + len && i < x.size(); ++i) s += double(x[i]) * x[i];
  return s / double(len);
}

double Db(double p) { return 10.0 * std::log10(std::max(p, 1e-20)); }

}  // namespace

double PowerDb(const std::vector<float>& x, size_t from, size_t to, const std::vector<float>& gate, double gate_db,
               int rate) {
  const size_t frame = size_t(rate / 50);
  double sum = 0;
  size_t count = 0;
  for (size_t at = from; at + frame <= std::min(to, x.size()); at += frame) {
    if (!gate.empty() && Db(FramePower(gate, at, frame)) < gate_db) continue;
    sum += FramePower(x, at, frame);
    ++count;
  }
  return count ? Db(sum / double(count)) : -200.0;
}

double Erle(const std::vector<float>& mic, const std::vector<float>& out, const std::vector<float>& echo, size_t from,
            size_t to, double echo_gate_db, int rate) {
  return PowerDb(mic, from, to, echo, echo_gate_db, rate) - PowerDb(out, from, to, echo, echo_gate_db, rate);
}

double ConvergenceSeconds(const std::vector<float>& mic, const std::vector<float>& out, const std::vector<float>& echo,
                          size_t from, size_t to, double target_db, double window_s, double echo_gate_db, int rate) {
  const size_t frame = size_t(rate / 50);
  const size_t window = std::max<size_t>(1, size_t(window_s * 50));
  std::vector<std::pair<double, double>> active;  // (mic, out) power of echo frames
  for (size_t at = from; at + frame <= std::min(to, mic.size()); at += frame) {
    if (Db(FramePower(echo, at, frame)) < echo_gate_db) continue;
    active.emplace_back(FramePower(mic, at, frame), FramePower(out, at, frame));
    if (active.size() < window) continue;
    double m = 0, o = 0;
    for (size_t k = active.size() - window; k < active.size(); ++k) {
      m += active[k].first;
      o += active[k].second;
    }
    if (Db(m) - Db(o) >= target_db) return double(at + frame - from) / rate;
  }
  return -1.0;
}

}  // namespace vb::afe::sim
