// Prompt sounds: the wake chime and the error tone, generated in code (no
// asset files to ship), plus WAV files named in config, all converted to the
// playback rate, mono. Looked up by name on PlayPrompt.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bus/status.h"

namespace vb::playback {

// Two rising tones (E6 → A6), 0.25 s with soft edges.
std::vector<int16_t> MakeWakeChime(uint32_t rate);
// Two low buzzes, 0.4 s.
std::vector<int16_t> MakeErrorTone(uint32_t rate);

class PromptLibrary {
 public:
  // "wake" and "error" (generated) are always there.
  explicit PromptLibrary(uint32_t rate);
  // Loads a WAV file as prompt `name` (converted to the rate, mono).
  Status AddFile(const std::string& name, const std::string& path);
  void Add(const std::string& name, std::vector<int16_t> pcm) { prompts_[name] = std::move(pcm); }
  const std::vector<int16_t>* Find(const std::string& name) const;

 private:
  uint32_t rate_;
  std::map<std::string, std::vector<int16_t>> prompts_;
};

}  // namespace vb::playback
