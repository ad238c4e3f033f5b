// "Talk to the agent" end to end: the whole pipeline started by `vb run`
// (vb-broker, vb-cozesim, capture → afe → wakevad → session ⇄ simulator →
// decoder → playback, vb-control supervising), the microphone a WAV file of
// espeak-ng speech, the speaker a WAV file. What a user would notice:
// questions are answered aloud in the right order and the agent remembers
// the conversation; the wake word and push-to-talk open the microphone only
// when asked; a tool call is answered and the reply resumes; a dropped
// connection and crashed actors do not end the conversation.
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <regex>

#include "tests/e2e/dialog/dialog_harness.h"

namespace vb::e2e {
namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Dialog : public DialogHarness {
 protected:
  // Wake-word mode with `mic`: runs the dialog and checks it.
  void RunWakeWordDialog(const MicScript& mic);
};

// Non-silent 20 ms frames in the speaker's WAV (the reply file).
int LoudFramesInWav(const std::string& path, double* seconds = nullptr) {
  audio::PcmBuffer b;
  if (!audio::ReadWav(path, &b).ok()) return -1;
  if (seconds) *seconds = double(b.frames()) / b.sample_rate;
  int loud = 0;
  const size_t step = b.sample_rate / 50 * b.channels;
  for (size_t i = 0; i + step <= b.samples.size(); i += step) loud += Dbfs(b.samples.data() + i, step) > -45;
  return loud;
}

// Index in states_ of the first state `kind` of `turn` at/after `from`, -1 if none.
int StateOf(const std::vector<StateSeen>& states, size_t from, v1::DialogStateKind kind, const std::string& turn) {
  for (size_t i = from; i < states.size(); ++i)
    if (states[i].state.state() == kind && (turn.empty() || states[i].state.turn_id() == turn)) return int(i);
  return -1;
}

// Two voice turns in continuous mode: the service's VAD finds each question,
// the answers are played, and the second answer recalls the first question —
// the same conversation.
TEST_F(Dialog, TwoTurnsInContinuousModeShareOneConversation) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  mic.Say("Hello.");
  mic.Silence(9.0);
  mic.Say("What did I say before?");
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  ASSERT_NO_FATAL_FAILURE(Start({}));
  const std::string conversation = status_.conversation_id();
  ASSERT_FALSE(conversation.empty());

  int first = AwaitEnded(0, v1::TurnEnded::COMPLETED, "", 40000ms);
  ASSERT_GE(first, 0) << Dump();
  const std::string t1 = events_[size_t(first)].turn_id;
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, t1), 0) << Dump();
  int second = AwaitEnded(size_t(first) + 1, v1::TurnEnded::COMPLETED, "", 40000ms);
  ASSERT_GE(second, 0) << Dump();
  const std::string t2 = events_[size_t(second)].turn_id;
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, t2), 0) << Dump();
  ASSERT_GE(AwaitState(0, v1::STATE_LISTENING), 0);
  // Back to listening after the second reply has been played.
  ASSERT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_LISTENING; }, 5000ms)) << Dump();

  EXPECT_EQ(StartedTurns(), (std::vector<std::string>{t1, t2})) << Dump();
  for (const auto& t : {t1, t2}) {
    const SessionSeen* s = Started(t);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->event.turn_started().input(), v1::TurnStarted::VOICE);
    EXPECT_EQ(s->event.turn_started().conversation_id(), conversation) << "turn " << t << " in another conversation";
    EXPECT_GT(LoudOut(t), 25) << "turn " << t << ": less than 0.5 s of audible reply on audio.out";
    // control: the agent was speaking this turn, then listening again.
    int speaking = StateOf(states_, 0, v1::STATE_SPEAKING, t);
    EXPECT_GE(speaking, 0) << "no SPEAKING state for " << t << Dump();
    if (speaking >= 0) EXPECT_GE(StateOf(states_, size_t(speaking), v1::STATE_LISTENING, ""), 0) << Dump();
  }
  EXPECT_NE(Lower(UserText(t1)).find("hello"), std::string::npos) << UserText(t1);
  EXPECT_NE(Lower(AgentText(t1)).find("hello"), std::string::npos) << AgentText(t1);
  // The recall rule answers with the previous user turn of this conversation.
  EXPECT_NE(Lower(AgentText(t2)).find("you said: hello"), std::string::npos) << AgentText(t2);
  // Replies did not overlap: the second question came after the first reply.
  int drained1 = AwaitPlayback(0, v1::PlaybackEvent::DRAINED, t1, 0ms);
  int started2 = AwaitPlayback(0, v1::PlaybackEvent::STARTED, t2, 0ms);
  EXPECT_LT(drained1, started2);
  EXPECT_EQ(AwaitEnded(0, v1::TurnEnded::CANCELLED, "", 0ms), -1) << "a turn was cancelled\n" << Dump();

  // The speaker file holds both replies, audible.
  Stop();
  double seconds = 0;
  int loud = LoudFramesInWav(dir_.File("reply.wav"), &seconds);
  EXPECT_GT(loud, LoudOut(t1) / 2 + LoudOut(t2) / 2) << "reply.wav: " << loud << " loud frames in " << seconds << " s";
}

