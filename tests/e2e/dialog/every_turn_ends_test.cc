// Issue 12, "every turn ends, and the person knows": the whole pipeline
// (`vb run`, vb-cozesim pacing its audio at about real time so a reply is
// still under way when something dies), and kill -9 of one actor mid-reply:
//
//  - the session: the turn ends (TurnEnded, not COMPLETED) within 3 s of the
//    kill, by the publishers' own stamps (Header.mono_ns, CLOCK_MONOTONIC
//    like the test's clock), the dialog leaves THINKING/SPEAKING, and the
//    next turn completes;
//  - the playback: no STARTED/DRAINED flood from the restarted playback, the
//    turn ends within 3 s, the user is told (error tone asked of the
//    playback, vb-control's SessionError 503), the next turn completes;
//  - vb-control: the restarted control says SPEAKING/THINKING, never
//    LISTENING, while the reply goes on; `vb interrupt` is acknowledged;
//
// and the `vb` commands' acknowledgements: `vb ptt down` ACCEPTED (exit 0);
// `vb say` with no session running exits non-zero with a reason.
//
// Waits are bounded (a hang fails the test); nothing sleeps to synchronise.
#include <signal.h>

#include "tests/e2e/dialog/dialog_harness.h"

namespace vb::e2e {
namespace {

constexpr int64_t kSec = 1'000'000'000;

class EveryTurnEnds : public DialogHarness {
 protected:
  // The pipeline with a silent microphone and replies paced at ~real time.
  void StartPaced() {
    MicScript mic(dir_);
    mic.Silence(1.0);
    mic.Write(dir_.File("mic.wav"));
    PipelineOptions o;
    o.sim_args = {"--slow-audio", "1.05"};
    ASSERT_NO_FATAL_FAILURE(Start(o));
  }
  // Asks for the long story by text; returns its turn id once it is heard.
  std::string StorySpeaking() {
    const std::string rid = "story-" + std::to_string(events_.size());
    Send([&](v1::DialogRequest& c) {
      c.mutable_text_input()->set_text("tell me a long story");
      c.mutable_text_input()->set_request_id(rid);
    });
    int st = AwaitEvent(
        0,
        [&](const SessionSeen& s) { return s.event.has_turn_started() && s.event.turn_started().request_id() == rid; },
        20000ms);
    if (st < 0) return "";
    std::string turn = events_[size_t(st)].event.turn_started().turn_id();
    if (AwaitPlayback(0, v1::PlaybackEvent::STARTED, turn, 20000ms) < 0) return "";
    // Speaking for a while (the reply is long; paced, it is far from over).
    const int64_t heard = bus::MonoNs();
    Until([&] { return bus::MonoNs() - heard > kSec; }, 3000ms);
    return turn;
  }
  // The first TurnEnded of `turn` (any outcome), -1 if none in time.
  int EndOf(const std::string& turn, std::chrono::milliseconds timeout) {
    return AwaitEvent(
        0, [&](const SessionSeen& s) { return s.event.has_turn_ended() && s.turn_id == turn; }, timeout);
  }
  // When (Header.mono_ns) control first published a state that is not busy
  // with `turn` after `since_ns`; 0 if it has not.
  int64_t DialogLeft(const std::string& turn, int64_t since_ns) const {
    for (const auto& s : states_) {
      if (s.mono_ns < since_ns) continue;
      bool busy = s.state.state() == v1::STATE_THINKING || s.state.state() == v1::STATE_SPEAKING;
      if (!busy || s.state.turn_id() != turn) return s.mono_ns;
    }
    return 0;
  }
  int Restarted(const std::string& actor, int old_pid) {
    bool back = Until([&] { return beats_[actor].pid() != old_pid && beats_[actor].pid() > 0; }, 10000ms);
    return back ? beats_[actor].pid() : 0;
  }
  // A short text turn completes and its audio is played.
  void NextTurnCompletes() {
    const std::string rid = "next-" + std::to_string(events_.size());
    const size_t from = events_.size();
    Send([&](v1::DialogRequest& c) {
      c.mutable_text_input()->set_text("what time is it");
      c.mutable_text_input()->set_request_id(rid);
    });
    int st = AwaitEvent(
        from,
        [&](const SessionSeen& s) { return s.event.has_turn_started() && s.event.turn_started().request_id() == rid; },
        20000ms);
    ASSERT_GE(st, 0) << "the next turn did not start\n" << Dump();
    const std::string turn = events_[size_t(st)].event.turn_started().turn_id();
    ASSERT_GE(AwaitEnded(from, v1::TurnEnded::COMPLETED, turn, 30000ms), 0) << Dump();
    ASSERT_GE(AwaitPlayback(0, v1::PlaybackEvent::DRAINED, turn, 30000ms), 0) << Dump();
  }
};

TEST_F(EveryTurnEnds, SessionKilledMidReplyTheTurnEndsWithin3sAndTheNextCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartPaced());
  const std::string story = StorySpeaking();
  ASSERT_FALSE(story.empty()) << Dump();
  ASSERT_LT(EndOf(story, 0ms), 0) << "the story ended before the kill\n" << Dump();
  const int pid = beats_["session"].pid();
  const int64_t killed = bus::MonoNs();
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  int end = EndOf(story, 6000ms);
  ASSERT_GE(end, 0) << "the turn never ended\n" << Dump();
  const SessionSeen e = events_[size_t(end)];  // a copy: events_ grows while we wait
  EXPECT_NE(e.event.turn_ended().outcome(), v1::TurnEnded::COMPLETED) << Dump();
  EXPECT_LT(e.mono_ns - killed, 3 * kSec)
      << "ended by " << e.source << " after " << (e.mono_ns - killed) / 1e6 << " ms";
  ASSERT_TRUE(Until([&] { return DialogLeft(story, killed) != 0; }, 5000ms)) << Dump();
  EXPECT_LT(DialogLeft(story, killed) - killed, 3 * kSec) << Dump();
  printf("session kill → TurnEnded %s by %s after %.0f ms; dialog left the turn after %.0f ms\n",
         v1::TurnEnded::Outcome_Name(e.event.turn_ended().outcome()).c_str(), e.source.c_str(),
         double(e.mono_ns - killed) / 1e6, double(DialogLeft(story, killed) - killed) / 1e6);

