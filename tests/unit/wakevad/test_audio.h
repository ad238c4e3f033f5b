// Test audio for the wakevad unit tests: synthetic signals, and espeak-ng
// speech rendered to 16 kHz (espeak-ng and sox are project dependencies).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "actors/common/wav.h"

namespace vb::wakevad::test_audio {

inline std::vector<int16_t> Silence(int ms) { return std::vector<int16_t>(size_t(ms) * 16, 0); }

inline std::vector<int16_t> Noise(int ms, double dbfs, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 32768 * std::pow(10, dbfs / 20));
  std::vector<int16_t> out(size_t(ms) * 16);
  for (auto& s : out) s = int16_t(std::clamp(g(rng), -32768.0, 32767.0));
  return out;
}

// A vowel-like harmonic tone (pitch 150 Hz, formant-ish partials) at `dbfs` RMS.
inline std::vector<int16_t> Voiced(int ms, double dbfs) {
  std::vector<int16_t> out(size_t(ms) * 16);
  double amp = 32768 * std::pow(10, dbfs / 20) * std::sqrt(2.0) / 2;
  for (size_t i = 0; i < out.size(); ++i) {
    double t = double(i) / 16000;
    double v = std::sin(2 * M_PI * 150 * t) + 0.8 * std::sin(2 * M_PI * 600 * t) + 0.5 * std::sin(2 * M_PI * 1200 * t);
    out[i] = int16_t(std::clamp(amp * v, -32768.0, 32767.0));
  }
  return out;
}

inline void Append(std::vector<int16_t>* a, const std::vector<int16_t>& b) { a->insert(a->end(), b.begin(), b.end()); }

// Speaks `text` with espeak-ng into 16 kHz mono; empty on failure.
inline std::vector<int16_t> Speak(const std::string& text, const std::string& voice = "en-us", int rate = 150) {
  char dir[] = "/tmp/vb-wakevad-test-XXXXXX";
  if (!mkdtemp(dir)) return {};
  std::string raw = std::string(dir) + "/raw.wav", out = std::string(dir) + "/out.wav";
  std::string cmd = "espeak-ng -v " + voice + " -s " + std::to_string(rate) + " -w " + raw + " '" + text + "' && sox " +
                    raw + " -r 16000 -c 1 -b 16 " + out;
  std::vector<int16_t> pcm;
  if (std::system(cmd.c_str()) == 0) {
    audio::PcmBuffer b;
    if (audio::ReadWav(out, &b).ok() && b.sample_rate == 16000) pcm = std::move(b.samples);
  }
  std::remove(raw.c_str());
  std::remove(out.c_str());
  rmdir(dir);
  return pcm;
}

}  // namespace vb::wakevad::test_audio