// Wake-word mode: a question without the wake phrase is ignored; "OK voice
// bus" (wakevad's default phrase) opens the microphone and the question
// after it is answered.
TEST_F(Dialog, WakeWordOpensTheMicrophone) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  mic.Say("What is the date?");
  mic.Silence(4.0);
  mic.Say("OK voice bus, what time is it?");
  mic.Silence(1.0);
  RunWakeWordDialog(mic);
}

// The same with a pause after the wake phrase, as people say it: only the
// question is answered — the agent does not start replying to the phrase.
TEST_F(Dialog, WakeWordThenAPauseThenTheQuestion) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  mic.Say("What is the date?");
  mic.Silence(4.0);
  mic.Say("OK voice bus.");
  mic.Silence(0.3);
  mic.Say("What time is it?");
  mic.Silence(1.0);
  RunWakeWordDialog(mic);
}

void Dialog::RunWakeWordDialog(const MicScript& mic) {
  mic.Write(dir_.File("mic.wav"));
  PipelineOptions o;
  o.mode = "wake_word";
  ASSERT_NO_FATAL_FAILURE(Start(o));
  ASSERT_EQ(states_.back().state.state(), v1::STATE_IDLE) << Dump();

  int done = AwaitEnded(0, v1::TurnEnded::COMPLETED, "", 45000ms);
  ASSERT_GE(done, 0) << Dump();
  const std::string turn = events_[size_t(done)].turn_id;
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, turn), 0) << Dump();
  ASSERT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_IDLE; }, 5000ms))
      << "not idle again after the reply\n"
      << Dump();

  ASSERT_FALSE(wakes_.empty()) << Dump();
  EXPECT_EQ(wakes_.front().second.phrase(), "ok voice bus");
  // The wake came with the phrase, not with the first question.
  double wake_at = double(wakes_.front().second.start_sample()) / 16000.0;
  EXPECT_NEAR(wake_at, mic.start_s(1), 0.6) << "wake phrase found at " << wake_at << " s";
  EXPECT_EQ(StartedTurns(), std::vector<std::string>{turn}) << "the question before the wake word was answered\n"
                                                            << Dump();
  EXPECT_NE(Lower(AgentText(turn)).find("it is"), std::string::npos) << AgentText(turn) << Dump();
  EXPECT_EQ(Lower(AgentText(turn)).find("today is"), std::string::npos) << AgentText(turn);
  EXPECT_GT(LoudOut(turn), 10);
  // IDLE → LISTENING (wake) → … → SPEAKING → IDLE.
  int listening = StateOf(states_, 0, v1::STATE_LISTENING, "");
  int speaking = StateOf(states_, 0, v1::STATE_SPEAKING, turn);
  ASSERT_GE(listening, 0) << Dump();
  ASSERT_GE(speaking, 0) << Dump();
  EXPECT_LT(listening, speaking);
  EXPECT_GE(states_[size_t(listening)].t_ns, wakes_.front().first - 1000000) << "listening before the wake word";
}

