// Coze JSON ⇄ bus messages: recorded downstream events (coze-protocol.md §4–§5
// and the seed's SSE sample) in → vendor-neutral events out; settings and
// commands in → upstream JSON out. Broken input must be counted, never crash.
#include "actors/session/coze_protocol.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>

namespace vb::session {
namespace {

using Json = nlohmann::json;
using Kind = DownlinkOutput::Kind;

constexpr char kChat[] = "7382159487131697202";
constexpr char kConv[] = "7381473525342978089";

std::string Ev(const std::string& type, Json data) {
  Json j = {{"id", "0b4f8a6e-1111-4222-8333-944455556666"},
            {"event_type", type},
            {"detail", {{"logid", "20241124abcdef"}, {"respond_at", "1732480000000"}}}};
  if (!data.is_null()) j["data"] = data;
  return j.dump();
}

Json ChatObj(const std::string& status, int in = 0, int out = 0) {
  return {{"id", kChat},
          {"conversation_id", kConv},
          {"bot_id", "7379462189365198898"},
          {"completed_at", 1718792949},
          {"last_error", {{"code", 0}, {"msg", ""}}},
          {"status", status},
          {"usage", {{"token_count", in + out}, {"output_count", out}, {"input_count", in}}},
          {"section_id", kConv}};
}

Json Msg(const std::string& type, const std::string& content, const std::string& content_type = "text",
         const std::string& role = "assistant") {
  return {{"id", "7382159494123470858"},
          {"conversation_id", kConv},
          {"bot_id", "7379462189365198898"},
          {"role", role},
          {"type", type},
          {"content", content},
          {"content_type", content_type},
          {"chat_id", kChat},
          {"section_id", kConv}};
}

struct Feeder {
  CozeDownlink down;
  std::vector<DownlinkOutput> out;
  std::string problem;
  std::vector<std::string> problems;
  void Feed(const std::string& text) {
    down.Feed(text, &out, &problem);
    if (!problem.empty()) problems.push_back(problem);
  }
  std::vector<const DownlinkOutput*> Events(v1::SessionEvent::EventCase c) const {
    std::vector<const DownlinkOutput*> r;
    for (const auto& o : out)
      if (o.kind == Kind::kEvent && o.event.event_case() == c) r.push_back(&o);
    return r;
  }
  std::vector<const DownlinkOutput*> Audio() const {
    std::vector<const DownlinkOutput*> r;
    for (const auto& o : out)
      if (o.kind == Kind::kAudio) r.push_back(&o);
    return r;
  }
};

TEST(Base64, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  std::string bin;
  for (int i = 0; i < 256; ++i) bin.push_back(char(i));
  std::string back;
  ASSERT_TRUE(Base64Decode(Base64Encode(bin), &back));
  EXPECT_EQ(back, bin);
  EXPECT_FALSE(Base64Decode("Zm9v!", &back));
  EXPECT_FALSE(Base64Decode("Z", &back));
}

// The recorded reply order of §5 (text + audio, then chat.completed last).
TEST(Downlink, TextTurnMapsToTurnTextAudioAndEnd) {
  Feeder f;
  f.down.SetOutputFormat("opus", 16000, 60);
  f.down.ExpectTextTurn("req-1");
  f.Feed(Ev("chat.created", nullptr));
  f.Feed(Ev("conversation.message.completed", Msg("question", "what day is it", "text", "user")));
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  f.Feed(Ev("conversation.chat.in_progress", ChatObj("in_progress")));
  f.Feed(Ev("conversation.message.delta", Msg("answer", "2024 ")));
  f.Feed(Ev("conversation.audio.sentence_start", {{"text", "2024 is a year."}}));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("OPUS-1"), "audio")));
  f.Feed(Ev("conversation.message.delta", Msg("answer", "is a year.")));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("OPUS-2"), "audio")));
  f.Feed(Ev("conversation.message.completed", Msg("answer", "2024 is a year.")));
  f.Feed(Ev("conversation.message.completed", Msg("verbose", R"({"msg_type":"generate_answer_finish","data":""})")));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("OPUS-3"), "audio")));
  f.Feed(Ev("conversation.audio.completed", Msg("answer", "", "audio")));
  f.Feed(Ev("conversation.chat.completed", ChatObj("completed", 614, 19)));

  ASSERT_TRUE(f.problems.empty()) << f.problems[0];
  ASSERT_EQ(f.out.front().kind, Kind::kSessionReady);
  auto started = f.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0]->turn_id, kChat);
  EXPECT_EQ(started[0]->event.turn_started().conversation_id(), kConv);
  EXPECT_EQ(started[0]->event.turn_started().input(), v1::TurnStarted::TEXT);
  EXPECT_EQ(started[0]->event.turn_started().request_id(), "req-1");

  auto text = f.Events(v1::SessionEvent::kAgentText);
  ASSERT_EQ(text.size(), 3u);  // two deltas and the final answer; verbose ignored
  EXPECT_EQ(text[0]->event.agent_text().text(), "2024 ");
  EXPECT_FALSE(text[0]->event.agent_text().final());
  EXPECT_EQ(text[2]->event.agent_text().text(), "2024 is a year.");
  EXPECT_TRUE(text[2]->event.agent_text().final());

  auto cap = f.Events(v1::SessionEvent::kAudioCaption);
  ASSERT_EQ(cap.size(), 1u);
  EXPECT_EQ(cap[0]->event.audio_caption().text(), "2024 is a year.");
  EXPECT_EQ(cap[0]->turn_id, kChat);

  auto audio = f.Audio();
  ASSERT_EQ(audio.size(), 3u);
  for (size_t i = 0; i < audio.size(); ++i) {
    EXPECT_EQ(audio[i]->turn_id, kChat);
    EXPECT_EQ(audio[i]->audio.packet_index(), i);
    EXPECT_EQ(audio[i]->audio.codec(), v1::CODEC_OPUS);
    EXPECT_EQ(audio[i]->audio.sample_rate(), 16000u);
    EXPECT_EQ(audio[i]->audio.duration_us(), 60000u);
  }
  EXPECT_EQ(audio[1]->audio.data(), "OPUS-2");

  auto end = f.Events(v1::SessionEvent::kAgentAudioEnd);
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]->event.agent_audio_end().packets(), 3u);

  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(&f.out.back(), ended[0]);
  EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::COMPLETED);
  EXPECT_EQ(ended[0]->event.turn_ended().input_tokens(), 614u);
  EXPECT_EQ(ended[0]->event.turn_ended().output_tokens(), 19u);
  EXPECT_TRUE(f.down.running_chat().empty());
  EXPECT_EQ(f.down.conversation_id(), kConv);
}

