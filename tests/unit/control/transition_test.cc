// The dialog's transition table (Dialog::Allowed): every allowed transition,
// the refused ones, and what a refused transition does — the state stays,
// DialogOutput hears of it, the count grows, nothing crashes — while the
// ordinary flows never ask for one.
#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

#include "actors/control/dialog.h"

namespace vb::control {

// Reaches Dialog::Enter, which no input can drive into a refused transition.
struct DialogTransitionProbe {
  static void Enter(Dialog& d, v1::DialogStateKind s, const std::string& why, Clock::time_point now) {
    d.Enter(s, why, now);
  }
};

namespace {
using v1::DialogStateKind;
constexpr DialogStateKind kOffline = v1::STATE_OFFLINE, kIdle = v1::STATE_IDLE, kListening = v1::STATE_LISTENING,
                          kThinking = v1::STATE_THINKING, kSpeaking = v1::STATE_SPEAKING;
const std::vector<DialogStateKind> kStates = {kOffline, kIdle, kListening, kThinking, kSpeaking};

// Every transition the dialog may make, with the flow that makes it.
const std::set<std::pair<DialogStateKind, DialogStateKind>> kAllowed = {
    {kOffline, kOffline},    {kOffline, kIdle},      {kOffline, kListening},    // connected: at rest
    {kOffline, kThinking},   {kOffline, kSpeaking},                             // a reply resumed after a restart
    {kIdle, kOffline},       {kIdle, kIdle},         {kIdle, kListening},       // wake word, key down
    {kIdle, kThinking},                                                         // a text turn
    {kListening, kOffline},  {kListening, kIdle},    {kListening, kListening},  // nobody spoke, mode changed
    {kListening, kThinking},                                                    // the user's turn committed
    {kThinking, kOffline},   {kThinking, kIdle},     {kThinking, kListening},   // failed, barge-in
    {kThinking, kThinking},  {kThinking, kSpeaking},                            // the reply plays
    {kSpeaking, kOffline},   {kSpeaking, kIdle},     {kSpeaking, kListening},   // played, barge-in
    {kSpeaking, kThinking},                                                     // key released over the reply
    {kSpeaking, kSpeaking},
};

TEST(DialogTransitions, EveryAllowedTransitionIsInTheTable) {
  for (const auto& [from, to] : kAllowed)
    EXPECT_TRUE(Dialog::Allowed(from, to)) << v1::DialogStateKind_Name(from) << " -> " << v1::DialogStateKind_Name(to);
}

TEST(DialogTransitions, EveryOtherTransitionIsRefused) {
  int refused = 0;
  for (auto from : kStates)
    for (auto to : kStates) {
      if (kAllowed.count({from, to})) continue;
      ++refused;
      EXPECT_FALSE(Dialog::Allowed(from, to))
          << v1::DialogStateKind_Name(from) << " -> " << v1::DialogStateKind_Name(to);
    }
  EXPECT_EQ(refused, 2);  // a reply heard while nobody asked: IDLE/LISTENING -> SPEAKING
  EXPECT_FALSE(Dialog::Allowed(kIdle, kSpeaking));
  EXPECT_FALSE(Dialog::Allowed(kListening, kSpeaking));
  for (auto s : kStates) {
    EXPECT_FALSE(Dialog::Allowed(s, v1::STATE_UNSPECIFIED));
    EXPECT_FALSE(Dialog::Allowed(v1::STATE_UNSPECIFIED, s));
    EXPECT_FALSE(Dialog::Allowed(s, DialogStateKind(42)));
    EXPECT_FALSE(Dialog::Allowed(DialogStateKind(-1), s));
  }
}

class Recorder : public DialogOutput {
 public:
  void StateChanged(const v1::DialogState& s) override { states.push_back(s); }
  void Command(const v1::DialogCommand&) override {}
  void TransitionRefused(DialogStateKind from, DialogStateKind to, const std::string& reason) override {
    refused.push_back({from, to, reason});
  }
  struct Refusal {
    DialogStateKind from, to;
    std::string reason;
  };
  std::vector<v1::DialogState> states;
  std::vector<Refusal> refused;
};

class DialogRefusal : public ::testing::Test {
 protected:
  DialogRefusal() { options_.mode = v1::MODE_WAKE_WORD; }
  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
  DialogOptions options_;
  Recorder rec_;
};

TEST_F(DialogRefusal, ARefusedTransitionLeavesTheStateAndIsReportedAndCounted) {
  Dialog d(options_, rec_);
  d.SessionConnected(true, "conv", now_);
  ASSERT_EQ(d.kind(), kIdle);
  const size_t published = rec_.states.size();
  DialogTransitionProbe::Enter(d, kSpeaking, "a reply nobody asked for", now_);
  EXPECT_EQ(d.kind(), kIdle);
  EXPECT_EQ(d.state().reason(), "session connected");
  EXPECT_EQ(rec_.states.size(), published) << "nothing published for a refused transition";
  ASSERT_EQ(rec_.refused.size(), 1u);
  EXPECT_EQ(rec_.refused[0].from, kIdle);
  EXPECT_EQ(rec_.refused[0].to, kSpeaking);
  EXPECT_EQ(rec_.refused[0].reason, "a reply nobody asked for");
  EXPECT_EQ(d.transitions_refused(), 1u);
  DialogTransitionProbe::Enter(d, DialogStateKind(42), "garbage", now_);
  DialogTransitionProbe::Enter(d, v1::STATE_UNSPECIFIED, "nothing", now_);
  EXPECT_EQ(d.kind(), kIdle);
  EXPECT_EQ(d.transitions_refused(), 3u);
  // The dialog goes on serving: a wake word opens listening as before.
  v1::WakeEvent w;
  w.set_phrase("hey");
  d.Wake(w, now_);
  EXPECT_EQ(d.kind(), kListening);
  EXPECT_EQ(d.transitions_refused(), 3u);
}

// The flows of the dialog (wake, voice turn, reply, barge-in, text turn,
// push-to-talk over a reply, session lost and back) never ask for a refused
// transition.
TEST_F(DialogRefusal, TheOrdinaryFlowsNeverAskForARefusedTransition) {
  Dialog d(options_, rec_);
  d.SessionConnected(true, "conv", now_);
  v1::WakeEvent w;
  w.set_phrase("hey");
  d.Wake(w, now_);
  d.ServerSpeech(true, now_);
  d.ServerSpeech(false, now_);
  EXPECT_EQ(d.kind(), kThinking);
  d.TurnStarted("t1", now_);
  d.PlaybackStarted("t1", now_);
  EXPECT_EQ(d.kind(), kSpeaking);
  d.ServerSpeech(true, now_);  // barge-in
  EXPECT_EQ(d.kind(), kListening);
  d.TurnStarted("t2", now_);  // a text turn
  d.TurnEnded("t2", v1::TurnEnded::COMPLETED, now_);
  EXPECT_TRUE(d.SetMode(v1::MODE_PUSH_TO_TALK, now_).result == v1::CommandAck::ACCEPTED);
  d.PushToTalk(true, now_);
  d.TurnStarted("t3", now_);
  d.PlaybackStarted("t3", now_);
  EXPECT_EQ(d.kind(), kSpeaking);
  d.PushToTalk(false, now_);  // released over the reply: a new turn committed
  EXPECT_EQ(d.kind(), kThinking);
  d.SessionConnected(false, "", now_);
  EXPECT_EQ(d.kind(), kOffline);
  d.SessionConnected(true, "conv", now_);
  EXPECT_EQ(d.kind(), kIdle);
  EXPECT_EQ(d.transitions_refused(), 0u);
  EXPECT_TRUE(rec_.refused.empty());
}

}  // namespace
}  // namespace vb::control