// Push-to-talk: the microphone is open only while the key is held (`vb ptt
// down` / `vb ptt up`); the question said with the key up is not heard.
TEST_F(Dialog, PushToTalkAnswersOnlyWhatIsSaidWithTheKeyDown) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  int ignored = mic.Say("What is the date?");
  mic.Silence(4.0);
  int asked = mic.Say("What time is it?");
  mic.Silence(1.5);
  mic.Write(dir_.File("mic.wav"));
  PipelineOptions o;
  o.mode = "push_to_talk";
  ASSERT_NO_FATAL_FAILURE(Start(o));
  ASSERT_EQ(states_.back().state.state(), v1::STATE_IDLE) << Dump();
  ASSERT_LT(MicSeconds(), mic.end_s(ignored)) << "pipeline too slow to start: the first question has passed";

  ASSERT_TRUE(Until([&] { return MicSeconds() >= mic.start_s(asked) - 1.2; }, 30000ms));
  std::string out;
  ASSERT_EQ(Vb({"ptt", "down"}, &out), 0) << out;
  int listening = AwaitState(0, v1::STATE_LISTENING, 3000ms);
  ASSERT_GE(listening, 0) << Dump();
  EXPECT_LT(MicSeconds(), mic.start_s(asked)) << "key down came too late";
  ASSERT_TRUE(Until([&] { return MicSeconds() >= mic.end_s(asked) + 0.4; }, 30000ms));
  ASSERT_EQ(Vb({"ptt", "up"}, &out), 0) << out;

  int done = AwaitEnded(0, v1::TurnEnded::COMPLETED, "", 30000ms);
  ASSERT_GE(done, 0) << Dump();
  const std::string turn = events_[size_t(done)].turn_id;
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, turn), 0) << Dump();
  ASSERT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_IDLE; }, 5000ms)) << Dump();
  EXPECT_EQ(StartedTurns(), std::vector<std::string>{turn}) << Dump();
  EXPECT_NE(Lower(UserText(turn)).find("time"), std::string::npos) << UserText(turn);
  EXPECT_NE(Lower(AgentText(turn)).find("it is"), std::string::npos) << AgentText(turn);
  EXPECT_GT(LoudOut(turn), 10);
  EXPECT_GE(StateOf(states_, size_t(listening), v1::STATE_THINKING, ""), 0) << "key up did not commit\n" << Dump();
  EXPECT_GE(StateOf(states_, size_t(listening), v1::STATE_SPEAKING, turn), 0) << Dump();
}

// The agent calls a tool (get_weather); the test answers with ToolOutput on
// dialog.request, as a tool actor would, and the spoken reply uses it.
TEST_F(Dialog, ToolCallRoundTrip) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  mic.Say("What is the weather in Paris?");
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  ASSERT_NO_FATAL_FAILURE(Start({}));

  int call = AwaitEvent(
      0, [](const SessionSeen& s) { return s.event.has_tool_call(); }, 40000ms);
  ASSERT_GE(call, 0) << Dump();
  const v1::ToolCall tc = events_[size_t(call)].event.tool_call();
  const std::string turn = events_[size_t(call)].turn_id;
  EXPECT_EQ(tc.name(), "get_weather");
  EXPECT_NE(tc.arguments_json().find("paris"), std::string::npos) << tc.arguments_json();
  ASSERT_GE(AwaitEnded(0, v1::TurnEnded::REQUIRES_ACTION, turn), 0) << Dump();
  // Control keeps the turn open while the tool runs.
  EXPECT_TRUE(states_.back().state.state() == v1::STATE_THINKING || states_.back().state.state() == v1::STATE_SPEAKING)
      << states_.back().state.ShortDebugString();
  Send([&](v1::DialogRequest& c) {
    c.mutable_tool_output()->set_turn_id(turn);
    c.mutable_tool_output()->set_call_id(tc.call_id());
    c.mutable_tool_output()->set_output("sunny and 21 degrees");
  });
  int done = AwaitEnded(size_t(call), v1::TurnEnded::COMPLETED, turn);
  ASSERT_GE(done, 0) << Dump();
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, turn), 0) << Dump();
  EXPECT_GE(AwaitEvent(
                size_t(call),
                [&](const SessionSeen& s) {
                  return s.event.has_tool_result() && s.event.tool_result().call_id() == tc.call_id();
                },
                0ms),
            0)
      << "no ToolResult echo\n"
      << Dump();
  EXPECT_NE(Lower(AgentText(turn)).find("sunny and 21 degrees"), std::string::npos) << AgentText(turn);
  EXPECT_GT(LoudOut(turn), 25);
  EXPECT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_LISTENING; }, 5000ms)) << Dump();
}