TEST(Downlink, PcmDurationComesFromTheChunkSize) {
  Feeder f;
  f.down.SetOutputFormat("pcm", 24000, 0);
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode(std::string(4800, '\0')), "audio")));
  ASSERT_EQ(f.Audio().size(), 1u);
  EXPECT_EQ(f.Audio()[0]->audio.codec(), v1::CODEC_PCM_S16LE);
  EXPECT_EQ(f.Audio()[0]->audio.duration_us(), 100000u);  // 2400 samples at 24 kHz
}

TEST(Downlink, ChatUpdatedSetsTheDownlinkFormat) {
  Feeder f;
  f.down.SetOutputFormat("opus", 16000, 60);
  f.Feed(Ev("chat.updated", {{"output_audio", {{"codec", "pcm"}, {"pcm_config", {{"sample_rate", 24000}}}}}}));
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("ab"), "audio")));
  ASSERT_EQ(f.Audio().size(), 1u);
  EXPECT_EQ(f.Audio()[0]->audio.codec(), v1::CODEC_PCM_S16LE);
  EXPECT_EQ(f.Audio()[0]->audio.sample_rate(), 24000u);
}

TEST(Downlink, VoiceTurnTranscriptsAndServerVad) {
  Feeder f;
  f.Feed(Ev("input_audio_buffer.speech_started", nullptr));
  f.Feed(Ev("conversation.audio_transcript.update", {{"content", "what is"}}));
  f.Feed(Ev("conversation.audio_transcript.update", {{"content", "what is the time"}}));
  f.Feed(Ev("input_audio_buffer.speech_stopped", nullptr));
  f.Feed(Ev("conversation.audio_transcript.completed", {{"content", "what is the time"}}));
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  ASSERT_TRUE(f.problems.empty());
  auto speech = f.Events(v1::SessionEvent::kUserSpeech);
  ASSERT_EQ(speech.size(), 2u);
  EXPECT_TRUE(speech[0]->event.user_speech().started());
  EXPECT_FALSE(speech[1]->event.user_speech().started());
  auto tr = f.Events(v1::SessionEvent::kUserTranscript);
  ASSERT_EQ(tr.size(), 3u);
  EXPECT_EQ(tr[1]->event.user_transcript().text(), "what is the time");
  EXPECT_FALSE(tr[1]->event.user_transcript().final());
  EXPECT_TRUE(tr[2]->event.user_transcript().final());
  auto started = f.Events(v1::SessionEvent::kTurnStarted);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0]->event.turn_started().input(), v1::TurnStarted::VOICE);
}

