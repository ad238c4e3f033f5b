// The dialog when things die (issue 12): a turn whose session restarted,
// went silent or forgot it is ended FAILED for everyone; a reply cut by the
// playback or the decoder is interrupted and the user told; a restarted
// vb-control resumes THINKING/SPEAKING from what the others report instead
// of LISTENING; commands get a verdict for dialog.ack.
#include <gtest/gtest.h>

#include "actors/control/dialog.h"

namespace vb::control {
namespace {

using namespace std::chrono_literals;

class Recorder : public DialogOutput {
 public:
  void StateChanged(const v1::DialogState& s) override { states.push_back(s); }
  void Command(const v1::DialogCommand& c) override { commands.push_back(c); }
  void TurnAbandoned(const std::string& turn, const std::string& why) override { abandoned.push_back(turn); }
  void ReplyCut(const std::string& turn, const std::string& why) override { cut.push_back(turn); }
  int Count(v1::DialogCommand::CommandCase kind, const std::string& prompt = "") const {
    int n = 0;
    for (const auto& c : commands)
      n += c.command_case() == kind && (prompt.empty() || c.play_prompt().name() == prompt);
    return n;
  }
  bool EverIn(v1::DialogStateKind k) const {
    for (const auto& s : states)
      if (s.state() == k) return true;
    return false;
  }
  std::vector<v1::DialogState> states;
  std::vector<v1::DialogCommand> commands;
  std::vector<std::string> abandoned, cut;
};

v1::SessionStatus Status(bool connected, const std::string& turn) {
  v1::SessionStatus s;
  s.set_connected(connected);
  s.set_conversation_id("conv-1");
  s.set_turn_id(turn);
  return s;
}

class DialogRecoveryTest : public ::testing::Test {
 protected:
  void Make(bool restarted_control = false) {
    DialogOptions o;
    dialog_ = std::make_unique<Dialog>(o, rec_);
    if (restarted_control) dialog_->Start(t_);
    else dialog_->SessionConnected(true, "conv-1", t_);
  }
  void Speaking(const std::string& turn) {
    dialog_->TurnStarted(turn, t_);
    dialog_->PlaybackStarted(turn, t_);
    ASSERT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  }
  Recorder rec_;
  std::unique_ptr<Dialog> dialog_;
  Clock::time_point t_ = Clock::time_point(100s);
};

TEST_F(DialogRecoveryTest, SessionRestartMidReplyEndsTheTurnFailedForEveryone) {
  Make();
  dialog_->TurnStarted("t1", t_);
  dialog_->ActorRestarted("session", t_ + 1s);
  EXPECT_EQ(rec_.abandoned, std::vector<std::string>{"t1"});
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kInterrupt), 1);
  EXPECT_EQ(rec_.commands[0].interrupt().turn_id(), "t1");
  EXPECT_EQ(dialog_->barge_ins(), 0u);
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt, "error"), 1);
  EXPECT_EQ(dialog_->turns_abandoned(), 1u);
  // The restarted session's own TurnEnded of it comes late: ignored.
  dialog_->TurnEnded("t1", v1::TurnEnded::FAILED, t_ + 2s);
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt, "error"), 1);
  // The next turn works.
  Speaking("t2");
  dialog_->TurnEnded("t2", v1::TurnEnded::COMPLETED, t_ + 3s);
  dialog_->PlaybackDrained("t2", t_ + 4s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, SessionRestartAfterTheReplyCompletedLetsItsAudioFinish) {
  Make();
  Speaking("t1");
  dialog_->AgentAudioEnded("t1", 40, t_);
  dialog_->TurnEnded("t1", v1::TurnEnded::COMPLETED, t_);
  dialog_->ActorRestarted("session", t_ + 1s);
  EXPECT_TRUE(rec_.abandoned.empty());
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  dialog_->PlaybackDrained("t1", t_ + 2s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, SessionSilentMidTurnEndsItFailed) {
  Make();
  dialog_->TurnStarted("t1", t_);
  dialog_->ActorHealth("session", false, t_ + 2s);
  EXPECT_EQ(rec_.abandoned, std::vector<std::string>{"t1"});
  EXPECT_EQ(dialog_->kind(), v1::STATE_OFFLINE);
  // A hung session that resumes must not go on with it: interrupted.
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kInterrupt), 1);
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt, "error"), 1);  // one tone, not two
}

