// WakeVerifier: a second opinion on each keyphrase detection. The spotter's
// kws search compares the phrase with a crude phone loop frame by frame and
// fires on sound-alikes in ordinary speech; the verifier re-decodes the audio
// around the detection (from PcmHistory) twice with full Viterbi search and
// batch cepstral normalisation: once with a grammar that forces the phrase
// (silence and noise fillers allowed around it), once with pocketsphinx's
// phone recogniser (allphone search, phone bigram). The score is the
// log-likelihood gain of the phrase path over the free phone path, per frame
// of the phrase; a detection is kept only if the score reaches the margin.
//
// Runs only when the spotter fires, so its cost (a few ms per detection) does
// not add to the per-frame cost. Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "bus/status.h"

struct ps_decoder_s;

namespace vb::wakevad {

struct WakeOptions;

class WakeVerifier {
 public:
  WakeVerifier();
  ~WakeVerifier();
  WakeVerifier(const WakeVerifier&) = delete;
  WakeVerifier& operator=(const WakeVerifier&) = delete;

  // Same model, dictionary, pronunciations and phrase as the spotter.
  Status Init(const WakeOptions& options);
  // Score of `pcm` (16 kHz mono: the phrase with a little audio around it);
  // `phrase_samples` is the spotter's estimate of the phrase length, used to
  // normalise. NaN if the decoder produced no path.
  double Score(std::span<const int16_t> pcm, uint64_t phrase_samples);

 private:
  int32_t Decode(const char* search, std::span<const int16_t> pcm, bool* ok);

  ps_decoder_s* ps_ = nullptr;
};

}  // namespace vb::wakevad