TEST(Downlink, ClientCancelEndsTheTurnOnceAndDropsItsLateAudio) {
  Feeder f;
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("A"), "audio")));
  EXPECT_EQ(f.down.CancelByClient("", &f.out), kChat);
  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_id, kChat);
  EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::CANCELLED);
  EXPECT_EQ(ended[0]->event.turn_ended().cancel_reason(), v1::TurnEnded::CLIENT_CANCEL);
  size_t before = f.out.size();
  // Late output of the cancelled chat, then the server's confirmation.
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("B"), "audio")));
  f.Feed(Ev("conversation.message.delta", Msg("answer", "late")));
  f.Feed(Ev("conversation.audio.completed", Msg("answer", "", "audio")));
  f.Feed(Ev("conversation.chat.canceled", {{"code", 2}, {"msg", "client cancel"}}));
  f.Feed(Ev("conversation.chat.completed", ChatObj("completed")));
  EXPECT_EQ(f.out.size(), before);
  EXPECT_GE(f.down.counters().late_audio_dropped, 3u);
  EXPECT_EQ(f.Audio().size(), 1u);
}

TEST(Downlink, ServerCancelReasonsAreMapped) {
  for (auto [code, reason] :
       {std::pair{1, v1::TurnEnded::USER_SPEECH_INTERRUPT}, std::pair{2, v1::TurnEnded::CLIENT_CANCEL},
        std::pair{3, v1::TurnEnded::NEW_MESSAGE}, std::pair{9, v1::TurnEnded::CANCEL_UNSPECIFIED}}) {
    Feeder f;
    f.Feed(Ev("conversation.chat.created", ChatObj("created")));
    f.Feed(Ev("conversation.chat.canceled", {{"code", code}, {"msg", "x"}}));
    auto ended = f.Events(v1::SessionEvent::kTurnEnded);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::CANCELLED);
    EXPECT_EQ(ended[0]->event.turn_ended().cancel_reason(), reason) << code;
    // Audio after the cancel is late.
    f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("B"), "audio")));
    EXPECT_TRUE(f.Audio().empty());
  }
}

TEST(Downlink, ToolCallThenResumedReply) {
  Feeder f;
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  Json chat = ChatObj("requires_action");
  chat["required_action"] = {
      {"type", "submit_tool_outputs"},
      {"submit_tool_outputs",
       {{"tool_calls",
         Json::array({{{"id", "call-1"},
                       {"type", "function"},
                       {"function", {{"name", "get_weather"}, {"arguments", R"({"city":"paris"})"}}}}})}}}};
  f.Feed(Ev("conversation.chat.requires_action", chat));
  auto calls = f.Events(v1::SessionEvent::kToolCall);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]->turn_id, kChat);
  EXPECT_EQ(calls[0]->event.tool_call().call_id(), "call-1");
  EXPECT_EQ(calls[0]->event.tool_call().name(), "get_weather");
  EXPECT_EQ(calls[0]->event.tool_call().arguments_json(), R"({"city":"paris"})");
  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::REQUIRES_ACTION);
  EXPECT_EQ(f.down.tool_chat(), kChat);
  // After submit_tool_outputs the same chat goes on and completes.
  f.Feed(Ev("conversation.chat.in_progress", ChatObj("in_progress")));
  f.Feed(Ev("conversation.message.delta", Msg("answer", "Sunny.")));
  f.Feed(Ev("conversation.chat.completed", ChatObj("completed")));
  ASSERT_EQ(f.Events(v1::SessionEvent::kAgentText).size(), 1u);
  ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[1]->event.turn_ended().outcome(), v1::TurnEnded::COMPLETED);
  EXPECT_TRUE(f.problems.empty());
}

TEST(Downlink, FailedChatAndErrorsCarryTheMessage) {
  Feeder f;
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  Json chat = ChatObj("failed");
  chat["last_error"] = {{"code", 4013}, {"msg", "model error"}};
  f.Feed(Ev("conversation.chat.failed", chat));
  f.Feed(Ev("error", {{"code", 4100}, {"msg", "authentication failed"}}));
  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::FAILED);
  EXPECT_EQ(ended[0]->event.turn_ended().error(), "4013: model error");
  auto err = f.Events(v1::SessionEvent::kError);
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0]->event.error().code(), 4100);
  EXPECT_TRUE(err[0]->event.error().fatal());
}

