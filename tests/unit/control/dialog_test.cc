// The dialog state machine: the three modes, barge-in by every route,
// timeouts, late events of finished turns, and actors going down.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/input.h>
#include <unistd.h>

#include "actors/control/dialog.h"
#include "actors/control/key_source.h"
#include "tests/support/process.h"

namespace vb::control {
namespace {

using namespace std::chrono_literals;

class Recorder : public DialogOutput {
 public:
  void StateChanged(const v1::DialogState& s) override { states.push_back(s.state()); }
  void Command(const v1::DialogCommand& c) override { commands.push_back(c); }
  std::string LastCommand() const {
    if (commands.empty()) return "";
    const auto& c = commands.back();
    return c.command_case() == v1::DialogCommand::kInterrupt ? "interrupt"
           : c.has_start_listening()                         ? "start"
           : c.has_stop_listening()                          ? (c.stop_listening().commit() ? "commit" : "stop")
           : c.has_play_prompt()                             ? "prompt:" + c.play_prompt().name()
                                                             : "other";
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < commands.size(); ++i) {
      Recorder r;
      r.commands = {commands[i]};
      out.push_back(r.LastCommand());
    }
    return out;
  }
  std::vector<v1::DialogStateKind> states;
  std::vector<v1::DialogCommand> commands;
};

class DialogTest : public ::testing::Test {
 protected:
  void Make(v1::DialogMode mode) {
    DialogOptions o;
    o.mode = mode;
    o.wake_guard = 2500ms;  // as `control.barge_in.wake_guard_ms: 2500` (only acts with WakeSpotting)
    dialog_ = std::make_unique<Dialog>(o, rec_);
    dialog_->SessionConnected(true, "conv-1", t_);
  }
  // A reply with audio: started → playback started → completed → drained.
  void Reply(const std::string& turn) {
    dialog_->TurnStarted(turn, t_);
    EXPECT_EQ(dialog_->kind(), v1::STATE_THINKING);
    dialog_->PlaybackStarted(turn, t_);
    EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
    dialog_->AgentAudioEnded(turn, 50, t_);
    dialog_->TurnEnded(turn, v1::TurnEnded::COMPLETED, t_);
    EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING) << "finished before the audio played";
    dialog_->PlaybackDrained(turn, t_);
  }
  Recorder rec_;
  std::unique_ptr<Dialog> dialog_;
  Clock::time_point t_ = Clock::now();
};

TEST_F(DialogTest, StartsOfflineUntilSessionConnects) {
  DialogOptions o;
  Dialog d(o, rec_);
  EXPECT_EQ(d.kind(), v1::STATE_OFFLINE);
  d.SessionConnected(true, "c", t_);
  EXPECT_EQ(d.kind(), v1::STATE_LISTENING);
  EXPECT_EQ(d.state().conversation_id(), "c");
}

TEST_F(DialogTest, ContinuousTwoTurns) {
  Make(v1::MODE_CONTINUOUS);
  for (std::string turn : {"t1", "t2"}) {
    dialog_->ServerSpeech(true, t_);
    dialog_->ServerSpeech(false, t_);
    EXPECT_EQ(dialog_->kind(), v1::STATE_THINKING);
    Reply(turn);
    EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  }
  EXPECT_TRUE(rec_.commands.empty()) << "continuous mode needs no commands";
}

