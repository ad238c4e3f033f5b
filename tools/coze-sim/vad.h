// Server-side voice activity detection for `turn_detection.type=server_vad`.
// An energy detector with an adaptive noise floor on 10 ms frames of 16 kHz
// audio. Timing is counted in audio samples, not wall time, so the result is
// the same whether a client streams in real time or faster. The committed
// utterance starts `prefix_padding_ms` before the detected onset and ends when
// `silence_duration_ms` of silence has followed speech. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace vb::cozesim {

struct VadEvent {
  enum Kind { kStarted, kStopped } kind;
  std::vector<int16_t> utterance;  // kStopped only: prefix + speech + trailing silence
};

class Vad {
 public:
  Vad(int prefix_padding_ms, int silence_duration_ms);
  void Feed(const int16_t* samples, size_t n, std::vector<VadEvent>* events);
  bool in_speech() const { return in_speech_; }
  void Reset();

  static constexpr int kFrame = 160;                   // 10 ms at 16 kHz
  static constexpr int kMinSpeechFrames = 3;           // 30 ms above threshold to start
  static constexpr size_t kMaxUtterance = 16000 * 60;  // force a stop after 60 s

 private:
  void FeedFrame(const int16_t* f, std::vector<VadEvent>* events);

  size_t prefix_samples_;
  int silence_frames_needed_;
  bool in_speech_ = false;
  int speech_run_ = 0;
  int silence_run_ = 0;
  double noise_floor_ = 100.0;  // RMS units of s16
  std::vector<int16_t> partial_;
  std::deque<int16_t> history_;  // idle: last prefix + onset candidate audio
  std::vector<int16_t> utterance_;
};

}  // namespace vb::cozesim