// Issue 13: every error code of coze-protocol.md §7 ends the chat under way
// FAILED with a reason a person can read; its late output is dropped; only
// the codes a person or the session must act on are a SessionError too.
TEST(Downlink, EveryListedErrorCodeEndsTheRunningChatWithAReadableReason) {
  const std::vector<int> codes = {4000, 4001, 4002, 4003, 4004, 4005, 4006, 4008, 4009, 4010, 4011,
                                  4013, 4015, 4016, 4100, 4101, 4102, 4104, 4105, 4200, 5000};
  for (int code : codes) {
    Feeder f;
    f.Feed(Ev("conversation.chat.created", ChatObj("created")));
    f.Feed(Ev("error", {{"code", code}, {"msg", "m"}}));
    auto ended = f.Events(v1::SessionEvent::kTurnEnded);
    ASSERT_EQ(ended.size(), 1u) << code;
    EXPECT_EQ(ended[0]->turn_id, kChat);
    EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::FAILED);
    const std::string& why = ended[0]->event.turn_ended().error();
    EXPECT_EQ(why.rfind(std::to_string(code) + ": m (", 0), 0u) << why;  // the code, the message, its meaning
    EXPECT_TRUE(f.down.running_chat().empty());
    f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("late"), "audio")));
    EXPECT_TRUE(f.Audio().empty()) << code;
    const bool must_act = code == 4100 || code == 4101 || code == 4011 || code == 4015 || code == 4002;
    EXPECT_EQ(f.Events(v1::SessionEvent::kError).size(), must_act ? 1u : 0u) << code;
  }
  EXPECT_EQ(CozeErrorText(4008, ""), "4008: rate limited: too many requests from this user");
  EXPECT_EQ(CozeErrorText(4013, "Model Error"), "4013: Model Error");
  EXPECT_EQ(CozeErrorText(4321, "odd"), "4321: odd");
}

TEST(Downlink, ChatFailedCarriesLastErrorOrSaysThereWasNone) {
  Feeder f;
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  Json chat = ChatObj("failed");
  chat["last_error"] = {{"code", 4009}, {"msg", "busy now"}};
  f.Feed(Ev("conversation.chat.failed", chat));
  Json bare = ChatObj("failed");
  bare["id"] = "7382159487131697999";
  bare.erase("last_error");
  f.Feed(Ev("conversation.chat.created", bare));
  f.Feed(Ev("conversation.chat.failed", bare));
  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[0]->event.turn_ended().error(), "4009: busy now (the service is busy)");
  EXPECT_EQ(ended[1]->event.turn_ended().outcome(), v1::TurnEnded::FAILED);
  EXPECT_FALSE(ended[1]->event.turn_ended().error().empty());
  EXPECT_TRUE(f.Events(v1::SessionEvent::kError).empty()) << "one failure, one error prompt";
}

TEST(Downlink, ConnectionLossFailsTheRunningTurnAndMutesIt) {
  Feeder f;
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  EXPECT_EQ(f.down.AbandonRunning(&f.out), kChat);
  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::FAILED);
  EXPECT_TRUE(f.down.IsCancelled(kChat));
  f.Feed(Ev("conversation.audio.delta", Msg("answer", Base64Encode("B"), "audio")));
  EXPECT_TRUE(f.Audio().empty());
}

TEST(Downlink, BrokenUnknownAndMistypedInputIsCountedNotFatal) {
  Feeder f;
  f.Feed("not json at all {");
  f.Feed("[1,2,3]");
  f.Feed(R"({"event_type": 42})");
  f.Feed(R"({"data": {}})");
  f.Feed(Ev("conversation.brand_new_event", {{"x", 1}}));
  f.Feed(R"({"event_type":"conversation.message.delta","data":"a string"})");
  f.Feed(Ev("conversation.message.delta", {{"content", 12}, {"role", "assistant"}, {"type", "answer"}}));
  f.Feed(Ev("conversation.audio.delta", {{"content", "***not base64***"}}));
  f.Feed(Ev("conversation.chat.created", {{"id", Json::array()}}));
  f.Feed(Ev("conversation.chat.canceled", {{"code", "two"}}));
  f.Feed(Ev("conversation.chat.requires_action", {{"id", kChat}, {"required_action", 5}}));
  EXPECT_TRUE(f.out.empty());
  EXPECT_EQ(f.down.counters().malformed, 4u);
  EXPECT_EQ(f.down.counters().unknown, 1u);
  EXPECT_EQ(f.down.counters().wrong_type, 6u);
  EXPECT_EQ(f.problems.size(), 11u);
}

