// The hearing rule (actors/control/hearing.h): when the device stops
// hearing (no audio.clean frames) the person is told within the bound,
// with the stage at fault when it is known; when hearing is back after a
// stretch that may have swallowed speech, one repeat cue. Never at device
// start, never while the path is merely jittery, no chatter.
#include <gtest/gtest.h>

#include "actors/control/hearing.h"

namespace vb::control {
namespace {

using namespace std::chrono_literals;
using Clock = HearingWatch::Clock;

struct Change {
  Clock::time_point at;
  bool hearing;
  std::string reason;
};

class Recorder : public HearingOutput {
 public:
  explicit Recorder(const Clock::time_point* now) : now_(now) {}
  void HearingChanged(bool hearing, const std::string& reason) override { changes.push_back({*now_, hearing, reason}); }
  void RepeatCue(std::chrono::milliseconds deaf_for) override { cues.push_back({*now_, deaf_for}); }
  std::vector<Change> changes;
  std::vector<std::pair<Clock::time_point, std::chrono::milliseconds>> cues;

 private:
  const Clock::time_point* now_;
};

class HearingTest : public ::testing::Test {
 protected:
  void Make(HearingOptions o = {}) {
    watch_ = std::make_unique<HearingWatch>(o, rec_);
    watch_->Start(t_);
    start_ = t_;
  }
  // Runs the watch as the actor's loop would until `until`: a frame every
  // `period` (none when zero) and Tick() at each deadline.
  void Run(Clock::duration length, Clock::duration period = 20ms) {
    const Clock::time_point until = t_ + length;
    Clock::time_point next_frame = t_ + period;
    while (true) {
      std::optional<Clock::time_point> deadline = watch_->NextDeadline();
      Clock::time_point next = until;
      if (period.count() > 0 && next_frame < next) next = next_frame;
      if (deadline && *deadline < next) next = *deadline;
      if (next >= until && !(period.count() > 0 && next_frame == until)) {
        t_ = until;
        watch_->Tick(t_);
        return;
      }
      t_ = next;
      if (period.count() > 0 && t_ == next_frame) {
        watch_->Frame(t_);
        next_frame += period;
      } else {
        watch_->Tick(t_);
      }
    }
  }
  Clock::time_point t_ = Clock::now();
  Clock::time_point start_;
  Recorder rec_{&t_};
  std::unique_ptr<HearingWatch> watch_;
};

TEST_F(HearingTest, FramesFlowingNeverDeaf) {
  Make();
  watch_->Listening(true, t_);
  Run(60s);
  EXPECT_TRUE(watch_->hearing());
  EXPECT_TRUE(rec_.changes.empty());
  EXPECT_TRUE(rec_.cues.empty());
}

TEST_F(HearingTest, JitterBelowTheBoundIsNotDeafness) {
  Make();
  watch_->Listening(true, t_);
  Run(2s);
  for (int i = 0; i < 10; ++i) {
    Run(350ms, 0ms);  // a loaded machine: a 350 ms hole in the stream
    Run(1s);
  }
  EXPECT_TRUE(rec_.changes.empty());
}

TEST_F(HearingTest, DeviceStartTakesTheStartGraceNotTheBound) {
  Make();
  watch_->Listening(true, t_);
  Run(4s, 0ms);  // a sound server warming up: no audio yet
  EXPECT_TRUE(watch_->hearing());
  Run(30s);
  EXPECT_TRUE(rec_.changes.empty());
}

TEST_F(HearingTest, NoAudioAtAllIsReportedAfterTheStartGraceAndNeverCues) {
  Make();
  watch_->Listening(true, t_);
  Run(6s, 0ms);
  ASSERT_EQ(rec_.changes.size(), 1u);
  EXPECT_FALSE(rec_.changes[0].hearing);
  EXPECT_EQ(rec_.changes[0].at - start_, 5s);
  EXPECT_EQ(rec_.changes[0].reason, "not hearing: no audio from the microphone yet");
  Run(2s);
  ASSERT_EQ(rec_.changes.size(), 2u);
  EXPECT_TRUE(rec_.changes[1].hearing);
  EXPECT_TRUE(rec_.cues.empty()) << "nothing was heard before: nothing can have been lost";
}

TEST_F(HearingTest, CaptureRestartIsReportedWithinTheBoundThenOneCue) {
  Make();
  watch_->Listening(true, t_);
  watch_->StageBeat("capture", 100, false, t_);
  Run(3s);
  const Clock::time_point last = t_;
  watch_->StageBeat("capture", 101, false, t_ + 60ms);  // the launcher restarted it
  Run(2s, 0ms);                                         // its first samples come 2 s later
  ASSERT_EQ(rec_.changes.size(), 1u);
  EXPECT_FALSE(rec_.changes[0].hearing);
  EXPECT_EQ(rec_.changes[0].at - last, 400ms);
  EXPECT_EQ(rec_.changes[0].reason, "not hearing: capture restarting");
  EXPECT_EQ(watch_->deaf_since(), last);
  Run(1s);
  ASSERT_EQ(rec_.changes.size(), 2u);
  EXPECT_TRUE(rec_.changes[1].hearing);
  EXPECT_EQ(rec_.changes[1].at - last, 2000ms + 20ms + 100ms) << "hearing after 100 ms of flowing audio";
  ASSERT_EQ(rec_.cues.size(), 1u);
  EXPECT_EQ(rec_.cues[0].second, 2020ms);
  EXPECT_EQ(watch_->longest_deaf_ms(), 2020);
}

TEST_F(HearingTest, TheReasonFollowsWhatTheHeartbeatsShowLater) {
  Make();
  watch_->StageBeat("capture", 100, false, t_);
  watch_->StageBeat("afe", 200, false, t_);
  Run(1s);
  Run(500ms, 0ms);
  ASSERT_EQ(rec_.changes.size(), 1u);
  EXPECT_EQ(rec_.changes[0].reason, "not hearing: no audio from the microphone");
  watch_->StageBeat("afe", 201, false, t_);
  ASSERT_EQ(rec_.changes.size(), 2u);
  EXPECT_EQ(rec_.changes[1].reason, "not hearing: afe restarting");
  watch_->StageBeat("afe", 201, false, t_ + 1s);  // same news: said once
  EXPECT_EQ(rec_.changes.size(), 2u);
  watch_->StageBeat("capture", 100, true, t_ + 1s);  // device lost
  ASSERT_EQ(rec_.changes.size(), 3u);
  EXPECT_EQ(rec_.changes[2].reason, "not hearing: capture reports a fault");
  watch_->StageBeat("somebody-else", 1, true, t_ + 1s);
  EXPECT_EQ(rec_.changes.size(), 3u);
}

TEST_F(HearingTest, ShortDeafStretchIsShownButDoesNotCue) {
  Make();
  watch_->Listening(true, t_);
  Run(2s);
  Run(700ms, 0ms);
  Run(1s);
  ASSERT_EQ(rec_.changes.size(), 2u);
  EXPECT_FALSE(rec_.changes[0].hearing);
  EXPECT_TRUE(rec_.changes[1].hearing);
  EXPECT_TRUE(rec_.cues.empty());
}

TEST_F(HearingTest, NoCueWhenTheDialogWasNotListening) {
  Make();
  watch_->Listening(false, t_);  // the agent speaks
  Run(2s);
  Run(2s, 0ms);
  Run(1s);
  EXPECT_EQ(rec_.changes.size(), 2u);
  EXPECT_TRUE(rec_.cues.empty());
  // Listening began in the middle of a deaf stretch: the person may have spoken.
  Run(2s);
  Run(1s, 0ms);
  watch_->Listening(true, t_);
  Run(1s, 0ms);
  Run(1s);
  EXPECT_EQ(rec_.cues.size(), 1u);
}

TEST_F(HearingTest, AStutteringPathStaysDeafWithoutChatter) {
  Make();
  watch_->Listening(true, t_);
  Run(2s);
  for (int i = 0; i < 20; ++i) {
    Run(450ms, 0ms);
    watch_->Frame(t_);  // a lone frame between silences
  }
  ASSERT_EQ(rec_.changes.size(), 1u);
  EXPECT_FALSE(watch_->hearing());
  Run(1s);
  ASSERT_EQ(rec_.changes.size(), 2u);
  EXPECT_TRUE(rec_.changes[1].hearing);
  EXPECT_EQ(rec_.cues.size(), 1u);
}

TEST_F(HearingTest, AtMostOneCuePerMinGap) {
  HearingOptions o;
  o.cue_min_gap = 5s;
  Make(o);
  watch_->Listening(true, t_);
  Run(1s);
  Run(1500ms, 0ms);
  Run(500ms);
  Run(1500ms, 0ms);
  Run(500ms);
  EXPECT_EQ(rec_.changes.size(), 4u) << "both stretches shown";
  EXPECT_EQ(rec_.cues.size(), 1u) << "one cue for two stretches within 5 s";
  Run(5s);
  Run(1500ms, 0ms);
  Run(500ms);
  EXPECT_EQ(rec_.cues.size(), 2u);
}

TEST_F(HearingTest, ZeroBoundTurnsItOff) {
  HearingOptions o;
  o.deaf_after = 0ms;
  Make(o);
  watch_->Listening(true, t_);
  EXPECT_FALSE(watch_->NextDeadline());
  Run(1s);
  Run(10s, 0ms);
  EXPECT_TRUE(watch_->hearing());
  EXPECT_TRUE(rec_.changes.empty());
}

}  // namespace
}  // namespace vb::control
