// Session: the /v1/chat protocol rules of coze-protocol.md §2–§6, driven
// without sockets; synthesis and recognition results are delivered by hand.
#include "tools/coze-sim/session.h"

#include <gtest/gtest.h>
#include <opus/opus.h>

#include <regex>

#include "tests/unit/coze_sim/test_util.h"
#include "tools/coze-sim/ids.h"

namespace vb::cozesim {
namespace {

using testing::FakeServices;
using testing::Silence;
using testing::Tone;

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = Agent::BuiltIn();
    ASSERT_TRUE(agent_);
    session_ = std::make_unique<Session>(7, SessionContext{&store_, agent_.get(), &services_, &faults_, &live_},
                                         "7000000000000000001", "LOGID123");
    session_->Start();
  }

  // Pumps everything due now (no pacing waits honoured).
  std::vector<Json> Drain() {
    std::vector<Json> out;
    for (int guard = 0; guard < 10000; ++guard) {
      std::vector<std::string> batch;
      int64_t wait = session_->Pump(now_, 64, &batch);
      for (auto& s : batch) out.push_back(Json::parse(s));
      if (batch.empty()) {
        if (wait > 0) {
          now_ += wait;  // simulated clock
          continue;
        }
        break;
      }
    }
    for (auto& e : out) all_.push_back(e);
    return out;
  }
  void Send(const Json& j) { session_->OnText(j.dump()); }
  void Update(const Json& data) { Send({{"id", "u"}, {"event_type", "chat.update"}, {"data", data}}); }
  // Delivers every pending synthesis job with a 300 ms tone.
  void FinishSynth() {
    for (int guard = 0; guard < 100 && !services_.jobs.empty(); ++guard) {
      auto job = services_.jobs.front();
      services_.jobs.pop_front();
      if (job.synth) session_->OnSynthesized(job.job, Tone(22050, 300), 22050);
    }
  }
  static std::vector<std::string> Types(const std::vector<Json>& ev) {
    std::vector<std::string> t;
    for (auto& e : ev) t.push_back(e["event_type"]);
    return t;
  }
  static int Count(const std::vector<Json>& ev, const std::string& type) {
    int n = 0;
    for (auto& e : ev) n += e["event_type"] == type;
    return n;
  }
  static const Json* Find(const std::vector<Json>& ev, const std::string& type) {
    for (auto& e : ev)
      if (e["event_type"] == type) return &e;
    return nullptr;
  }
  void Say(const std::string& text) {
    Send({{"id", "m"},
          {"event_type", "conversation.message.create"},
          {"data", {{"role", "user"}, {"content_type", "text"}, {"content", text}}}});
  }

  Store store_;
  std::unique_ptr<Agent> agent_;
  FakeServices services_;
  Faults faults_;
  Faults live_;  // the server's live faults (turn faults)
  std::unique_ptr<Session> session_;
  int64_t now_ = 1000000;
  std::vector<Json> all_;
};