// Numbers no int64 holds (found by fuzz_coze_downlink: casting 4e81 was
// undefined behaviour) are a wrong type, counted, never a crash.
TEST(Downlink, NumbersBeyondInt64AreAWrongTypeNotUndefined) {
  Feeder f;
  f.Feed(R"({"id":"e9","event_type":"error","data":{"code":4e81,"msg":"invalid parameter"}})");
  f.Feed(R"({"id":"e10","event_type":"error","data":{"code":18446744073709551615,"msg":"x"}})");
  f.Feed(R"({"id":"e11","event_type":"error","data":{"code":-1e300,"msg":"x"}})");
  EXPECT_EQ(f.down.counters().wrong_type, 3u);
  EXPECT_EQ(f.problems.size(), 3u);
}

// Every prefix and random byte mutation of a recorded session: never throws,
// never crashes.
TEST(Downlink, MutatedRecordedEventsNeverCrash) {
  std::vector<std::string> recorded = {
      Ev("conversation.chat.created", ChatObj("created")), Ev("conversation.message.delta", Msg("answer", "hello")),
      Ev("conversation.audio.delta", Msg("answer", Base64Encode("xyz"), "audio")),
      Ev("conversation.chat.completed", ChatObj("completed", 1, 2)), Ev("error", {{"code", 4000}, {"msg", "bad"}})};
  std::mt19937 rng(7);
  Feeder f;
  for (const auto& r : recorded) {
    for (size_t n = 0; n <= r.size(); n += 7) EXPECT_NO_THROW(f.Feed(r.substr(0, n)));
    for (int k = 0; k < 300; ++k) {
      std::string m = r;
      for (int j = 0; j < 3; ++j) m[rng() % m.size()] = char(rng() % 128);
      EXPECT_NO_THROW(f.Feed(m));
    }
  }
  EXPECT_GT(f.down.counters().malformed, 0u);
}

// Issue 13: chat.update carries every field of the session's configuration
// (seed 000 / coze-protocol.md §3) when configured, and nothing it was not.
TEST(Uplink, ChatUpdateCarriesEveryConfiguredField) {
  CozeUplink up;
  SessionSettings s;
  s.user_id = "vb-42";
  s.meta_data = {{"room", "kitchen"}};
  s.custom_variables = {{"name", "Ada"}};
  s.persona_prompt = "be brief";
  s.parameters = {{"city", "Paris"}};
  s.latitude = "48.8566";
  s.longitude = "2.3522";
  s.hot_words = {"voicebus"};
  s.asr_context = "a kitchen assistant";
  s.user_language = "en";
  s.interrupt_mode = "keyword_prefix";
  s.interrupt_keywords = {"stop", "wait"};
  s.prologue_content = "Hi there";
  s.need_play_prologue = true;
  s.vad_type = "semantic_vad";
  s.input_codec = "opus";
  Json d = Json::parse(up.ChatUpdate(s, v1::MODE_CONTINUOUS, "c1"))["data"];
  const Json& cc = d["chat_config"];
  EXPECT_EQ(cc["user_id"], "vb-42");
  EXPECT_EQ(cc["meta_data"], Json({{"room", "kitchen"}}));
  EXPECT_EQ(cc["custom_variables"], Json({{"name", "Ada"}, {"persona_prompt", "be brief"}}));
  EXPECT_EQ(cc["parameters"], Json({{"city", "Paris"}}));
  EXPECT_EQ(cc["extra_params"], Json({{"latitude", "48.8566"}, {"longitude", "2.3522"}}));
  EXPECT_EQ(d["asr_config"],
            Json({{"hot_words", {"voicebus"}}, {"context", "a kitchen assistant"}, {"user_language", "en"}}));
  EXPECT_EQ(d["turn_detection"]["type"], "semantic_vad");
  EXPECT_EQ(d["turn_detection"]["semantic_vad_config"]["silence_threshold_ms"], 300);
  EXPECT_EQ(d["turn_detection"]["semantic_vad_config"]["semantic_unfinished_wait_time_ms"], 500);
  EXPECT_EQ(d["turn_detection"]["interrupt_config"],
            Json({{"mode", "keyword_prefix"}, {"keywords", {"stop", "wait"}}}));
  EXPECT_EQ(d["prologue_content"], "Hi there");
  EXPECT_EQ(d["need_play_prologue"], true);
  EXPECT_EQ(d["input_audio"]["format"], "ogg");
  EXPECT_EQ(d["input_audio"]["codec"], "opus");
  // Push-to-talk: the client ends turns, no VAD settings.
  Json p = Json::parse(up.ChatUpdate(s, v1::MODE_PUSH_TO_TALK, "c1"))["data"];
  EXPECT_EQ(p["turn_detection"], Json({{"type", "client_interrupt"}}));
  // Nothing configured: nothing sent.
  Json bare = Json::parse(up.ChatUpdate(SessionSettings{}, v1::MODE_CONTINUOUS, ""))["data"];
  EXPECT_EQ(bare["chat_config"], Json::object());
  EXPECT_FALSE(bare.contains("asr_config"));
  EXPECT_FALSE(bare["turn_detection"].contains("interrupt_config"));
  EXPECT_EQ(bare["input_audio"]["format"], "pcm");
}

