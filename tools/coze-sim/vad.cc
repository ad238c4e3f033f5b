// Implementation of vad.h.
#include "tools/coze-sim/vad.h"

#include <algorithm>
#include <cmath>

namespace vb::cozesim {
namespace {
// Absolute floor for "speech": about -50 dBFS, quiet enough for espeak-ng at
// any volume, loud enough that digital silence and dither never trigger.
constexpr double kMinThreshold = 100.0;
constexpr double kFloorRatio = 4.0;  // ~12 dB above the tracked noise floor
}  // namespace

Vad::Vad(int prefix_padding_ms, int silence_duration_ms)
    : prefix_samples_(size_t(std::max(0, prefix_padding_ms)) * 16),
      silence_frames_needed_(std::max(1, silence_duration_ms / 10)) {}

void Vad::Reset() {
  in_speech_ = false;
  speech_run_ = silence_run_ = 0;
  partial_.clear();
  history_.clear();
  utterance_.clear();
}

void Vad::Feed(const int16_t* samples, size_t n, std::vector<VadEvent>* events) {
  size_t i = 0;
  if (!partial_.empty()) {
    size_t take = std::min(n, size_t(kFrame) - partial_.size());
    partial_.insert(partial_.end(), samples, samples + take);
    i = take;
    if (partial_.size() < size_t(kFrame)) return;
    FeedFrame(partial_.data(), events);
    partial_.clear();
  }
  for (; i + kFrame <= n; i += kFrame) FeedFrame(samples + i, events);
  partial_.insert(partial_.end(), samples + i, samples + n);
}

void Vad::FeedFrame(const int16_t* f, std::vector<VadEvent>* events) {
  double sum = 0;
  for (int i = 0; i < kFrame; ++i) sum += double(f[i]) * f[i];
  double rms = std::sqrt(sum / kFrame);
  bool loud = rms > std::max(kMinThreshold, noise_floor_ * kFloorRatio);
  if (!in_speech_) {
    // Track the floor only while idle, slowly upwards and quickly downwards.
    noise_floor_ = rms < noise_floor_ ? 0.9 * noise_floor_ + 0.1 * rms : 0.995 * noise_floor_ + 0.005 * rms;
    noise_floor_ = std::max(noise_floor_, 10.0);
    history_.insert(history_.end(), f, f + kFrame);
    speech_run_ = loud ? speech_run_ + 1 : 0;
    size_t keep = prefix_samples_ + size_t(kMinSpeechFrames) * kFrame;
    while (history_.size() > keep) history_.pop_front();
    if (speech_run_ >= kMinSpeechFrames) {
      in_speech_ = true;
      silence_run_ = 0;
      utterance_.assign(history_.begin(), history_.end());
      history_.clear();
      events->push_back({VadEvent::kStarted, {}});
    }
    return;
  }
  utterance_.insert(utterance_.end(), f, f + kFrame);
  silence_run_ = loud ? 0 : silence_run_ + 1;
  if (silence_run_ >= silence_frames_needed_ || utterance_.size() >= kMaxUtterance) {
    in_speech_ = false;
    speech_run_ = 0;
    silence_run_ = 0;
    events->push_back({VadEvent::kStopped, std::move(utterance_)});
    utterance_.clear();
  }
}

}  // namespace vb::cozesim
