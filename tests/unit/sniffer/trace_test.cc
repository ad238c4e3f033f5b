// TurnTracer on synthetic bus traffic: stages stamped by their publishers,
// speech before the chat given to the turn that follows, the speaker's
// stages from audio.ref's play_ns, the response time, interruptions, and
// bad payloads counted without stopping the trace.
#include "tools/sniffer/trace.h"

#include <gtest/gtest.h>

#include "vb/v1/audio.pb.h"
#include "vb/v1/dialog.pb.h"
#include "vb/v1/voice.pb.h"

namespace vb::sniff {
namespace {

constexpr int64_t kMs = 1'000'000;

class TraceTest : public ::testing::Test {
 protected:
  TurnTracer tracer_{[this](const TurnTrace& t) { done_.push_back(t); }};
  std::vector<TurnTrace> done_;

  void Send(std::string_view topic, int64_t ms, const google::protobuf::Message& m, const std::string& turn = "") {
    v1::Header h;
    h.set_mono_ns(ms * kMs);
    h.set_turn_id(turn);
    tracer_.Add(topic, h, m.SerializeAsString());
  }
  void Vad(int64_t ms, bool start) {
    v1::VadEvent e;
    e.set_kind(start ? v1::VadEvent::SPEECH_START : v1::VadEvent::SPEECH_END);
    Send("voice.vad/local", ms, e);
  }
  void Session(int64_t ms, const std::string& turn, const std::function<void(v1::SessionEvent*)>& fill) {
    v1::SessionEvent e;
    fill(&e);
    Send("session.event/local", ms, e, turn);
  }
  // A 20 ms audio.ref frame published at `ms`, leaving the speaker at play_ms.
  void Ref(int64_t ms, int64_t play_ms, bool audible) {
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    f.set_pcm(std::string(640, audible ? '\x10' : '\0'));
    f.set_play_ns(play_ms * kMs);
    f.set_synthetic_silence(!audible);
    Send("audio.ref/local", ms, f);
  }
  void Playback(int64_t ms, const std::string& turn, v1::PlaybackEvent::Kind kind) {
    v1::PlaybackEvent e;
    e.set_kind(kind);
    e.set_turn_id(turn);
    Send("playback.event/local", ms, e, turn);
  }
  void Out(int64_t ms, const std::string& turn) {
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    f.set_pcm(std::string(640, '\x10'));
    Send("audio.out/local", ms, f, turn);
  }
  // One whole voice turn, speech ending at t0 + 1500 ms.
  void VoiceTurn(int64_t t0, const std::string& turn) {
    v1::WakeEvent w;
    w.set_phrase("hey");
    Send("voice.wake/local", t0, w);
    Vad(t0 + 300, true);
    Vad(t0 + 1500, false);
    Session(t0 + 1600, "", [](v1::SessionEvent* e) { e->mutable_user_speech()->set_started(false); });
    Session(t0 + 1700, turn, [&](v1::SessionEvent* e) { e->mutable_turn_started()->set_turn_id(turn); });
    Session(t0 + 1750, turn, [](v1::SessionEvent* e) {
      e->mutable_user_transcript()->set_text("what time is it");
      e->mutable_user_transcript()->set_final(true);
    });
    Session(t0 + 2000, turn, [](v1::SessionEvent* e) { e->mutable_agent_text()->set_text("It"); });
    Session(t0 + 2050, turn, [](v1::SessionEvent* e) { e->mutable_agent_text()->set_text(" is"); });
    v1::EncodedAudio a;
    Send("session.audio/local", t0 + 2100, a, turn);
    Ref(t0 + 2110, t0 + 2150, false);  // idle speaker: not the reply
    Out(t0 + 2120, turn);
    Ref(t0 + 2130, t0 + 2170, false);  // queued, not yet audible
    Playback(t0 + 2140, turn, v1::PlaybackEvent::STARTED);
    Ref(t0 + 2150, t0 + 2190, true);  // first reply sample leaves the speaker at +2190
    Ref(t0 + 2170, t0 + 2210, true);
    Ref(t0 + 2190, t0 + 2230, true);  // last audible: ends at +2250
  }
};

TEST_F(TraceTest, VoiceTurnHasEveryStageInOrderAndItsResponseTime) {
  VoiceTurn(10'000, "chat-1");
  Session(12'300, "chat-1",
          [](v1::SessionEvent* e) { e->mutable_turn_ended()->set_outcome(v1::TurnEnded::COMPLETED); });
  EXPECT_TRUE(done_.empty()) << "the reply is still playing";
  Ref(12'210, 12'250, false);
  Playback(12'320, "chat-1", v1::PlaybackEvent::DRAINED);
  ASSERT_EQ(done_.size(), 1u);
  const TurnTrace& t = done_[0];
  EXPECT_EQ(t.turn_id, "chat-1");
  EXPECT_EQ(t.outcome, "completed");
  const std::pair<Stage, int64_t> want[] = {{Stage::kWake, 10'000},        {Stage::kSpeechStart, 10'300},
                                            {Stage::kSpeechEnd, 11'500},   {Stage::kServerSpeechEnd, 11'600},
                                            {Stage::kTurnStarted, 11'700}, {Stage::kTranscript, 11'750},
                                            {Stage::kFirstText, 12'000},   {Stage::kFirstAudio, 12'100},
                                            {Stage::kFirstSample, 12'190}, {Stage::kLastSample, 12'250},
                                            {Stage::kEnd, 12'300}};
  for (auto [s, ms] : want) EXPECT_EQ(t.at[int(s)], ms * kMs) << StageName(s);
  EXPECT_FALSE(t.has(Stage::kKey));
  EXPECT_FALSE(t.has(Stage::kInterrupted));
  EXPECT_FALSE(t.audio_lost);
  EXPECT_EQ(t.ResponseNs(), 690 * kMs) << "speech end 11.5 s -> first reply sample 12.19 s";

  std::string text = FormatTrace(t);
  EXPECT_NE(text.find("turn chat-1 (completed)"), std::string::npos) << text;
  EXPECT_NE(text.find("first_sample"), std::string::npos) << text;
  EXPECT_NE(text.find("2190.0 ms"), std::string::npos) << text;  // offset from the wake
  EXPECT_NE(text.find("response (speech end -> first reply sample): 690.0 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("first_sample +90.0 ms (13%)"), std::string::npos) << text;
  std::string json = TraceJson(t);
  EXPECT_NE(json.find("\"response_ms\":690.0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"first_sample\":2190.0"), std::string::npos) << json;
}

TEST_F(TraceTest, SpeechIsGivenToTheTurnThatFollowsItNotTheOneBefore) {
  VoiceTurn(10'000, "chat-1");
  Session(12'300, "chat-1",
          [](v1::SessionEvent* e) { e->mutable_turn_ended()->set_outcome(v1::TurnEnded::COMPLETED); });
  // Key pressed for the next question while chat-1 still plays.
  v1::DialogRequest key;
  key.mutable_push_to_talk()->set_down(true);
  Send("dialog.request/local", 12'400, key);
  key.mutable_push_to_talk()->set_down(false);
  Send("dialog.request/local", 13'000, key);
  Playback(13'100, "chat-1", v1::PlaybackEvent::DRAINED);
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_FALSE(done_[0].has(Stage::kKey));
  Session(13'200, "chat-2", [](v1::SessionEvent* e) { e->mutable_turn_started()->set_turn_id("chat-2"); });
  Session(13'500, "chat-2", [](v1::SessionEvent* e) { e->mutable_turn_ended()->set_outcome(v1::TurnEnded::FAILED); });
  ASSERT_EQ(done_.size(), 2u) << "a turn without audio is done when it ends";
  EXPECT_EQ(done_[1].at[int(Stage::kKey)], 12'400 * kMs);
  EXPECT_EQ(done_[1].at[int(Stage::kSpeechEnd)], 13'000 * kMs) << "key released = speech end";
  EXPECT_FALSE(done_[1].has(Stage::kWake));
  EXPECT_EQ(done_[1].outcome, "failed");
  EXPECT_EQ(done_[1].ResponseNs(), -1) << "nothing was played";
  EXPECT_NE(FormatTrace(done_[1]).find("response: unknown"), std::string::npos);
}

TEST_F(TraceTest, InterruptionEndsTheTurnAtTheFlush) {
  VoiceTurn(10'000, "chat-1");
  v1::DialogCommand stop;  // vb-control's order
  stop.mutable_interrupt()->set_turn_id("chat-1");
  Send("dialog.order/local", 12'200, stop);
  Playback(12'240, "chat-1", v1::PlaybackEvent::FLUSHED);
  EXPECT_TRUE(done_.empty()) << "not ended by the session yet";
  Session(12'260, "chat-1",
          [](v1::SessionEvent* e) { e->mutable_turn_ended()->set_outcome(v1::TurnEnded::CANCELLED); });
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_EQ(done_[0].at[int(Stage::kInterrupted)], 12'200 * kMs) << "the interrupt command, not the flush";
  EXPECT_EQ(done_[0].at[int(Stage::kLastSample)], 12'250 * kMs);
  EXPECT_EQ(done_[0].outcome, "cancelled");
}

TEST_F(TraceTest, TheReplyStartsAndEndsAtItsFirstAndLastSoundInsideAFrame) {
  Session(1'000, "chat-1", [](v1::SessionEvent* e) { e->mutable_turn_started()->set_turn_id("chat-1"); });
  Out(1'100, "chat-1");
  v1::AudioFrame f;  // 20 ms: 10 ms of zeros, then sound
  f.set_sample_rate(16000);
  f.set_channels(1);
  f.set_pcm(std::string(320, '\0') + std::string(320, '\x10'));
  f.set_play_ns(1'090 * kMs);
  Send("audio.ref/local", 1'120, f);
  f.set_pcm(std::string(160, '\x10') + std::string(480, '\0'));  // 5 ms of sound, then zeros
  f.set_play_ns(1'110 * kMs);
  Send("audio.ref/local", 1'140, f);
  Playback(1'200, "chat-1", v1::PlaybackEvent::DRAINED);
  tracer_.Finish();
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_EQ(done_[0].at[int(Stage::kFirstSample)], 1'100 * kMs);
  EXPECT_EQ(done_[0].at[int(Stage::kLastSample)], 1'115 * kMs);
}

TEST_F(TraceTest, ALostFirstAudioPacketIsSaid) {
  Session(1'000, "chat-1", [](v1::SessionEvent* e) { e->mutable_turn_started()->set_turn_id("chat-1"); });
  v1::EncodedAudio a;
  a.set_packet_index(7);  // 0 … 6 never heard
  Send("session.audio/local", 1'500, a, "chat-1");
  tracer_.Finish();
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_TRUE(done_[0].audio_lost);
  EXPECT_NE(FormatTrace(done_[0]).find("first audio packet was not heard"), std::string::npos);
  EXPECT_NE(TraceJson(done_[0]).find("\"audio_lost\":true"), std::string::npos);
}

TEST_F(TraceTest, BadPayloadsAreCountedAndTheTraceGoesOn) {
  v1::Header h;
  h.set_mono_ns(5 * kMs);
  tracer_.Add("session.event/local", h, "\xff\xff\xff");
  tracer_.Add("voice.vad", h, "\x08");
  tracer_.Add("unrelated.topic", h, "\xff");
  EXPECT_EQ(tracer_.malformed(), 2u);
  EXPECT_FALSE(TurnTracer::Wants("unrelated.topic"));
  EXPECT_TRUE(TurnTracer::Wants("audio.ref/kitchen"));
  VoiceTurn(10'000, "chat-1");
  tracer_.Finish();
  ASSERT_EQ(done_.size(), 1u) << "an open turn is reported at the end";
  EXPECT_EQ(done_[0].outcome, "");
  EXPECT_EQ(done_[0].ResponseNs(), 690 * kMs);
}

// An interrupt asked for (dialog.request) stamps the turn before vb-control's
// order that follows it; a recording made before the two topics existed
// (dialog.command) traces as it did.
TEST_F(TraceTest, AnInterruptRequestedStampsTheTurnBeforeControlsOrder) {
  VoiceTurn(10'000, "chat-1");
  v1::DialogRequest asked;
  asked.mutable_interrupt()->set_turn_id("chat-1");
  Send("dialog.request/local", 12'200, asked);
  v1::DialogCommand order;
  order.mutable_interrupt()->set_turn_id("chat-1");
  Send("dialog.order/local", 12'205, order);
  Playback(12'240, "chat-1", v1::PlaybackEvent::FLUSHED);
  Session(12'260, "chat-1",
          [](v1::SessionEvent* e) { e->mutable_turn_ended()->set_outcome(v1::TurnEnded::CANCELLED); });
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_EQ(done_[0].at[int(Stage::kInterrupted)], 12'200 * kMs);
}

TEST_F(TraceTest, ARecordingWithTheOldDialogCommandTopicStillTraces) {
  VoiceTurn(10'000, "chat-1");
  v1::DialogCommand stop;
  stop.mutable_interrupt()->set_turn_id("chat-1");
  Send("dialog.command/local", 12'200, stop);
  Playback(12'240, "chat-1", v1::PlaybackEvent::FLUSHED);
  Session(12'260, "chat-1",
          [](v1::SessionEvent* e) { e->mutable_turn_ended()->set_outcome(v1::TurnEnded::CANCELLED); });
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_EQ(done_[0].at[int(Stage::kInterrupted)], 12'200 * kMs);
}
}  // namespace
}  // namespace vb::sniff
