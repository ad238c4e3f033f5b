// The hearing rule (see hearing.h).
#include "actors/control/hearing.h"

namespace vb::control {
namespace {
// A stage restart this long before the stretch began still explains it (the
// new process heartbeats ~60 ms after the kill; the last frames may have
// arrived a little before the kill).
constexpr auto kRestartExplains = std::chrono::seconds(1);
}  // namespace

void HearingWatch::Start(Clock::time_point now) {
  started_ = true;
  start_ = now;
}

void HearingWatch::Frame(Clock::time_point now) {
  if (!started_) Start(now);
  const bool gap = heard_any_ && now - last_frame_ >= options_.deaf_after;
  heard_any_ = true;
  last_frame_ = now;
  if (hearing_) return;
  if (!resume_from_ || gap) resume_from_ = now;
  if (now - *resume_from_ >= options_.resume_after) Resume(now);
}

void HearingWatch::StageBeat(const std::string& stage, int64_t pid, bool degraded, Clock::time_point now) {
  auto it = stages_.find(stage);
  if (it == stages_.end()) return;
  Stage& s = it->second;
  if (s.pid != 0 && pid != s.pid) s.restarted = now;
  s.pid = pid;
  s.last_beat = now;
  s.degraded = degraded;
  if (hearing_) return;
  std::string why = Reason();
  if (why != reason_) {
    reason_ = why;
    out_.HearingChanged(false, reason_);
  }
}

void HearingWatch::Listening(bool listening, Clock::time_point now) {
  listening_ = listening;
  if (!hearing_ && listening) listened_while_deaf_ = true;
}

void HearingWatch::Tick(Clock::time_point now) {
  if (!enabled() || !started_ || !hearing_) return;
  if (heard_any_) {
    if (now - last_frame_ >= options_.deaf_after) GoDeaf(last_frame_, now);
  } else if (now - start_ >= options_.start_grace) {
    GoDeaf(start_, now);
  }
}

std::optional<HearingWatch::Clock::time_point> HearingWatch::NextDeadline() const {
  if (!enabled() || !started_ || !hearing_) return std::nullopt;
  return heard_any_ ? last_frame_ + options_.deaf_after : start_ + options_.start_grace;
}

void HearingWatch::GoDeaf(Clock::time_point since, Clock::time_point now) {
  hearing_ = false;
  heard_before_deaf_ = heard_any_;
  deaf_since_ = since;
  resume_from_.reset();
  listened_while_deaf_ = listening_;
  ++deaf_stretches_;
  reason_ = Reason();
  out_.HearingChanged(false, reason_);
}

void HearingWatch::Resume(Clock::time_point now) {
  hearing_ = true;
  reason_.clear();
  // The stretch: from the last frame before it to the first one after.
  const auto deaf_for = std::chrono::duration_cast<std::chrono::milliseconds>(*resume_from_ - deaf_since_);
  resume_from_.reset();
  longest_deaf_ms_ = std::max<int64_t>(longest_deaf_ms_, deaf_for.count());
  out_.HearingChanged(true, "");
  // At device start nothing was heard yet, so nothing can have been lost;
  // a dialog that was not listening lost nothing either.
  if (!heard_before_deaf_ || !listened_while_deaf_ || deaf_for < options_.cue_after) return;
  if (last_cue_ && now - *last_cue_ < options_.cue_min_gap) return;
  last_cue_ = now;
  ++cues_;
  out_.RepeatCue(deaf_for);
}

std::string HearingWatch::Reason() const {
  for (const char* name : {"capture", "afe"}) {
    const Stage& s = stages_.at(name);
    if (s.degraded) return std::string("not hearing: ") + name + " reports a fault";
    if (s.restarted && *s.restarted + kRestartExplains >= deaf_since_)
      return std::string("not hearing: ") + name + " restarting";
  }
  if (!heard_before_deaf_) return "not hearing: no audio from the microphone yet";
  return "not hearing: no audio from the microphone";
}

}  // namespace vb::control