  ASSERT_GT(Restarted("session", pid), 0) << Logs({"session"});
  ASSERT_TRUE(Until([&] { return status_.connected(); }, 15000ms)) << Dump();
  ASSERT_NO_FATAL_FAILURE(NextTurnCompletes());
}

TEST_F(EveryTurnEnds, PlaybackKilledMidReplyNoFloodTheUserIsToldAndTheNextCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartPaced());
  const std::string story = StorySpeaking();
  ASSERT_FALSE(story.empty()) << Dump();
  const int pid = beats_["playback"].pid();
  const size_t events_before = playback_.size(), commands_before = commands_seen_.size();
  const int64_t killed = bus::MonoNs();
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  ASSERT_GT(Restarted("playback", pid), 0) << Logs({"playback"});
  ASSERT_TRUE(Until([&] { return DialogLeft(story, killed) != 0; }, 6000ms)) << Dump();
  EXPECT_LT(DialogLeft(story, killed) - killed, 3 * kSec) << Dump();
  // Told: vb-control's error about the cut reply, and the error tone asked
  // of the (new) playback after the kill.
  int told = AwaitEvent(
      0,
      [&](const SessionSeen& s) { return s.event.has_error() && s.turn_id == story && s.event.error().code() == 503; },
      3000ms);
  ASSERT_GE(told, 0) << Dump();
  EXPECT_LT(events_[size_t(told)].mono_ns - killed, 3 * kSec);
  bool tone = Until(
      [&] {
        for (size_t i = commands_before; i < commands_seen_.size(); ++i)
          if (commands_seen_[i].second.has_play_prompt() && commands_seen_[i].second.play_prompt().name() == "error" &&
              commands_sent_ns_[i] >= killed)
            return true;
        return false;
      },
      5000ms);
  EXPECT_TRUE(tone) << Dump();
  // The story's turn ends for the session too (control interrupted it).
  EXPECT_GE(EndOf(story, 5000ms), 0) << Dump();

  ASSERT_NO_FATAL_FAILURE(NextTurnCompletes());
  // No flood: from the kill to the end of the next turn, the restarted
  // playback announced each turn at most once (issue 12 saw 77).
  int started = 0, drained = 0;
  std::map<std::string, int> per_turn;
  for (size_t i = events_before; i < playback_.size(); ++i) {
    const auto& ev = playback_[i].event;
    if (ev.kind() != v1::PlaybackEvent::STARTED && ev.kind() != v1::PlaybackEvent::DRAINED) continue;
    (ev.kind() == v1::PlaybackEvent::STARTED ? started : drained)++;
    ++per_turn[ev.turn_id() + "/" + v1::PlaybackEvent::Kind_Name(ev.kind())];
  }
  for (const auto& [k, n] : per_turn) EXPECT_EQ(n, 1) << k << "\n" << Dump();
  EXPECT_LE(started + drained, 4) << Dump();
  printf("playback kill: %d STARTED + %d DRAINED after it; dialog left the turn after %.0f ms\n", started, drained,
         double(DialogLeft(story, killed) - killed) / 1e6);
}