TEST_F(DialogTest, TextOnlyReplyEndsWithoutPlayback) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->TurnEnded("t1", v1::TurnEnded::COMPLETED, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogTest, ServerSpeechWhileSpeakingBargesIn) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->ServerSpeech(true, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  ASSERT_EQ(rec_.LastCommand(), "interrupt");
  EXPECT_EQ(rec_.commands.back().interrupt().reason(), v1::Interrupt::SERVER_SPEECH);
  EXPECT_EQ(rec_.commands.back().interrupt().turn_id(), "t1");
  // Late events of the cancelled turn change nothing.
  dialog_->PlaybackStarted("t1", t_);
  dialog_->TurnEnded("t1", v1::TurnEnded::CANCELLED, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(dialog_->barge_ins(), 1u);
}

TEST_F(DialogTest, ClientVadBargeInOnlyWhileSpeaking) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->ClientVad(true, t_);
  EXPECT_TRUE(rec_.commands.empty());
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->ClientVad(true, t_ + 2600ms);
  EXPECT_EQ(rec_.LastCommand(), "interrupt");
  EXPECT_EQ(rec_.commands.back().interrupt().reason(), v1::Interrupt::USER_SPEECH);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

// A capture deaf for seconds that then delivers its backlog: speech the
// user said before the reply existed is found late, while the agent speaks.
// It is no barge-in (the reply goes on, the event is counted); speech
// captured after the turn boundary still interrupts at once.
TEST_F(DialogTest, SpeechCapturedBeforeTheReplyBeganDoesNotBargeIn) {
  Make(v1::MODE_CONTINUOUS);
  const auto asked = t_ + 1s;           // said while the capture was deaf
  dialog_->TurnStarted("t1", t_ + 5s);  // a reply (a text question, say) begins
  dialog_->PlaybackStarted("t1", t_ + 6s);
  dialog_->ClientVad(true, t_ + 9s, asked);  // the backlog reaches the VAD
  dialog_->ServerSpeech(true, t_ + 9s, asked);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  EXPECT_TRUE(rec_.commands.empty()) << rec_.LastCommand();
  EXPECT_EQ(dialog_->late_speech(), 2u);
  EXPECT_EQ(dialog_->barge_ins(), 0u);
  // Speech captured during the reply interrupts it.
  dialog_->ServerSpeech(true, t_ + 9s, t_ + 8s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  ASSERT_EQ(rec_.LastCommand(), "interrupt");
  EXPECT_EQ(dialog_->late_speech(), 2u);
}

TEST_F(DialogTest, LateSpeechOfThePreviousReplyDoesNotBargeIntoTheNext) {
  Make(v1::MODE_CONTINUOUS);
  Reply("t1");
  // The next turn: speech captured while t1 played (before t2 began) is late
  // for t2; the boundary is t2's, not t1's.
  dialog_->TurnStarted("t2", t_ + 10s);
  dialog_->PlaybackStarted("t2", t_ + 11s);
  dialog_->ClientVad(true, t_ + 14s, t_ + 5s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  EXPECT_EQ(dialog_->late_speech(), 1u);
  // No stamp (an older publisher): as before, a barge-in.
  dialog_->ClientVad(true, t_ + 14s);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

// A satellite's VAD event: its stamps are on the satellite's clock (booted
// long after the hub, say), so only their difference means anything here.
TEST_F(DialogTest, ASatellitesStampsAreReadAsAnAgeNotAsTheHubsClock) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_ + 5s);
  dialog_->PlaybackStarted("t1", t_ + 6s);
  const auto now = t_ + 9s;
  const int64_t sat_mono = 3'000'000'000;  // the satellite's clock: 3 s since its boot
  // Captured 120 ms ago, during the reply: a barge-in, whatever the hub's clock says.
  const auto captured = CapturedAt(sat_mono - 120'000'000, sat_mono, now);
  ASSERT_TRUE(captured.has_value());
  EXPECT_EQ(*captured, now - 120ms);
  EXPECT_FALSE(CapturedAt(0, sat_mono, now).has_value());             // not stamped
  EXPECT_FALSE(CapturedAt(sat_mono + 1, sat_mono, now).has_value());  // from the future
  EXPECT_FALSE(CapturedAt(1, 90'000'000'000, now).has_value());       // stamps of two hosts
  dialog_->ClientVad(true, now, captured);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(dialog_->late_speech(), 0u);
  ASSERT_EQ(rec_.LastCommand(), "interrupt");
}

TEST_F(DialogTest, ClientVadIgnoredWhileTheEchoCancellerConverges) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->ClientVad(true, t_ + 100ms);  // echo residue at the reply's onset
  dialog_->ClientVad(true, t_ + 2400ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  EXPECT_EQ(dialog_->vad_held_off(), 2u);
  dialog_->ServerSpeech(true, t_ + 200ms);  // the service's VAD still interrupts at once
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogTest, ClientVadBargeInCanBeOff) {
  DialogOptions o;
  o.barge_in_client_vad = false;  // no echo canceller: the agent would interrupt itself
  Dialog d(o, rec_);
  d.SessionConnected(true, "c", t_);
  d.TurnStarted("t1", t_);
  d.PlaybackStarted("t1", t_);
  d.ClientVad(true, t_);
  EXPECT_EQ(d.kind(), v1::STATE_SPEAKING);
  EXPECT_TRUE(rec_.commands.empty());
}

TEST_F(DialogTest, WakeWordListensWithAudioAfterThePhrase) {
  Make(v1::MODE_WAKE_WORD);
  EXPECT_EQ(dialog_->kind(), v1::STATE_IDLE);
  v1::WakeEvent w;
  w.set_context_start_sample(1000);
  w.set_start_sample(1050);  // the phrase: samples 1050..1200
  w.set_end_sample(1200);
  w.set_context_pcm(std::string(400, 'a') + std::string(600, 'b'));  // 500 samples
  dialog_->Wake(w, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(rec_.Names(), (std::vector<std::string>{"prompt:wake", "start"}));
  // From the phrase's end: what followed it, not the phrase; named, not carried.
  EXPECT_TRUE(rec_.commands[1].start_listening().has_from_sample());
  EXPECT_EQ(rec_.commands[1].start_listening().from_sample(), 1200u);
  EXPECT_GT(rec_.commands[1].ByteSizeLong(), 0u);
  EXPECT_LT(rec_.commands[1].ByteSizeLong(), 32u) << "no PCM on the control plane";
  dialog_->ServerSpeech(true, t_);
  dialog_->ServerSpeech(false, t_);
  Reply("t1");
  EXPECT_EQ(dialog_->kind(), v1::STATE_IDLE);
  EXPECT_EQ(rec_.LastCommand(), "stop");
}

TEST_F(DialogTest, WakeWordTimesOutWhenNobodySpeaks) {
  Make(v1::MODE_WAKE_WORD);
  dialog_->Wake(v1::WakeEvent(), t_);
  ASSERT_TRUE(dialog_->NextDeadline().has_value());
  EXPECT_EQ(*dialog_->NextDeadline(), t_ + 8000ms);
  dialog_->Tick(t_ + 7999ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  dialog_->Tick(t_ + 8000ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_IDLE);
  EXPECT_EQ(rec_.LastCommand(), "stop");
}

TEST_F(DialogTest, WakeWordWhileSpeakingInterrupts) {
  Make(v1::MODE_WAKE_WORD);
  dialog_->Wake(v1::WakeEvent(), t_);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->Wake(v1::WakeEvent(), t_);
  EXPECT_EQ(rec_.Names()[2], "interrupt");
  EXPECT_EQ(rec_.commands[2].interrupt().reason(), v1::Interrupt::WAKE_WORD);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogTest, PushToTalkDownInterruptsAndListensUpCommits) {
  Make(v1::MODE_PUSH_TO_TALK);
  EXPECT_EQ(dialog_->kind(), v1::STATE_IDLE);
  dialog_->PushToTalk(true, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  dialog_->PushToTalk(false, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_THINKING);
  EXPECT_EQ(rec_.Names(), (std::vector<std::string>{"start", "commit"}));
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->PushToTalk(true, t_);  // talk over the agent
  EXPECT_EQ(rec_.Names(), (std::vector<std::string>{"start", "commit", "interrupt", "start"}));
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

TEST_F(DialogTest, NoReplyGivesUpWithErrorTone) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->ServerSpeech(true, t_);
  dialog_->ServerSpeech(false, t_);
  dialog_->Tick(t_ + 30001ms);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(rec_.LastCommand(), "prompt:error");
}

TEST_F(DialogTest, SessionLossGoesOfflineAndRecovers) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->ActorHealth("session", false, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_OFFLINE);
  dialog_->TurnEnded("t1", v1::TurnEnded::COMPLETED, t_);  // stale
  EXPECT_EQ(dialog_->kind(), v1::STATE_OFFLINE);
  dialog_->SessionConnected(true, "conv-1", t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(dialog_->state().conversation_id(), "conv-1");
}

TEST_F(DialogTest, PlaybackDownMidReplyEndsTheTurn) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->ActorHealth("playback", false, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_EQ(rec_.Names(), (std::vector<std::string>{"prompt:error", "interrupt"}));
}

TEST_F(DialogTest, ModeChangeWhileSpeakingStopsTheReply) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->SetMode(v1::MODE_PUSH_TO_TALK, t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_IDLE);
  EXPECT_EQ(dialog_->state().mode(), v1::MODE_PUSH_TO_TALK);
  EXPECT_EQ(rec_.LastCommand(), "interrupt");
}

TEST_F(DialogTest, ObservedInterruptFollowsWithoutResending) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  dialog_->InterruptObserved("", t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_TRUE(rec_.commands.empty());
}

TEST(EvdevKeySourceTest, ReportsPressAndReleaseIgnoringRepeatAndOtherKeys) {
  vb::testing::TempDir dir;
  auto write_events = [&](std::vector<std::pair<int, int>> events) {
    std::string bytes;
    for (auto [code, value] : events) {
      input_event ev{};
      ev.type = EV_KEY;
      ev.code = uint16_t(code);
      ev.value = value;
      bytes.append(reinterpret_cast<const char*>(&ev), sizeof ev);
    }
    dir.Write("events", bytes);
  };
  EXPECT_EQ(KeyCodeFromName("KEY_SPACE"), KEY_SPACE);
  EXPECT_EQ(KeyCodeFromName("f12"), KEY_F12);
  EXPECT_EQ(KeyCodeFromName("57"), 57);
  EXPECT_EQ(KeyCodeFromName("KEY_NOPE"), -1);
  write_events({{KEY_A, 1}, {KEY_SPACE, 1}, {KEY_SPACE, 2}, {KEY_A, 0}});
  EvdevKeySource key(dir.File("events"), KEY_SPACE);
  ASSERT_TRUE(key.Open().ok());
  bool lost = true;
  auto v = key.Read(&lost);
  EXPECT_FALSE(lost);
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(*v);
  write_events({{KEY_SPACE, 0}});
  ASSERT_TRUE(key.Open().ok());
  v = key.Read(&lost);
  ASSERT_TRUE(v.has_value());
  EXPECT_FALSE(*v);
  EvdevKeySource missing(dir.File("nope"), KEY_SPACE);
  EXPECT_FALSE(missing.Open().ok());
}

// Issue 13 item 7: with a wake word spotted, the uplink is held back while
// the agent is busy, and a wake cuts its phrase out before it reaches the
// service: it never becomes a turn of its own or the start of the question.
TEST_F(DialogTest, WakeOverTheReplyCutsThePhraseFromTheHeldBackUplink) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->WakeSpotting(true, t_);
  dialog_->ServerSpeech(true, t_);
  dialog_->ServerSpeech(false, t_);
  dialog_->TurnStarted("t1", t_);
  ASSERT_TRUE(dialog_->guard_on());
  const auto& hold = rec_.commands.back();
  ASSERT_TRUE(hold.has_uplink_guard());
  EXPECT_TRUE(hold.uplink_guard().hold());
  EXPECT_EQ(hold.uplink_guard().delay_ms(), 2500u);
  dialog_->PlaybackStarted("t1", t_);
  EXPECT_EQ(dialog_->kind(), v1::STATE_SPEAKING);
  // Renewed while it lasts (the session lets an unrenewed hold lapse).
  const size_t before = rec_.commands.size();
  dialog_->Tick(t_ + Dialog::kGuardRenew);
  ASSERT_EQ(rec_.commands.size(), before + 1);
  EXPECT_TRUE(rec_.commands.back().uplink_guard().hold());

  v1::WakeEvent w;
  w.set_end_sample(48000);
  dialog_->Wake(w, t_);
  ASSERT_GE(rec_.commands.size(), before + 3);
  const auto& release = rec_.commands[before + 1];
  ASSERT_TRUE(release.has_uplink_guard()) << "the cut comes before anything else";
  EXPECT_FALSE(release.uplink_guard().hold());
  EXPECT_EQ(release.uplink_guard().cut_before_sample(), 48000u);
  EXPECT_TRUE(rec_.commands[before + 2].has_interrupt());
  EXPECT_EQ(rec_.commands[before + 2].interrupt().reason(), v1::Interrupt::WAKE_WORD);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_FALSE(dialog_->guard_on());
  EXPECT_EQ(dialog_->wake_cuts(), 1u);
}

// Without a wake: the hold outlives the reply by wake_guard (a phrase begun
// as the reply ended is still cut), then everything held goes out.
TEST_F(DialogTest, UplinkHoldEndsAfterTheReplyWithNothingCut) {
  Make(v1::MODE_CONTINUOUS);
  dialog_->WakeSpotting(true, t_);
  dialog_->ServerSpeech(true, t_);
  dialog_->ServerSpeech(false, t_);
  Reply("t1");
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  EXPECT_TRUE(dialog_->guard_on());
  ASSERT_TRUE(dialog_->NextDeadline().has_value());
  dialog_->Tick(t_ + 2500ms);
  EXPECT_FALSE(dialog_->guard_on());
  ASSERT_TRUE(rec_.commands.back().has_uplink_guard());
  EXPECT_FALSE(rec_.commands.back().uplink_guard().hold());
  EXPECT_EQ(rec_.commands.back().uplink_guard().cut_before_sample(), 0u);
}

// No spotter (wake word off, or vb-wakevad silent), or push-to-talk: nothing
// is held, so speech over the agent reaches the service at once.
TEST_F(DialogTest, NoUplinkHoldWithoutAWakeWordOrInPushToTalk) {
  Make(v1::MODE_CONTINUOUS);
  Reply("t1");
  for (const auto& c : rec_.commands) EXPECT_FALSE(c.has_uplink_guard());
  dialog_->WakeSpotting(true, t_);
  dialog_->TurnStarted("t2", t_);
  EXPECT_TRUE(dialog_->guard_on());
  dialog_->WakeSpotting(false, t_);  // the spotter went silent: let go at once
  EXPECT_FALSE(dialog_->guard_on());
  Make(v1::MODE_PUSH_TO_TALK);
  rec_.commands.clear();
  dialog_->WakeSpotting(true, t_);
  dialog_->PushToTalk(true, t_);
  dialog_->PushToTalk(false, t_);
  Reply("t3");
  for (const auto& c : rec_.commands) EXPECT_FALSE(c.has_uplink_guard());
}

// Wake-word mode: speech over the reply (client VAD) opens the stream at once
// to stop the speaker; the wake that follows cuts the phrase and does not
// open a second stream.
TEST_F(DialogTest, WakeWordModeVoiceBargeInThenWakeCutsWithoutASecondStart) {
  Make(v1::MODE_WAKE_WORD);
  dialog_->WakeSpotting(true, t_);
  v1::WakeEvent w0;
  w0.set_end_sample(100);
  dialog_->Wake(w0, t_);
  dialog_->ServerSpeech(true, t_);
  dialog_->ServerSpeech(false, t_);
  dialog_->TurnStarted("t1", t_);
  dialog_->PlaybackStarted("t1", t_);
  ASSERT_TRUE(dialog_->guard_on());
  dialog_->ClientVad(true, t_ + 3s);  // past the hold-off
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
  const size_t before = rec_.commands.size();
  v1::WakeEvent w;
  w.set_end_sample(96000);
  dialog_->Wake(w, t_ + 4s);
  int starts = 0;
  for (size_t i = before; i < rec_.commands.size(); ++i) starts += rec_.commands[i].has_start_listening();
  EXPECT_EQ(starts, 0);
  ASSERT_TRUE(rec_.commands[before].has_uplink_guard());
  EXPECT_EQ(rec_.commands[before].uplink_guard().cut_before_sample(), 96000u);
  EXPECT_EQ(dialog_->kind(), v1::STATE_LISTENING);
}

}  // namespace
}  // namespace vb::control
