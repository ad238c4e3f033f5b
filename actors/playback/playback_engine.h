// PlaybackEngine: what the speaker plays next. A jitter buffer of decoded
// speech per turn (prebuffer to target_ms before a turn starts and after an
// underrun), flush with a short raised-cosine fade (no click), cancelled
// turns dropped, prompt sounds mixed over speech, and the events of
// playback.event (STARTED, DRAINED, FLUSHED with its latency, UNDERRUN).
//
// The caller pulls samples with Render() at the device's pace and tells it
// when the first of them will leave the speaker (play_ns), so the FLUSHED
// latency counts what was already queued in the device.
//
// Knows nothing of the bus or the device. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "vb/v1/audio.pb.h"

namespace vb::playback {

struct EngineConfig {
  uint32_t rate = 16000;
  uint32_t target_ms = 60;           // prebuffer before playing a turn / after an underrun
  uint32_t max_buffer_ms = 120000;   // queued speech bound (agents send faster than real time)
  uint32_t fade_ms = 5;              // flush fade-out
  uint32_t drain_timeout_ms = 1000;  // starved this long without an end marker = the turn is over
  double prompt_gain = 1.0;
  bool offline = false;  // as fast as possible: no prebuffer, no underruns
  size_t remember_cancelled = 64;
  // Turns whose STARTED / DRAINED were already sent: a turn is announced at
  // most once each, whatever its audio does (a restarted playback joining a
  // reply midway, bursts, late frames), so playback.event cannot flood.
  size_t remember_announced = 64;
};

struct EngineEvent {
  v1::PlaybackEvent::Kind kind;
  std::string turn_id;
  std::string detail;
  int64_t latency_ns = 0;
};

struct RenderInfo {
  bool audible = false;   // speech or a prompt in this block (not only silence)
  int64_t origin_ns = 0;  // origin of the first speech sample rendered, 0 if none
  std::string turn_id;    // turn of that speech
};

struct EngineCounters {
  uint64_t frames_in = 0;
  uint64_t dropped_cancelled = 0;
  uint64_t dropped_overflow = 0;
  uint64_t underruns = 0;
  uint64_t flushes = 0;
  uint64_t prompts = 0;
  uint64_t turns_started = 0;
  uint64_t turns_drained = 0;
  uint64_t events_suppressed = 0;  // repeated STARTED/DRAINED of a turn, not sent
};

class PlaybackEngine {
 public:
  explicit PlaybackEngine(EngineConfig config);

  // Queues speech of `turn_id` (mono, config rate). False if dropped
  // (cancelled turn or full buffer).
  bool Push(const std::string& turn_id, const int16_t* pcm, size_t n, int64_t origin_ns, bool end_of_turn,
            int64_t now_ns);
  // Fades out and drops the queued speech of turn_id ("" = all). Later
  // frames of that turn still play. `unplayed`: when the caller discards its
  // device's queue, the samples that queue held (the fade starts from them,
  // as that is what the listener hears next).
  void Flush(const std::string& turn_id, int64_t now_ns, std::span<const int16_t> unplayed = {});
  // Flush, and drop every later frame of the turn ("" = the playing turn and
  // every queued one).
  void Cancel(const std::string& turn_id, int64_t now_ns, std::span<const int16_t> unplayed = {});
  // Would Flush(turn_id) silence the speech being heard now?
  bool FlushHitsPlaying(const std::string& turn_id) const {
    return (turn_id.empty() || turn_id == turn_) &&
           (state_ == State::kPlaying || state_ == State::kStarved || !fade_.empty());
  }
  void PlayPrompt(const std::vector<int16_t>* pcm);

  // Renders n samples whose first leaves the speaker at play_ns.
  void Render(int16_t* out, size_t n, int64_t now_ns, int64_t play_ns, RenderInfo* info);

  // Anything to play now (queued speech, a fade, a prompt)?
  bool HasWork() const { return queued_ > 0 || !fade_.empty() || !prompts_.empty(); }
  bool prompt_pending() const { return !prompts_.empty(); }
  // Nothing to play and no turn waiting for more (only silence until the
  // next Push or prompt; no event is due).
  bool Idle() const { return state_ == State::kIdle && !HasWork(); }
  bool IsCancelled(const std::string& turn_id) const;
  size_t queued_samples() const { return queued_; }
  const std::string& playing_turn() const { return turn_; }
  // A turn's speech is under way at the speaker: STARTED sent and neither
  // DRAINED nor flushed yet (buffering again after an underrun counts).
  bool speaking() const { return turn_started_ && state_ != State::kIdle && !Announced(drained_, turn_); }
  std::vector<EngineEvent> TakeEvents() { return std::exchange(events_, {}); }
  const EngineCounters& counters() const { return counters_; }

 private:
  enum class State { kIdle, kBuffering, kPlaying, kStarved };
  struct Chunk {
    std::string turn_id;
    std::vector<int16_t> pcm;
    size_t pos = 0;
    int64_t origin_ns = 0;
    bool end_of_turn = false;
  };
  struct Prompt {
    const std::vector<int16_t>* pcm;
    size_t pos = 0;
  };
  void UpdateState(int64_t now_ns);
  bool ReadyToPlay(int64_t now_ns) const;
  void Event(v1::PlaybackEvent::Kind kind, const std::string& turn, std::string detail = "", int64_t latency = 0);
  static bool Announced(const std::deque<std::string>& seen, const std::string& turn);
  // Sends STARTED/DRAINED of `turn` unless already sent (then counted).
  void Announce(v1::PlaybackEvent::Kind kind, std::deque<std::string>& seen, const std::string& turn,
                std::string detail = "");

  EngineConfig config_;
  std::deque<Chunk> queue_;
  size_t queued_ = 0;
  State state_ = State::kIdle;
  std::string turn_;           // turn at the front (playing or about to)
  bool turn_started_ = false;  // STARTED sent for turn_
  int64_t since_ns_ = 0;       // buffering / starved since
  std::vector<int16_t> fade_;  // faded-out tail still to play
  size_t fade_pos_ = 0;
  std::vector<std::pair<std::string, int64_t>> flushes_;  // (turn, command time) awaiting silence
  std::vector<Prompt> prompts_;
  std::deque<std::string> cancelled_;
  std::deque<std::string> started_, drained_;  // turns announced (bounded)
  std::vector<EngineEvent> events_;
  EngineCounters counters_;
};

}  // namespace vb::playback