TEST_F(SessionTest, FirstEventIsChatCreatedWithEnvelope) {
  auto ev = Drain();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["event_type"], "chat.created");
  EXPECT_TRUE(std::regex_match(ev[0]["id"].get<std::string>(),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  EXPECT_EQ(ev[0]["detail"]["logid"], "LOGID123");
  EXPECT_TRUE(std::regex_match(ev[0]["detail"]["respond_at"].get<std::string>(), std::regex("\\d{13}")));
}

TEST_F(SessionTest, MalformedInputGetsErrorsAndTheSessionKeepsServing) {
  Drain();
  session_->OnText("{oops");
  session_->OnText(R"({"event_type":"no.such"})");
  session_->OnText(R"({"event_type":42})");
  session_->OnText(R"({"event_type":"chat.update","data":{"input_audio":{"sample_rate":"fast"}}})");
  session_->OnText(R"({"event_type":"chat.update","data":{"output_audio":{"opus_config":{"frame_size_ms":7}}}})");
  session_->OnText(R"({"event_type":"input_audio_buffer.append","data":{"delta":"***"}})");
  session_->OnText(R"({"event_type":"conversation.message.create","data":{"role":"robot","content":"x"}})");
  session_->OnText(R"({"event_type":"chat.update","data":[]})");
  auto ev = Drain();
  ASSERT_EQ(ev.size(), 8u);
  for (auto& e : ev) {
    EXPECT_EQ(e["event_type"], "error");
    EXPECT_EQ(e["data"]["code"], 4000);
    EXPECT_TRUE(e["detail"]["origin_message"].is_string());
  }
  EXPECT_EQ(ev[0]["detail"]["origin_message"], "{oops");
  Say("hello");
  FinishSynth();
  auto after = Drain();
  EXPECT_EQ(after.back()["event_type"], "conversation.chat.completed");
}

TEST_F(SessionTest, TextTurnFollowsTheRecordedOrder) {
  Update({{"output_audio", {{"codec", "pcm"}, {"pcm_config", {{"sample_rate", 16000}, {"frame_size_ms", 20}}}}}});
  Drain();
  Say("tell me a story");
  ASSERT_EQ(services_.jobs.size(), 1u);  // one sentence at a time
  FinishSynth();
  auto ev = Drain();
  auto t = Types(ev);
  ASSERT_GE(t.size(), 10u);
  EXPECT_EQ(t[0], "conversation.message.completed");
  EXPECT_EQ(ev[0]["data"]["type"], "question");
  EXPECT_EQ(t[1], "conversation.chat.created");
  EXPECT_EQ(t[2], "conversation.chat.in_progress");
  EXPECT_EQ(t.back(), "conversation.chat.completed");
  EXPECT_EQ(t[t.size() - 2], "conversation.audio.completed");
  std::string text;
  size_t answer = 0, verbose = 0, last_delta = 0, last_audio = 0;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (t[i] == "conversation.message.delta") {
      text += ev[i]["data"]["content"].get<std::string>();
      last_delta = i;
    }
    if (t[i] == "conversation.audio.delta") {
      last_audio = i;
      EXPECT_EQ(ev[i]["data"]["content_type"], "audio");
    }
    if (t[i] == "conversation.message.completed" && ev[i]["data"]["type"] == "answer") answer = i;
    if (t[i] == "conversation.message.completed" && ev[i]["data"]["type"] == "verbose") verbose = i;
  }
  EXPECT_EQ(text, ev[answer]["data"]["content"]);
  EXPECT_GT(text.size(), 300u) << "the story is long enough for barge-in tests";
  EXPECT_LT(last_delta, answer);
  EXPECT_EQ(verbose, answer + 1);
  EXPECT_GT(last_audio, verbose) << "remaining audio after the answer completed";
  const Json& chat = ev.back()["data"];
  EXPECT_EQ(chat["status"], "completed");
  EXPECT_TRUE(std::regex_match(chat["id"].get<std::string>(), std::regex("\\d{19}")));
  EXPECT_TRUE(std::regex_match(chat["conversation_id"].get<std::string>(), std::regex("\\d{19}")));
  // The answer is stored and shared with REST.
  Conversation* conv = store_.FindConversation(chat["conversation_id"]);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->messages.back().type, "answer");
}

TEST_F(SessionTest, PcmDeltasAreFrameSizeMsAtTheRequestedRate) {
  for (int rate : {8000, 16000, 24000, 48000}) {
    Update({{"output_audio", {{"codec", "pcm"}, {"pcm_config", {{"sample_rate", rate}, {"frame_size_ms", 20}}}}}});
    Say("hello");
    FinishSynth();
    auto ev = Drain();
    std::vector<size_t> sizes;
    for (auto& e : ev)
      if (e["event_type"] == "conversation.audio.delta")
        sizes.push_back(Base64Decode(e["data"]["content"].get<std::string>())->size());
    ASSERT_GT(sizes.size(), 3u) << rate;
    for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], size_t(rate * 2 * 20 / 1000)) << rate;
    EXPECT_LE(sizes.back(), size_t(rate * 2 * 20 / 1000));
  }
}

