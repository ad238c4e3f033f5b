// TurnTracer: per-turn timelines of a dialog's stages across processes,
// built from bus messages in the order they were published (live or from a
// recording). No bus: callers feed (topic, header, payload).
//
// Each stage is stamped by its publisher (Header.mono_ns; the speaker
// stages by audio.ref's play_ns), never by when the tracer read it.
// Speech precedes the chat (its turn id is unknown until TurnStarted): the
// wake / key / speech stages heard since the last turn started are given
// to the next turn that starts. Across the WebSocket the link is the turn
// id (the Coze chat id): vb-session's events, the decoder's audio.out and
// playback's events carry it; audio.ref carries none, so its audible frames
// are given to the turn whose audio playback is playing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vb/v1/header.pb.h"

namespace vb::sniff {

// In the order they normally happen.
enum class Stage {
  kWake,             // voice.wake
  kKey,              // dialog.request push_to_talk down
  kSpeechStart,      // voice.vad SPEECH_START (client VAD)
  kSpeechEnd,        // voice.vad SPEECH_END, or push_to_talk up
  kServerSpeechEnd,  // session.event user_speech stopped (server VAD)
  kTranscript,       // session.event user_transcript final
  kTurnStarted,      // session.event turn_started
  kFirstText,        // session.event agent_text, the first
  kFirstAudio,       // session.audio first packet (or audio.out first frame)
  kFirstSample,      // audio.ref play_ns of the turn's first audible frame (or playback STARTED)
  kLastSample,       // end of the turn's last audible audio.ref frame (or DRAINED)
  kInterrupted,      // dialog.request/order interrupt, or playback FLUSHED
  kEnd,              // session.event turn_ended
  kCount
};
const char* StageName(Stage s);

struct TurnTrace {
  std::string turn_id;
  int64_t at[int(Stage::kCount)] = {};  // CLOCK_MONOTONIC ns, 0 = not seen
  std::string outcome;                  // "completed", "cancelled", "failed", "" if not ended
  // The reply's first packet (session.audio packet_index 0) was not heard
  // (lost by a slow listener): first_audio and the speaker's stages may be late.
  bool audio_lost = false;
  bool has(Stage s) const { return at[int(s)] != 0; }
  int64_t first() const;  // earliest stage
  // Speech end (client VAD, else server VAD) to the first reply sample at
  // the speaker; -1 if either is missing.
  int64_t ResponseNs() const;
};

class TurnTracer {
 public:
  using TurnFn = std::function<void(const TurnTrace&)>;
  explicit TurnTracer(TurnFn done) : done_(std::move(done)) {}
  // topic as on the wire ("audio.ref/local"), the payload's bytes. Topics
  // without a stage are ignored; a payload that does not parse is counted.
  void Add(std::string_view topic, const v1::Header& h, std::string_view payload);
  static bool Wants(std::string_view topic);  // a topic the tracer reads
  // Reports the turns still open (at the end of a recording or at exit).
  void Finish();
  uint64_t turns() const { return reported_; }
  uint64_t malformed() const { return malformed_; }

 private:
  TurnTrace* Find(const std::string& id);
  void Report(size_t i);
  // first_wins: keep the earliest stamp; else the latest message's.
  void Set(TurnTrace* t, Stage s, int64_t ns, bool first_wins = true);

  TurnFn done_;
  TurnTrace pending_;            // stages before a turn id is known
  std::vector<TurnTrace> open_;  // turns started, not yet reported
  std::string playing_;          // turn whose audio the speaker is playing
  int64_t last_audible_end_ = 0;
  uint64_t reported_ = 0, malformed_ = 0;
};

// A waterfall: one line per stage seen, its offset from the turn's first
// stage and a bar; then the response time and each stage's share of it.
std::string FormatTrace(const TurnTrace& t);
// One JSON object (a line): {"turn_id", "outcome", "response_ms", "stages": {name: ms from first}}.
std::string TraceJson(const TurnTrace& t);

}  // namespace vb::sniff