// A session that hangs (SIGSTOP: alive, silent) mid-reply: vb-control's
// busy timeout ends the turn within 3 s; the launcher replaces the session.
TEST_F(EveryTurnEnds, SessionHungMidReplyTheTurnEndsWithin3s) {
  ASSERT_NO_FATAL_FAILURE(StartPaced());
  const std::string story = StorySpeaking();
  ASSERT_FALSE(story.empty()) << Dump();
  const int pid = beats_["session"].pid();
  const int64_t stopped = bus::MonoNs();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  int end = EndOf(story, 6000ms);
  kill(pid, SIGCONT);  // whatever the launcher does with it next
  ASSERT_GE(end, 0) << "the turn never ended\n" << Dump();
  const SessionSeen e = events_[size_t(end)];  // a copy: events_ grows while we wait
  EXPECT_EQ(e.event.turn_ended().outcome(), v1::TurnEnded::FAILED) << Dump();
  EXPECT_EQ(e.source, "control");
  EXPECT_LT(e.mono_ns - stopped, 3 * kSec) << (e.mono_ns - stopped) / 1e6 << " ms";
  ASSERT_TRUE(Until([&] { return DialogLeft(story, stopped) != 0; }, 5000ms)) << Dump();
  EXPECT_LT(DialogLeft(story, stopped) - stopped, 3 * kSec) << Dump();
  printf("session hung → TurnEnded by %s after %.0f ms\n", e.source.c_str(), double(e.mono_ns - stopped) / 1e6);
  // Resumed (or replaced by the launcher): the story it resumes is muted.
  const int64_t resumed = bus::MonoNs();
  ASSERT_TRUE(Until([&] { return status_.connected() && beats_["session"].uptime_ms() > 0; }, 20000ms)) << Dump();
  ASSERT_TRUE(Until([&] { return bus::MonoNs() - resumed > 2 * kSec; }, 3000ms));
  int late = 0;
  for (const auto& f : out_) late += f.turn_id == story && f.mono_ns > resumed + 300'000'000;
  EXPECT_EQ(late, 0) << "the decoder went on with the abandoned story" << [&] {
    std::string f;
    for (const auto& fr : out_)
      if (fr.turn_id == story && fr.mono_ns > resumed) f += std::to_string((fr.mono_ns - stopped) / 1000000) + " ";
    return "\nframes (ms after the stop): " + f + "\n" + Dump();
  }();
  ASSERT_NO_FATAL_FAILURE(NextTurnCompletes());
}

// The decoder killed mid-reply: the reply is cut and the user told, the
// turn ends within 3 s, the next turn completes.
TEST_F(EveryTurnEnds, DecoderKilledMidReplyTheUserIsToldAndTheNextCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartPaced());
  const std::string story = StorySpeaking();
  ASSERT_FALSE(story.empty()) << Dump();
  const int pid = beats_["decoder"].pid();
  const int64_t killed = bus::MonoNs();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(Until([&] { return DialogLeft(story, killed) != 0; }, 6000ms)) << Dump();
  EXPECT_LT(DialogLeft(story, killed) - killed, 3 * kSec) << Dump();
  int told = AwaitEvent(
      0,
      [&](const SessionSeen& s) { return s.event.has_error() && s.turn_id == story && s.event.error().code() == 503; },
      3000ms);
  ASSERT_GE(told, 0) << Dump();
  EXPECT_GE(EndOf(story, 5000ms), 0) << Dump();
  printf("decoder kill: dialog left the turn after %.0f ms\n", double(DialogLeft(story, killed) - killed) / 1e6);
  ASSERT_GT(Restarted("decoder", pid), 0);
  ASSERT_NO_FATAL_FAILURE(NextTurnCompletes());
}