TEST(Uplink, ClearAndGenerateAudio) {
  CozeUplink up;
  EXPECT_EQ(Json::parse(up.ConversationClear())["event_type"], "conversation.clear");
  Json g = Json::parse(up.GenerateAudio("Dinner is ready"));
  EXPECT_EQ(g["event_type"], "input_text.generate_audio");
  EXPECT_EQ(g["data"], Json({{"mode", "text"}, {"text", "Dinner is ready"}}));
}

// generate_audio's recorded reply: sentence_start, audio deltas and
// audio.completed with ids "0", no chat events: one turn of its own.
TEST(Downlink, SpeechIsATurnOfItsOwnEndedByItsAudio) {
  Feeder f;
  f.down.BeginSpeech("speak-1");
  Json zero = Msg("answer", Base64Encode("OPUS"), "audio");
  zero["chat_id"] = "0";
  f.Feed(Ev("conversation.audio.sentence_start", {{"text", "Dinner is ready"}}));
  f.Feed(Ev("conversation.audio.delta", zero));
  zero["content"] = "";
  f.Feed(Ev("conversation.audio.completed", zero));
  ASSERT_EQ(f.Audio().size(), 1u);
  EXPECT_EQ(f.Audio()[0]->turn_id, "speak-1");
  auto end = f.Events(v1::SessionEvent::kAgentAudioEnd);
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]->event.agent_audio_end().packets(), 1u);
  auto ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]->turn_id, "speak-1");
  EXPECT_EQ(ended[0]->event.turn_ended().outcome(), v1::TurnEnded::COMPLETED);
  EXPECT_TRUE(f.down.running_chat().empty());
  // A reply that starts while a speech runs ends the speech (cancelled).
  f.down.BeginSpeech("speak-2");
  f.Feed(Ev("conversation.chat.created", ChatObj("created")));
  ended = f.Events(v1::SessionEvent::kTurnEnded);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[1]->turn_id, "speak-2");
  EXPECT_EQ(ended[1]->event.turn_ended().outcome(), v1::TurnEnded::CANCELLED);
  EXPECT_EQ(f.down.running_chat(), kChat);
}

TEST(Uplink, ChatUpdateForContinuousMode) {
  CozeUplink up;
  SessionSettings s;
  s.speech_rate = 20;
  s.voice_id = "voice-7";
  s.event_subscriptions = {"conversation.audio.delta", "conversation.chat.completed"};
  Json j = Json::parse(up.ChatUpdate(s, v1::MODE_CONTINUOUS, "123"));
  EXPECT_EQ(j["event_type"], "chat.update");
  EXPECT_TRUE(j["id"].is_string());
  const Json& d = j["data"];
  EXPECT_EQ(d["chat_config"]["conversation_id"], "123");
  EXPECT_EQ(d["input_audio"]["codec"], "pcm");
  EXPECT_EQ(d["input_audio"]["sample_rate"], 16000);
  EXPECT_EQ(d["input_audio"]["channel"], 1);
  EXPECT_EQ(d["output_audio"]["codec"], "opus");
  EXPECT_EQ(d["output_audio"]["speech_rate"], 20);
  EXPECT_EQ(d["output_audio"]["voice_id"], "voice-7");
  EXPECT_EQ(d["output_audio"]["opus_config"]["frame_size_ms"], 60);
  EXPECT_EQ(d["output_audio"]["opus_config"]["sample_rate"], 16000);
  EXPECT_EQ(d["output_audio"]["opus_config"]["limit_config"]["period"], 1);
  EXPECT_EQ(d["output_audio"]["opus_config"]["limit_config"]["max_frame_num"], 18);
  EXPECT_EQ(d["turn_detection"]["type"], "server_vad");
  EXPECT_EQ(d["turn_detection"]["prefix_padding_ms"], 600);
  EXPECT_EQ(d["turn_detection"]["silence_duration_ms"], 500);
  EXPECT_EQ(d["event_subscriptions"].size(), 2u);
}