TEST_F(SessionTest, OpusDeltasAreSingleRawPacketsOfFrameSizeMs) {
  Update({{"output_audio",
           {{"codec", "opus"}, {"opus_config", {{"sample_rate", 16000}, {"frame_size_ms", 60}, {"bitrate", 16000}}}}}});
  Say("hello");
  FinishSynth();
  auto ev = Drain();
  int err = 0;
  OpusDecoder* dec = opus_decoder_create(16000, 1, &err);
  ASSERT_EQ(err, OPUS_OK);
  int n = 0;
  for (auto& e : ev) {
    if (e["event_type"] != "conversation.audio.delta") continue;
    auto pkt = *Base64Decode(e["data"]["content"].get<std::string>());
    auto* p = reinterpret_cast<const unsigned char*>(pkt.data());
    EXPECT_EQ(opus_packet_get_nb_samples(p, opus_int32(pkt.size()), 16000), 960);  // 60 ms
    std::vector<int16_t> pcm(960 * 2);
    EXPECT_EQ(opus_decode(dec, p, opus_int32(pkt.size()), pcm.data(), 960 * 2, 0), 960);
    ++n;
  }
  opus_decoder_destroy(dec);
  EXPECT_GT(n, 5);
}

TEST_F(SessionTest, LimitConfigPacesAudioDeltas) {
  Update({{"output_audio",
           {{"codec", "opus"},
            {"opus_config", {{"frame_size_ms", 60}, {"limit_config", {{"period", 1}, {"max_frame_num", 5}}}}}}}});
  Drain();
  Say("tell me a story");
  FinishSynth();
  std::vector<std::string> batch;
  int audio = 0;
  int64_t wait = 0;
  for (int i = 0; i < 100 && wait == 0; ++i) {
    batch.clear();
    wait = session_->Pump(now_, 1, &batch);
    for (auto& s : batch) audio += Json::parse(s)["event_type"] == "conversation.audio.delta";
  }
  EXPECT_EQ(audio, 5);
  EXPECT_GT(wait, 900);
  EXPECT_LE(wait, 1000);
  batch.clear();
  session_->Pump(now_ + 500, 64, &batch);
  for (auto& s : batch) EXPECT_NE(Json::parse(s)["event_type"], "conversation.audio.delta");
}

TEST_F(SessionTest, SubscriptionsFilterStrictly) {
  Update({{"event_subscriptions", {"conversation.chat.completed", "conversation.message.delta"}}});
  Say("hello");
  FinishSynth();
  auto ev = Drain();
  ASSERT_FALSE(ev.empty());
  for (size_t i = 1; i < ev.size(); ++i) {  // [0] is chat.created, sent before the update
    EXPECT_TRUE(ev[i]["event_type"] == "conversation.chat.completed" ||
                ev[i]["event_type"] == "conversation.message.delta")
        << ev[i]["event_type"];
  }
  EXPECT_EQ(ev.back()["event_type"], "conversation.chat.completed");
  EXPECT_TRUE(services_.jobs.empty()) << "no synthesis when audio is not subscribed";
}