TEST_F(DialogRecoveryTest, AStatusNamingAnotherTurnEndsOursOnlyIfTheSessionNamesTurns) {
  Make();
  dialog_->TurnStarted("t1", t_);
  dialog_->SessionStatus(Status(true, ""), t_ + 1s);  // an older session: turn_id never set
  EXPECT_TRUE(rec_.abandoned.empty());
  EXPECT_EQ(dialog_->kind(), v1::STATE_THINKING);
  dialog_->SessionStatus(Status(true, "t1"), t_ + 2s);  // this one names its turns
  EXPECT_TRUE(rec_.abandoned.empty());
  dialog_->SessionStatus(Status(true, ""), t_ + 3s);  // and no longer runs ours, never ended it
  EXPECT_EQ(rec_.abandoned, std::vector<std::string>{"t1"});
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, PlaybackDeathMidReplyCutsItAndTheToneIsReplayedWhenItIsBack) {
  Make();
  Speaking("t1");
  dialog_->ActorHealth("playback", false, t_ + 2s);
  EXPECT_EQ(rec_.cut, std::vector<std::string>{"t1"});
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kInterrupt), 1);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  int tones = rec_.Count(v1::DialogCommand::kPlayPrompt, "error");
  dialog_->ActorHealth("playback", true, t_ + 3s);
  dialog_->ActorRestarted("playback", t_ + 3s);
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt, "error"), tones + 1);  // once, for the new playback
  EXPECT_EQ(rec_.cut.size(), 1u);
}

TEST_F(DialogRecoveryTest, FastPlaybackOrDecoderRestartMidReplyCutsIt) {
  for (const char* actor : {"playback", "decoder"}) {
    rec_ = Recorder();
    Make();
    Speaking("t1");
    dialog_->ActorRestarted(actor, t_ + 1s);
    EXPECT_EQ(rec_.cut, std::vector<std::string>{"t1"}) << actor;
    EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt, "error"), 1) << actor;
    EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING) << actor;
  }
}

TEST_F(DialogRecoveryTest, RestartWhileIdleCutsNothing) {
  Make();
  dialog_->ActorRestarted("playback", t_);
  dialog_->ActorRestarted("session", t_);
  EXPECT_TRUE(rec_.cut.empty());
  EXPECT_TRUE(rec_.abandoned.empty());
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt), 0);
}