TEST(Uplink, ChatUpdateForPushToTalkAndPcmOutput) {
  CozeUplink up;
  SessionSettings s;
  s.output_codec = "pcm";
  s.output_sample_rate = 24000;
  s.frame_size_ms = 20;
  s.limit_period_s = 0;
  s.input_codec = "opus";
  Json j = Json::parse(up.ChatUpdate(s, v1::MODE_PUSH_TO_TALK, ""));
  const Json& d = j["data"];
  EXPECT_FALSE(d["chat_config"].contains("conversation_id"));
  EXPECT_EQ(d["turn_detection"]["type"], "client_interrupt");
  EXPECT_FALSE(d["turn_detection"].contains("silence_duration_ms"));
  EXPECT_EQ(d["input_audio"]["codec"], "opus");
  EXPECT_EQ(d["output_audio"]["codec"], "pcm");
  EXPECT_EQ(d["output_audio"]["pcm_config"]["sample_rate"], 24000);
  EXPECT_FALSE(d["output_audio"]["pcm_config"].contains("limit_config"));
  EXPECT_FALSE(d.contains("event_subscriptions"));
  // Only push-to-talk turns the server VAD off.
  Json w = Json::parse(up.ChatUpdate(s, v1::MODE_WAKE_WORD, ""));
  EXPECT_EQ(w["data"]["turn_detection"]["type"], "server_vad");
}

TEST(Uplink, CommandsBecomeCozeEvents) {
  CozeUplink up;
  Json a = Json::parse(up.Append(std::string("\x01\x02\xff", 3)));
  EXPECT_EQ(a["event_type"], "input_audio_buffer.append");
  std::string raw;
  ASSERT_TRUE(Base64Decode(a["data"]["delta"].get<std::string>(), &raw));
  EXPECT_EQ(raw, std::string("\x01\x02\xff", 3));
  EXPECT_EQ(Json::parse(up.Complete())["event_type"], "input_audio_buffer.complete");
  EXPECT_EQ(Json::parse(up.Cancel())["event_type"], "conversation.chat.cancel");
  EXPECT_EQ(Json::parse(up.Clear())["event_type"], "input_audio_buffer.clear");
  Json m = Json::parse(up.MessageCreate("what \"time\" is it?"));
  EXPECT_EQ(m["event_type"], "conversation.message.create");
  EXPECT_EQ(m["data"]["role"], "user");
  EXPECT_EQ(m["data"]["content_type"], "text");
  EXPECT_EQ(m["data"]["content"], "what \"time\" is it?");
  Json t = Json::parse(up.SubmitToolOutputs("c1", "call-1", R"({"temp":21})"));
  EXPECT_EQ(t["event_type"], "conversation.chat.submit_tool_outputs");
  EXPECT_EQ(t["data"]["chat_id"], "c1");
  EXPECT_EQ(t["data"]["tool_outputs"][0]["tool_call_id"], "call-1");
  EXPECT_EQ(t["data"]["tool_outputs"][0]["output"], R"({"temp":21})");
  // Event ids differ.
  EXPECT_NE(Json::parse(up.Cancel())["id"], Json::parse(up.Cancel())["id"]);
}

// The first column of coze-protocol.md §4's table of downstream events, as
// the spec writes it ("a.b / .c" is a.b and a.c). Checked against the spec
// itself below when it is beside the repository (../shared/spec), so an
// event added there fails here.
const char* const kSpecRows[] = {
    "chat.created",
    "chat.updated",
    "conversation.chat.created / .in_progress / .completed / .failed / .requires_action",
    "conversation.chat.canceled",
    "conversation.message.delta",
    "conversation.message.completed",
    "conversation.audio.sentence_start",
    "conversation.audio.delta",
    "conversation.audio.completed",
    "conversation.audio_transcript.update",
    "conversation.audio_transcript.completed",
    "input_audio_buffer.speech_started / .speech_stopped",
    "input_audio_buffer.completed / .cleared, conversation.cleared",
    "error",
};