// The service drops the WebSocket in the middle of a reply: that turn fails,
// the session reconnects by itself, and the next question is answered in
// the same conversation (the agent recalls the question of the lost turn).
TEST_F(Dialog, DroppedConnectionMidTurnThenTheNextTurnWorks) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  mic.Say("Tell me a story.");
  mic.Silence(9.0);
  mic.Say("What did I say before?");
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  PipelineOptions o;
  o.sim_args = {"--drop-after", "40", "--fault-connections", "1"};
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::string conversation = status_.conversation_id();

  int failed = AwaitEnded(0, v1::TurnEnded::FAILED, "", 40000ms);
  ASSERT_GE(failed, 0) << "the drop did not land in a turn\n" << Dump();
  const std::string lost = events_[size_t(failed)].turn_id;
  ASSERT_TRUE(Until([&] { return status_.connected() && status_.reconnects() >= 1; }, 10000ms)) << Dump();
  EXPECT_EQ(status_.conversation_id(), conversation);

  int done = AwaitEnded(size_t(failed), v1::TurnEnded::COMPLETED, "", 40000ms);
  ASSERT_GE(done, 0) << Dump();
  const std::string next = events_[size_t(done)].turn_id;
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, next), 0) << Dump();
  ASSERT_NE(Started(next), nullptr);
  EXPECT_EQ(Started(next)->event.turn_started().conversation_id(), conversation);
  EXPECT_NE(Lower(AgentText(next)).find("you said: tell me a story"), std::string::npos) << AgentText(next);
  EXPECT_GT(LoudOut(next), 25);
  // Nothing of the lost turn reaches the speaker after the next one starts.
  int started = AwaitPlayback(0, v1::PlaybackEvent::STARTED, next, 0ms);
  for (const auto& f : out_)
    if (f.turn_id == lost) EXPECT_LT(f.t_ns, playback_[size_t(started)].t_ns) << "late audio of the lost turn";
  EXPECT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_LISTENING; }, 5000ms)) << Dump();
}

// kill -9 of vb-session, vb-decoder and vb-playback while the agent speaks:
// the launcher restarts each, and the next question is answered aloud in
// the same conversation.
TEST_F(Dialog, KilledActorsAreRestartedAndTheDialogGoesOn) {
  MicScript mic(dir_);
  mic.Silence(2.0);
  mic.Say("What time is it?");
  mic.Silence(11.0);
  mic.Say("What did I say before?");
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  ASSERT_NO_FATAL_FAILURE(Start({}));
  const std::string conversation = status_.conversation_id();

  int speaking = AwaitState(0, v1::STATE_SPEAKING, 30000ms);
  ASSERT_GE(speaking, 0) << Dump();
  const std::string t1 = states_[size_t(speaking)].state.turn_id();
  std::map<std::string, int> old_pid;
  for (const char* a : {"session", "decoder", "playback"}) {
    old_pid[a] = beats_[a].pid();
    ASSERT_GT(old_pid[a], 0);
    ASSERT_EQ(kill(old_pid[a], SIGKILL), 0) << a;
  }
  const double killed_at = MicSeconds();
  // Each comes back (a heartbeat from a new process).
  ASSERT_TRUE(Until(
      [&] {
        for (const auto& [a, pid] : old_pid)
          if (beats_[a].pid() == pid) return false;
        return status_.connected();
      },
      10000ms))
      << Dump() << Logs({"session", "decoder", "playback"});
  const double back_at = MicSeconds();
  EXPECT_LT(back_at - killed_at, 5.0) << "restart took too long";
  ASSERT_LT(back_at, mic.start_s(1)) << "restart slower than the test's timeline";
  EXPECT_EQ(status_.conversation_id(), conversation);

  size_t from = events_.size();
  int done = AwaitEnded(from, v1::TurnEnded::COMPLETED, "", 40000ms);
  ASSERT_GE(done, 0) << Dump();
  const std::string t2 = events_[size_t(done)].turn_id;
  ASSERT_NE(t2, t1);
  ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, t2), 0) << Dump();
  ASSERT_NE(Started(t2), nullptr);
  EXPECT_EQ(Started(t2)->event.turn_started().conversation_id(), conversation);
  EXPECT_NE(Lower(AgentText(t2)).find("you said: what time is it"), std::string::npos)
      << AgentText(t2) << "\n"
      << Dump() << Logs({"session", "afe", "wakevad"});
  EXPECT_GT(LoudOut(t2), 25);
  EXPECT_GE(StateOf(states_, 0, v1::STATE_SPEAKING, t2), 0) << Dump();
  EXPECT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_LISTENING; }, 5000ms)) << Dump();
  std::string vb_log = testing::ReadFile(dir_.File("vb.log"));
  for (const char* a : {"session", "decoder", "playback"})
    EXPECT_TRUE(std::regex_search(vb_log, std::regex(std::string(a) + " +killed by signal 9"))) << a << "\n" << vb_log;
}

}  // namespace
}  // namespace vb::e2e