TEST_F(DialogRecoveryTest, RestartedControlResumesSpeakingNotListening) {
  Make(/*restarted_control=*/true);
  dialog_->SessionStatus(Status(true, "t7"), t_ + 300ms);
  EXPECT_TRUE(rec_.states.empty()) << "chose a state before hearing the playback";
  dialog_->PlaybackSpeaking(true, t_ + 600ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  EXPECT_EQ(dialog_->state().turn_id(), "t7");
  EXPECT_FALSE(rec_.EverIn(v1::STATE_LISTENING));
  dialog_->TurnEnded("t7", v1::TurnEnded::COMPLETED, t_ + 1s);
  dialog_->PlaybackDrained("t7", t_ + 2s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, RestartedControlResumesThinking) {
  Make(true);
  dialog_->PlaybackSpeaking(false, t_ + 100ms);
  dialog_->SessionStatus(Status(true, "t7"), t_ + 300ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_THINKING);
  EXPECT_EQ(dialog_->state().turn_id(), "t7");
  dialog_->PlaybackStarted("t7", t_ + 1s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
}

TEST_F(DialogRecoveryTest, RestartedControlEndsTheResumedTurnTheSessionNeverEnds) {
  Make(true);
  dialog_->PlaybackSpeaking(false, t_ + 100ms);
  dialog_->SessionStatus(Status(true, "t7"), t_ + 300ms);
  ASSERT_EQ(dialog_->kind(), v1::STATE_THINKING);
  dialog_->Tick(t_ + 300ms + 30s);  // reply_timeout: control gives it up
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(rec_.Count(v1::DialogCommand::kPlayPrompt, "error"), 1);
  EXPECT_TRUE(rec_.abandoned.empty()) << "within the grace the session may still end it";
  dialog_->Tick(t_ + 300ms + 33s);
  EXPECT_EQ(rec_.abandoned, std::vector<std::string>{"t7"}) << "nobody else will end it for gateway clients";
}

TEST_F(DialogRecoveryTest, RestartedControlAdoptsTheTurnStillPlayingAfterTheSessionFinishedIt) {
  Make(true);
  dialog_->SessionStatus(Status(true, ""), t_ + 300ms);
  dialog_->PlaybackSpeaking(true, t_ + 500ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  dialog_->PlaybackDrained("t7", t_ + 2s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, RestartedControlWithNothingUnderWayListensAndTimesOutWithoutPlayback) {
  Make(true);
  dialog_->SessionStatus(Status(true, ""), t_ + 300ms);
  ASSERT_TRUE(dialog_->NextDeadline());
  EXPECT_TRUE(rec_.states.empty());
  dialog_->Tick(*dialog_->NextDeadline());  // no playback heartbeat in time
  EXPECT_FALSE(dialog_->recovering());
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, RestartedControlWithTheSessionDownStaysOffline) {
  Make(true);
  dialog_->Tick(t_ + 10s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_OFFLINE);
  dialog_->SessionStatus(Status(true, ""), t_ + 11s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, ALostDrainedIsMadeUpByTwoIdlePlaybackHeartbeats) {
  Make();
  Speaking("t1");
  dialog_->TurnEnded("t1", v1::TurnEnded::COMPLETED, t_);
  dialog_->PlaybackSpeaking(false, t_ + 1s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  dialog_->PlaybackSpeaking(false, t_ + 2s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogRecoveryTest, IdlePlaybackHeartbeatsDoNotEndAReplyTheSessionIsStillSending) {
  Make();
  Speaking("t1");
  for (int i = 1; i < 5; ++i) dialog_->PlaybackSpeaking(false, t_ + std::chrono::seconds(i));
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
}

TEST_F(DialogRecoveryTest, CommandsGetAVerdict) {
  DialogOptions o;
  o.mode = v1::MODE_PUSH_TO_TALK;
  dialog_ = std::make_unique<Dialog>(o, rec_);
  auto offline = dialog_->PushToTalk(true, t_);
  EXPECT_EQ(offline.result, v1::CommandAck::REFUSED);
  EXPECT_EQ(offline.reason, "the session is not connected");
  dialog_->PushToTalk(false, t_);
  dialog_->SessionConnected(true, "c", t_);
  EXPECT_EQ(dialog_->PushToTalk(true, t_).result, v1::CommandAck::ACCEPTED);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(dialog_->PushToTalk(true, t_).reason, "the key was already down");
  EXPECT_EQ(dialog_->SetMode(v1::MODE_UNSPECIFIED, t_).result, v1::CommandAck::REFUSED);
  EXPECT_EQ(dialog_->SetMode(v1::MODE_CONTINUOUS, t_).result, v1::CommandAck::ACCEPTED);
  EXPECT_EQ(dialog_->SetMode(v1::MODE_CONTINUOUS, t_).reason, "already in that mode");
  EXPECT_EQ(dialog_->InterruptObserved("", t_).reason, "nothing was under way");
}

TEST_F(DialogRecoveryTest, EndedTurnsAreRememberedBoundedly) {
  Make();
  // 10,000 invented turns, each ended: the oldest are forgotten, the newest
  // still have their late events ignored.
  for (int i = 0; i < 10000; ++i) {
    std::string t = "t" + std::to_string(i);
    dialog_->TurnStarted(t, t_);
    dialog_->TurnEnded(t, v1::TurnEnded::CANCELLED, t_);
  }
  dialog_->TurnStarted("t9999", t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

// chaos run, 500 kills: a text turn started, vb-control interrupted it when
// the decoder died, and vb-session was killed before it confirmed the
// cancel; nobody ended the turn and its gateway client waited 45 s.
TEST_F(DialogRecoveryTest, ATurnLetGoThatTheSessionNeverEndsIsEndedAfterTheGrace) {
  Make();
  Speaking("t1");
  dialog_->ActorRestarted("decoder", t_ + 1s);  // reply cut: interrupted
  ASSERT_TRUE(rec_.abandoned.empty());
  dialog_->Tick(t_ + 3500ms);
  EXPECT_TRUE(rec_.abandoned.empty()) << "within the grace the session may still end it";
  ASSERT_TRUE(dialog_->NextDeadline().has_value());
  EXPECT_LE(*dialog_->NextDeadline(), t_ + 4s);
  dialog_->Tick(t_ + 4s);
  EXPECT_EQ(rec_.abandoned, std::vector<std::string>{"t1"});
  EXPECT_EQ(dialog_->turns_abandoned(), 1u);
  dialog_->Tick(t_ + 10s);
  EXPECT_EQ(rec_.abandoned.size(), 1u) << "ended once";
}

TEST_F(DialogRecoveryTest, ATurnTheSessionEndsIsNotEndedAgain) {
  Make();
  // Completed normally, cancelled by a barge-in, waiting for a tool: the
  // session's own TurnEnded (or the running tool call) leaves nothing to do.
  Speaking("t1");
  dialog_->AgentAudioEnded("t1", 10, t_);
  dialog_->TurnEnded("t1", v1::TurnEnded::COMPLETED, t_);
  dialog_->PlaybackDrained("t1", t_ + 1s);
  Speaking("t2");
  dialog_->ServerSpeech(true, t_ + 2s);
  dialog_->TurnEnded("t2", v1::TurnEnded::CANCELLED, t_ + 2100ms);
  dialog_->TurnStarted("t3", t_ + 3s);
  dialog_->TurnEnded("t3", v1::TurnEnded::REQUIRES_ACTION, t_ + 3s);
  dialog_->Tick(t_ + 60s);
  EXPECT_TRUE(rec_.abandoned.empty());
}

}  // namespace
}  // namespace vb::control