TEST_F(SessionTest, ServerVadHonoursPaddingAndSilenceAndBargesIn) {
  Update({{"input_audio", {{"format", "pcm"}, {"codec", "pcm"}, {"sample_rate", 16000}}},
          {"turn_detection", {{"type", "server_vad"}, {"prefix_padding_ms", 300}, {"silence_duration_ms", 400}}}});
  Drain();
  auto append = [&](const std::vector<int16_t>& pcm) {
    Send({{"event_type", "input_audio_buffer.append"}, {"data", {{"delta", Base64Encode(testing::Bytes(pcm))}}}});
  };
  append(Silence(16000, 1000));
  append(Tone(16000, 800));
  append(Silence(16000, 300));  // shorter than silence_duration_ms: still speaking
  auto mid = Drain();
  EXPECT_EQ(Count(mid, "input_audio_buffer.speech_started"), 1);
  EXPECT_EQ(Count(mid, "input_audio_buffer.speech_stopped"), 0);
  append(Silence(16000, 200));
  auto ev = Drain();
  EXPECT_EQ(Count(ev, "input_audio_buffer.speech_stopped"), 1);
  ASSERT_EQ(services_.jobs.size(), 1u);
  const auto& utt = services_.jobs.front().pcm;
  // prefix (300 ms) + speech (800) + silence until the stop (400), ± a frame or two.
  EXPECT_NEAR(double(utt.size()) / 16, 300 + 800 + 400, 40);
  // complete has no effect under server_vad.
  Send({{"event_type", "input_audio_buffer.complete"}});
  EXPECT_TRUE(Drain().empty());
  auto job = services_.jobs.front();
  services_.jobs.pop_front();
  RecognitionResult r;
  r.text = "tell me a story";
  session_->OnRecognized(job.job, r);
  FinishSynth();
  // Let part of the reply out, then speak again: barge-in.
  std::vector<std::string> some;
  session_->Pump(now_, 8, &some);
  append(Tone(16000, 300));
  auto barge = Drain();
  auto t = Types(barge);
  auto started = std::find(t.begin(), t.end(), "input_audio_buffer.speech_started");
  auto canceled = std::find(t.begin(), t.end(), "conversation.chat.canceled");
  ASSERT_NE(started, t.end());
  ASSERT_NE(canceled, t.end());
  EXPECT_LT(started, canceled);
  EXPECT_EQ(barge[size_t(canceled - t.begin())]["data"]["code"], 1);
  EXPECT_EQ(std::count(canceled, t.end(), "conversation.audio.delta"), 0) << "no late audio";
}

TEST_F(SessionTest, TranscriptEventsThenReply) {
  Send({{"event_type", "input_audio_buffer.append"},
        {"data", {{"delta", Base64Encode(testing::Bytes(Tone(24000, 500)))}}}});
  Send({{"event_type", "input_audio_buffer.complete"}});
  auto ev = Drain();
  EXPECT_EQ(Count(ev, "input_audio_buffer.completed"), 1);
  ASSERT_EQ(services_.jobs.size(), 1u);
  EXPECT_NEAR(double(services_.jobs.front().pcm.size()), 8000, 64) << "24 kHz input resampled to 16 kHz";
  auto job = services_.jobs.front();
  services_.jobs.pop_front();
  RecognitionResult r;
  r.text = "what time is it";
  session_->OnRecognized(job.job, r);
  auto t = Drain();
  std::vector<std::string> updates;
  for (auto& e : t)
    if (e["event_type"] == "conversation.audio_transcript.update") updates.push_back(e["data"]["content"]);
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.front(), "what");
  EXPECT_EQ(updates.back(), "what time is it");
  const Json* done = Find(t, "conversation.audio_transcript.completed");
  ASSERT_NE(done, nullptr);
  EXPECT_EQ((*done)["data"]["content"], "what time is it");
  const Json* q = Find(t, "conversation.message.completed");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ((*q)["data"]["content"], "what time is it");
}

TEST_F(SessionTest, ClearEmptiesThePushToTalkBuffer) {
  Send({{"event_type", "input_audio_buffer.append"},
        {"data", {{"delta", Base64Encode(testing::Bytes(Tone(24000, 500)))}}}});
  Send({{"event_type", "input_audio_buffer.clear"}});
  Send({{"event_type", "input_audio_buffer.complete"}});
  auto ev = Drain();
  EXPECT_EQ(Count(ev, "input_audio_buffer.cleared"), 1);
  ASSERT_EQ(services_.jobs.size(), 1u);
  EXPECT_TRUE(services_.jobs.front().pcm.empty());
}

