// Helpers for the coze-sim unit tests: a Services fake that records jobs and
// lets a test deliver results, tone/silence generators, and event access.
#pragma once

#include <cmath>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/coze-sim/services.h"

namespace vb::cozesim::testing {

struct FakeServices : Services {
  struct Job {
    uint64_t session, job;
    std::string text;
    int rate;
    std::vector<int16_t> pcm;
    bool synth;
  };
  std::deque<Job> jobs;
  bool full = false;
  bool SubmitSynth(uint64_t s, uint64_t j, const std::string& text, int rate) override {
    if (full) return false;
    jobs.push_back({s, j, text, rate, {}, true});
    return true;
  }
  bool SubmitRecognize(uint64_t s, uint64_t j, std::vector<int16_t> pcm) override {
    if (full) return false;
    jobs.push_back({s, j, "", 0, std::move(pcm), false});
    return true;
  }
};

inline std::vector<int16_t> Tone(int rate, int ms, double amp = 8000, double hz = 440) {
  std::vector<int16_t> v(size_t(rate) * size_t(ms) / 1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = int16_t(amp * std::sin(2 * M_PI * hz * double(i) / rate));
  return v;
}

inline std::vector<int16_t> Silence(int rate, int ms) {
  return std::vector<int16_t>(size_t(rate) * size_t(ms) / 1000, 0);
}

inline std::string Bytes(const std::vector<int16_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 2);
}

}  // namespace vb::cozesim::testing
