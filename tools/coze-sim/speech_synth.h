// Text to speech with the espeak-ng C library, synthesized in-process in
// synchronous mode with a callback that collects the samples. espeak-ng keeps
// global state and is not thread-safe: every call goes through one mutex, and
// the server calls it from a single worker thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vb::cozesim {

class SpeechSynth {
 public:
  // Initializes espeak-ng once per process; false if the data is missing.
  static bool Init(std::string* error);
  // Speaks `text` at the Coze `speech_rate` (−50…100, 0 = normal); returns
  // mono s16 at SampleRate(). Empty on failure.
  static std::vector<int16_t> Speak(const std::string& text, int speech_rate, const std::string& voice = "en-us");
  static int SampleRate();
};

}  // namespace vb::cozesim