TEST_F(SessionTest, CancelAndMessageCreateInterruptWithCodes2And3) {
  Say("tell me a story");
  FinishSynth();
  std::vector<std::string> some;
  session_->Pump(now_, 6, &some);
  Send({{"event_type", "conversation.chat.cancel"}});
  auto ev = Drain();
  const Json* c = Find(ev, "conversation.chat.canceled");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["data"]["code"], 2);
  EXPECT_EQ(Count(ev, "conversation.audio.delta"), 0);
  EXPECT_EQ(Count(ev, "conversation.chat.completed"), 0);

  Say("tell me a story");
  ASSERT_EQ(services_.jobs.size(), 1u);
  uint64_t stale = services_.jobs.front().job;
  Say("hello");  // interrupts the running reply
  ev = Drain();
  c = Find(ev, "conversation.chat.canceled");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["data"]["code"], 3);
  session_->OnSynthesized(stale, Tone(22050, 300), 22050);  // late result of the cancelled chat
  services_.jobs.pop_front();
  FinishSynth();
  ev = Drain();
  EXPECT_EQ(Count(ev, "conversation.chat.completed"), 1);
  const Json* answer = nullptr;
  for (auto& e : ev)
    if (e["event_type"] == "conversation.message.completed" && e["data"]["type"] == "answer") answer = &e;
  ASSERT_NE(answer, nullptr);
  EXPECT_EQ((*answer)["data"]["content"].get<std::string>().rfind("Hello!", 0), 0u);
}

TEST_F(SessionTest, ToolCallRoundTrip) {
  Say("what is the weather in tokyo");
  auto ev = Drain();
  const Json* found = Find(ev, "conversation.chat.requires_action");
  ASSERT_NE(found, nullptr);
  const Json ra_copy = *found;  // ev is reassigned below
  const Json* ra = &ra_copy;
  const Json call = (*ra)["data"]["required_action"]["submit_tool_outputs"]["tool_calls"][0];
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>())["location"], "tokyo");
  EXPECT_TRUE(services_.jobs.empty());
  // Wrong chat id and wrong tool call id are errors; the chat keeps waiting.
  Send({{"event_type", "conversation.chat.submit_tool_outputs"},
        {"data", {{"chat_id", "1"}, {"tool_outputs", {{{"tool_call_id", call["id"]}, {"output", "x"}}}}}}});
  Send({{"event_type", "conversation.chat.submit_tool_outputs"},
        {"data", {{"chat_id", (*ra)["data"]["id"]}, {"tool_outputs", {{{"tool_call_id", "nope"}, {"output", "x"}}}}}}});
  ev = Drain();
  EXPECT_EQ(Count(ev, "error"), 2);
  Send({{"event_type", "conversation.chat.submit_tool_outputs"},
        {"data",
         {{"chat_id", (*ra)["data"]["id"]}, {"tool_outputs", {{{"tool_call_id", call["id"]}, {"output", "rainy"}}}}}}});
  FinishSynth();
  ev = Drain();
  EXPECT_EQ(ev.front()["event_type"], "conversation.chat.in_progress");
  EXPECT_EQ(ev.back()["event_type"], "conversation.chat.completed");
  EXPECT_EQ(ev.back()["data"]["id"], (*ra)["data"]["id"]);
  std::string text;
  for (auto& e : ev)
    if (e["event_type"] == "conversation.message.delta") text += e["data"]["content"].get<std::string>();
  EXPECT_EQ(text, "The weather in tokyo: rainy.");
}

TEST_F(SessionTest, GenerateAudioSpeaksWithoutAChat) {
  Drain();
  Send({{"event_type", "input_text.generate_audio"}, {"data", {{"mode", "text"}, {"text", "Testing one two."}}}});
  FinishSynth();
  auto ev = Drain();
  auto t = Types(ev);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t.front(), "conversation.audio.sentence_start");
  EXPECT_EQ(t.back(), "conversation.audio.completed");
  for (auto& e : ev) {
    EXPECT_EQ(e["event_type"].get<std::string>().find("conversation.chat"), std::string::npos);
    EXPECT_NE(e["event_type"], "conversation.message.delta");
    if (e["event_type"] == "conversation.audio.delta") EXPECT_EQ(e["data"]["id"], "0");
  }
}

