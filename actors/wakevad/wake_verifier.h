// WakeVerifier: a second opinion on each keyphrase detection. The spotter's
// kws search compares the phrase with a crude phone loop frame by frame, on a
// live cepstral mean, and fires on stretches of ordinary speech that only
// partly sound like the phrase. The verifier re-decodes the audio around the
// detection (from PcmHistory) as one utterance with batch cepstral
// normalisation, against a grammar that forces the whole phrase (silence and
// noise fillers allowed around it). It fails when no path through the whole
// phrase survives the decoder's word beam — the audio never completes the
// phrase — or when the path's acoustic score per 10 ms frame of the phrase is
// below the margin.
//
// Measured (README): on 1.13 h of ordinary speech it turns down both false
// accepts of the spotter and keeps every real phrase the spotter found at
// 10 dB SNR. A free phone recogniser as the competitor (allphone search) was
// tried first: ~12 s of CPU per wake and no better separation.
//
// Runs only when the spotter fires. Not thread-safe.
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
  // Score of `pcm` (16 kHz mono: the phrase with a little audio around it):
  // the phrase path's score (pocketsphinx log domain) per 10 ms frame of
  // `phrase_samples`, the spotter's estimate of the phrase length. NaN if no
  // path through the whole phrase survived.
  double Score(std::span<const int16_t> pcm, uint64_t phrase_samples);

 private:
  ps_decoder_s* ps_ = nullptr;
};

}  // namespace vb::wakevad
