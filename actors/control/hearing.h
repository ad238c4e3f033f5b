// HearingWatch: is the device hearing the person right now? (issue 12: a
// question spoken while the microphone path restarts must not vanish
// without a word.)
//
// The rule, apart from the bus (times injected):
// - Hearing is judged by audio.clean frames arriving — the end of the
//   microphone path (capture → afe, through the broker) that the session
//   streams to the agent. Heartbeats are not enough: a restarted vb-capture
//   heartbeats within ~60 ms while its first samples may come seconds later.
// - No frame for `deaf_after` → not hearing (once; the reason names the
//   stage when its heartbeat shows it restarting, down or degraded). Before
//   the first frame ever (device start, sound server warming up) the bound
//   is `start_grace` instead, and a deafness that ends without any frame
//   having been heard before it never cues.
// - Hearing again once frames have flowed for `resume_after` without a gap
//   of `deaf_after` (a lone frame between two silences does not count):
//   no deaf/hearing chatter from a stuttering path.
// - The repeat cue: when hearing resumes after a stretch of at least
//   `cue_after` during which the dialog listened (or would have: wake-word
//   mode at rest), the person may have spoken into it — RepeatCue(), at
//   most once per `cue_min_gap`.
// - deaf_after = 0 turns the watch off (a device with no microphone).
//
// Not thread-safe; call Tick() at NextDeadline().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace vb::control {

class HearingOutput {
 public:
  virtual ~HearingOutput() = default;
  // Not hearing (with a reason for people), or hearing again.
  virtual void HearingChanged(bool hearing, const std::string& reason) = 0;
  // Hearing is back after a deaf stretch of `deaf_for` while the person
  // may have been speaking: ask them to say it again.
  virtual void RepeatCue(std::chrono::milliseconds deaf_for) = 0;
};

struct HearingOptions {
  std::chrono::milliseconds deaf_after{400};    // 0 = off
  std::chrono::milliseconds start_grace{5000};  // before the first frame
  std::chrono::milliseconds resume_after{100};
  std::chrono::milliseconds cue_after{1000};
  std::chrono::milliseconds cue_min_gap{5000};
};

class HearingWatch {
 public:
  using Clock = std::chrono::steady_clock;

  HearingWatch(HearingOptions options, HearingOutput& out) : options_(options), out_(out) {}

  void Start(Clock::time_point now);
  // An audio.clean frame arrived.
  void Frame(Clock::time_point now);
  // A heartbeat of a microphone-path stage ("capture", "afe").
  void StageBeat(const std::string& stage, int64_t pid, bool degraded, Clock::time_point now);
  // Whether the dialog listens now, or would as soon as the person speaks.
  void Listening(bool listening, Clock::time_point now);
  void Tick(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const;

  bool enabled() const { return options_.deaf_after.count() > 0; }
  bool hearing() const { return hearing_; }
  const std::string& reason() const { return reason_; }
  // Start of the current deaf stretch (the last frame before it).
  Clock::time_point deaf_since() const { return deaf_since_; }
  uint64_t deaf_stretches() const { return deaf_stretches_; }
  uint64_t cues() const { return cues_; }
  int64_t longest_deaf_ms() const { return longest_deaf_ms_; }

 private:
  void GoDeaf(Clock::time_point since, Clock::time_point now);
  void Resume(Clock::time_point now);
  std::string Reason() const;

  HearingOptions options_;
  HearingOutput& out_;
  bool started_ = false;
  Clock::time_point start_{};
  bool heard_any_ = false;  // a frame since Start
  bool heard_before_deaf_ = false;
  Clock::time_point last_frame_{};
  bool hearing_ = true;
  std::string reason_;
  Clock::time_point deaf_since_{};
  std::optional<Clock::time_point> resume_from_;  // first frame of the flow that may end the stretch
  bool listening_ = false;
  bool listened_while_deaf_ = false;
  std::optional<Clock::time_point> last_cue_;
  struct Stage {
    int64_t pid = 0;
    Clock::time_point last_beat{};
    std::optional<Clock::time_point> restarted;  // when a new pid was first seen
    bool degraded = false;
  };
  // Only the stages named in Reason() are kept (heartbeat names come from
  // the bus; a publisher may invent any number).
  std::map<std::string, Stage> stages_{{"capture", {}}, {"afe", {}}};
  uint64_t deaf_stretches_ = 0, cues_ = 0;
  int64_t longest_deaf_ms_ = 0;
};

}  // namespace vb::control