TEST_F(SessionTest, RecallAndClearUseTheConversation) {
  Say("hello");
  FinishSynth();
  Say("what did I say before?");
  FinishSynth();
  auto ev = Drain();
  std::string last_answer;
  for (auto& e : ev)
    if (e["event_type"] == "conversation.message.completed" && e["data"]["type"] == "answer")
      last_answer = e["data"]["content"];
  EXPECT_EQ(last_answer, "Before that you said: hello.");
  Send({{"event_type", "conversation.clear"}});
  ev = Drain();
  EXPECT_EQ(Count(ev, "conversation.cleared"), 1);
  Say("what did I say before?");
  FinishSynth();
  ev = Drain();
  for (auto& e : ev)
    if (e["event_type"] == "conversation.message.completed" && e["data"]["type"] == "answer")
      last_answer = e["data"]["content"];
  EXPECT_EQ(last_answer, "Before that you said: nothing yet.") << "a new section forgets";
}

TEST_F(SessionTest, InjectedErrorCodeAnswersTurns) {
  faults_.error_code = 4009;
  Say("hello");
  auto ev = Drain();
  const Json* e = Find(ev, "error");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*e)["data"]["code"], 4009);
  EXPECT_EQ(Count(ev, "conversation.chat.created"), 0);
}

TEST_F(SessionTest, ChatFailedFaultMidReplyThenUsedUp) {
  live_.chat_failed = 5000;
  live_.chat_failed_after = 1;
  live_.turn_faults_remaining = 1;
  Drain();
  Say("hello");  // "Hello! I am the voicebus simulator. How can I help you?"
  FinishSynth();
  auto ev = Drain();
  ASSERT_FALSE(ev.empty());
  const Json& last = ev.back();
  EXPECT_EQ(last["event_type"], "conversation.chat.failed");
  EXPECT_EQ(last["data"]["status"], "failed");
  EXPECT_EQ(last["data"]["last_error"]["code"], 5000);
  EXPECT_GT(last["data"]["failed_at"].get<int64_t>(), 0);
  std::string text;
  for (auto& e : ev)
    if (e["event_type"] == "conversation.message.delta") text += e["data"]["content"].get<std::string>();
  EXPECT_EQ(text, "Hello! ");
  EXPECT_GT(Count(ev, "conversation.audio.delta"), 0);
  EXPECT_EQ(Count(ev, "conversation.chat.completed"), 0);
  EXPECT_EQ(live_.chat_failed, 0) << "one turn only";
  Say("hello");
  FinishSynth();
  ev = Drain();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back()["event_type"], "conversation.chat.completed");
  EXPECT_EQ(ev.back()["data"]["last_error"]["code"], 0);
}

TEST_F(SessionTest, TurnErrorFaultAndFailRuleBeforeAnyAnswer) {
  live_.turn_error = 4008;
  live_.turn_faults_remaining = 1;
  Drain();  // chat.created
  Say("hello");
  auto ev = Drain();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["data"]["code"], 4008);
  Say("simulate a failure");
  ev = Drain();
  EXPECT_EQ(Types(ev), (std::vector<std::string>{"conversation.message.completed", "conversation.chat.created",
                                                 "conversation.chat.in_progress", "conversation.chat.failed"}));
  EXPECT_EQ(ev.back()["data"]["last_error"]["code"], 4013);
  EXPECT_TRUE(services_.jobs.empty()) << "nothing is synthesized for a chat that fails at once";
}

TEST_F(SessionTest, UnknownConversationIdIsRefused) {
  Update({{"chat_config", {{"conversation_id", "7000000000000000042"}}}});
  auto ev = Drain();
  const Json* e = Find(ev, "error");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*e)["data"]["code"], 4002);
}

}  // namespace
}  // namespace vb::cozesim
