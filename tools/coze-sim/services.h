// The slow work a session hands off: speech synthesis and recognition. The
// server implements it with worker threads whose results come back on the
// event loop; unit tests implement it synchronously or by hand.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vb::cozesim {

class Services {
 public:
  virtual ~Services() = default;
  // Both return false when the bounded job queue is full (the caller answers
  // with a 4009 "busy" error). Results are delivered to the session later by
  // whoever owns it, tagged with (session_id, job).
  virtual bool SubmitSynth(uint64_t session_id, uint64_t job, const std::string& text, int speech_rate) = 0;
  virtual bool SubmitRecognize(uint64_t session_id, uint64_t job, std::vector<int16_t> pcm16k) = 0;
};

}  // namespace vb::cozesim