// One cell of that column → its event types.
void ExpandCell(const std::string& cell, std::set<std::string>* types) {
  std::string base;  // "conversation.chat." of "conversation.chat.created"
  size_t i = 0;
  for (;;) {
    size_t j = cell.find_first_of("/,", i);
    std::string tok = cell.substr(i, j == std::string::npos ? std::string::npos : j - i);
    tok.erase(0, tok.find_first_not_of(' '));
    tok.erase(tok.find_last_not_of(' ') + 1);
    if (!tok.empty() && tok[0] == '.') tok = base + tok.substr(1);
    if (!tok.empty()) {
      types->insert(tok);
      base = tok.substr(0, tok.rfind('.') + 1);
    }
    if (j == std::string::npos) return;
    i = j + 1;
  }
}

std::set<std::string> SpecDownlink() {
  std::set<std::string> types;
  for (const char* row : kSpecRows) ExpandCell(row, &types);
  return types;
}

TEST(DownlinkTable, EverySpecEventIsMappedOrDeliberatelyIgnoredAndNothingElseIs) {
  std::set<std::string> mapped, ignored;
  for (const auto& t : CozeDownlink::KnownEventTypes()) {
    auto& into = t.ignored ? ignored : mapped;
    EXPECT_TRUE(into.insert(std::string(t.type)).second) << "twice in the table: " << t.type;
  }
  const std::set<std::string> spec = SpecDownlink();
  ASSERT_EQ(spec.size(), 21u);
  for (const auto& type : spec)
    EXPECT_TRUE(mapped.count(type) || ignored.count(type)) << "not in the downlink table: " << type;
  for (const auto& type : mapped) EXPECT_TRUE(spec.count(type)) << "mapped but not in the spec: " << type;
  for (const auto& type : ignored) EXPECT_TRUE(spec.count(type)) << "ignored but not in the spec: " << type;
  EXPECT_EQ(ignored, (std::set<std::string>{"input_audio_buffer.completed", "input_audio_buffer.cleared",
                                            "conversation.cleared"}));
}

TEST(DownlinkTable, ItsTypesAreKnownAndAnythingElseIsCountedUnknown) {
  // Each spec type with an empty body: never `unknown`; an ignored one
  // outputs nothing and counts `ignored`.
  for (const auto& t : CozeDownlink::KnownEventTypes()) {
    Feeder f;
    f.Feed(Ev(std::string(t.type), Json::object()));
    EXPECT_EQ(f.down.counters().unknown, 0u) << t.type;
    EXPECT_EQ(f.down.counters().events, 1u) << t.type;
    if (t.ignored) {
      EXPECT_TRUE(f.out.empty()) << t.type;
      EXPECT_EQ(f.down.counters().ignored, 1u) << t.type;
    }
  }
  Feeder f;
  f.Feed(Ev("conversation.audio.delta.v2", Json::object()));
  f.Feed(Ev("Chat.Created", nullptr));
  EXPECT_EQ(f.down.counters().unknown, 2u);
  EXPECT_TRUE(f.out.empty());
  ASSERT_EQ(f.problems.size(), 2u);
  EXPECT_EQ(f.problems[0], "unknown event_type conversation.audio.delta.v2");
  // Unknown, but its data is not an object: counted as a wrong type first, as before.
  f.Feed(Ev("something.new", Json::array()));
  EXPECT_EQ(f.down.counters().unknown, 2u);
  EXPECT_EQ(f.down.counters().wrong_type, 1u);
  f.Feed("[1,2]");
  f.Feed(R"({"data":{}})");
  EXPECT_EQ(f.down.counters().malformed, 2u);
}

// The spec's §4 table, read from ../shared/spec/coze-protocol.md.
std::set<std::string> SpecDownlinkFromFile(const std::string& path) {
  std::ifstream in(path);
  std::set<std::string> types;
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line.rfind("## 4.", 0) == 0;
    if (in_section && line.rfind("| ", 0) == 0 && line.rfind("| event_type", 0) != 0)
      ExpandCell(line.substr(2, line.find(" |", 1) - 2), &types);
  }
  return types;
}

TEST(DownlinkTable, TheListAboveIsTheSpecsList) {
  const char* src = std::getenv("VB_SOURCE_DIR");
  const std::string path = std::string(src ? src : ".") + "/../shared/spec/coze-protocol.md";
  if (!std::ifstream(path)) GTEST_SKIP() << "no " << path << " beside the repository";
  EXPECT_EQ(SpecDownlinkFromFile(path), SpecDownlink());
}

}  // namespace
}  // namespace vb::session
