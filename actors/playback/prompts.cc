// Generated prompt sounds and the prompt library (see prompts.h).
#include "actors/playback/prompts.h"

#include <cmath>

#include "actors/common/resampler.h"
#include "actors/common/wav.h"

namespace vb::playback {
namespace {

// Appends a tone with raised-cosine edges (no click at either end).
void Tone(std::vector<int16_t>* out, uint32_t rate, double hz, double seconds, double amp, double edge_s = 0.01) {
  size_t n = size_t(seconds * rate), edge = size_t(edge_s * rate);
  for (size_t i = 0; i < n; ++i) {
    double g = 1;
    if (i < edge) g = 0.5 - 0.5 * std::cos(M_PI * double(i) / double(edge));
    if (n - i <= edge) g = 0.5 - 0.5 * std::cos(M_PI * double(n - i) / double(edge));
    // A touch of the octave makes it a chime rather than a beep.
    double s = std::sin(2 * M_PI * hz * double(i) / rate) + 0.3 * std::sin(4 * M_PI * hz * double(i) / rate);
    out->push_back(int16_t(amp * g * s / 1.3 * 32767));
  }
}

void Gap(std::vector<int16_t>* out, uint32_t rate, double seconds) {
  out->resize(out->size() + size_t(seconds * rate), 0);
}

}  // namespace

std::vector<int16_t> MakeWakeChime(uint32_t rate) {
  std::vector<int16_t> v;
  Tone(&v, rate, 1318.5, 0.11, 0.35);
  Gap(&v, rate, 0.02);
  Tone(&v, rate, 1760.0, 0.12, 0.35);
  return v;
}

std::vector<int16_t> MakeErrorTone(uint32_t rate) {
  std::vector<int16_t> v;
  Tone(&v, rate, 220.0, 0.15, 0.4);
  Gap(&v, rate, 0.08);
  Tone(&v, rate, 196.0, 0.17, 0.4);
  return v;
}

PromptLibrary::PromptLibrary(uint32_t rate) : rate_(rate) {
  prompts_["wake"] = MakeWakeChime(rate);
  prompts_["error"] = MakeErrorTone(rate);
}

Status PromptLibrary::AddFile(const std::string& name, const std::string& path) {
  audio::PcmBuffer pcm;
  if (Status st = audio::ReadWav(path, &pcm); !st.ok()) return st;
  std::vector<int16_t> mono;
  audio::MixToMono(pcm.samples.data(), pcm.frames(), pcm.channels, 0, pcm.channels, &mono);
  audio::Resampler r;
  if (Status st = r.Init(pcm.sample_rate, rate_, 1); !st.ok()) return st;
  std::vector<int16_t> out;
  r.Process(mono.data(), mono.size(), &out);
  prompts_[name] = std::move(out);
  return Status::Ok();
}

const std::vector<int16_t>* PromptLibrary::Find(const std::string& name) const {
  auto it = prompts_.find(name);
  return it == prompts_.end() ? nullptr : &it->second;
}

}  // namespace vb::playback