TEST_F(EveryTurnEnds, ControlKilledMidReplyComesBackSpeakingNotListening) {
  ASSERT_NO_FATAL_FAILURE(StartPaced());
  const std::string story = StorySpeaking();
  ASSERT_FALSE(story.empty()) << Dump();
  ASSERT_EQ(states_.back().state.state(), v1::STATE_SPEAKING) << Dump();
  const int pid = beats_["control"].pid();
  const int64_t killed = bus::MonoNs();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_GT(Restarted("control", pid), 0);
  // The new control's first choice (after "starting"), while the story plays on.
  auto choice = [&]() -> const StateSeen* {
    for (const auto& s : states_)
      if (s.mono_ns > killed && s.state.state() != v1::STATE_OFFLINE) return &s;
    return nullptr;
  };
  ASSERT_TRUE(Until([&] { return choice() != nullptr; }, 8000ms)) << Dump();
  const StateSeen chosen = *choice();  // a copy: states_ grows while we wait
  const StateSeen* c = &chosen;
  EXPECT_EQ(c->state.state(), v1::STATE_SPEAKING) << Dump();
  EXPECT_EQ(c->state.turn_id(), story) << Dump();
  EXPECT_LT(EndOf(story, 0ms), 0) << "the story was not under way any more: the test proves nothing\n" << Dump();
  printf("control kill: back %s (%s) after %.0f ms\n", v1::DialogStateKind_Name(c->state.state()).c_str(),
         c->state.reason().c_str(), double(c->mono_ns - killed) / 1e6);
  for (const auto& s : states_)
    if (s.mono_ns > killed && s.mono_ns < c->mono_ns + kSec) EXPECT_NE(s.state.state(), v1::STATE_LISTENING) << Dump();

  // The recovered control still drives the dialog: `vb interrupt` is
  // acknowledged and ends the story; the next turn completes.
  std::string out;
  EXPECT_EQ(Vb({"interrupt"}, &out), 0) << out;
  EXPECT_NE(out.find("accepted by control"), std::string::npos) << out;
  EXPECT_GE(EndOf(story, 5000ms), 0) << Dump();
  ASSERT_TRUE(Until([&] { return states_.back().state.state() == v1::STATE_LISTENING; }, 5000ms)) << Dump();
  ASSERT_NO_FATAL_FAILURE(NextTurnCompletes());
}

TEST_F(EveryTurnEnds, VbPttDownIsAcceptedByControl) {
  MicScript mic(dir_);
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  PipelineOptions o;
  o.mode = "push_to_talk";
  ASSERT_NO_FATAL_FAILURE(Start(o));
  std::string out;
  const int64_t sent = bus::MonoNs();
  ASSERT_EQ(Vb({"ptt", "down"}, &out), 0) << out;
  EXPECT_NE(out.find("accepted by control"), std::string::npos) << out;
  printf("vb ptt down: %s → exit 0 after %.0f ms (process start to ack)\n", out.substr(0, out.find('\n')).c_str(),
         double(bus::MonoNs() - sent) / 1e6);
  ASSERT_TRUE(Until(
      [&] {
        for (const auto& s : states_)
          if (s.mono_ns > sent && s.state.state() == v1::STATE_LISTENING) return true;
        return false;
      },
      3000ms))
      << Dump();
  ASSERT_EQ(Vb({"ptt", "up"}, &out), 0) << out;
  EXPECT_EQ(Vb({"mode", "bogus"}, &out), 64) << out;
}

// `vb say` is answered by vb-session (accepted, or queued during an
// outage) and the text makes a turn.
TEST_F(EveryTurnEnds, VbSayIsAcknowledgedByTheSessionAndMakesATurn) {
  MicScript mic(dir_);
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  ASSERT_NO_FATAL_FAILURE(Start({}));
  std::string out;
  const size_t from = events_.size();
  ASSERT_EQ(Vb({"say", "what", "time", "is", "it"}, &out), 0) << out;
  EXPECT_TRUE(out.find("accepted by session") != std::string::npos ||
              out.find("queued by session") != std::string::npos)
      << out;
  int st = AwaitEvent(
      from, [](const SessionSeen& s) { return s.event.has_turn_started(); }, 20000ms);
  ASSERT_GE(st, 0) << Dump();
  const std::string turn = events_[size_t(st)].turn_id;  // a copy: events_ grows while we wait
  EXPECT_GE(AwaitEnded(size_t(st), v1::TurnEnded::COMPLETED, turn, 30000ms), 0) << Dump();
}

TEST_F(EveryTurnEnds, VbSayWithNoSessionRunningFailsWithAReason) {
  MicScript mic(dir_);
  mic.Silence(1.0);
  mic.Write(dir_.File("mic.wav"));
  PipelineOptions o;
  o.actors = {"control"};
  ASSERT_NO_FATAL_FAILURE(Start(o));
  std::string out;
  const int64_t t0 = bus::MonoNs();
  int rc = Vb({"say", "hello", "--timeout", "1"}, &out);
  EXPECT_EQ(rc, 69) << out;
  EXPECT_NE(out.find("not delivered: no answer from vb-session within 1 s"), std::string::npos) << out;
  EXPECT_LT(bus::MonoNs() - t0, 8 * kSec) << "bounded by --timeout (+ start-up)";
  // vb-control answers, and refuses push-to-talk with the session down.
  rc = Vb({"ptt", "down", "--timeout", "2"}, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("refused by control: the session is not connected"), std::string::npos) << out;
}

}  // namespace
}  // namespace vb::e2e
