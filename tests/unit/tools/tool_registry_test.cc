// ToolRegistry: every tool call is answered exactly once — by a built-in
// tool, a config answer, a provider on the bus, or an error output when
// nobody can or nobody does in time (with the fallback prompt).
#include "actors/tools/tool_registry.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>

namespace vb::tools {
namespace {

using Json = nlohmann::json;
constexpr int64_t kMs = 1'000'000;

struct Recorder : RegistryPort {
  struct Output {
    std::string turn, call, output;
  };
  std::vector<Output> outputs;
  std::vector<v1::ToolInvocation> invocations;
  std::vector<v1::DialogRequest> commands;
  std::vector<v1::VolumeCommand> volumes;
  void SubmitOutput(const std::string& t, const std::string& c, const std::string& o) override {
    outputs.push_back({t, c, o});
  }
  void Invoke(const v1::ToolInvocation& i) override { invocations.push_back(i); }
  void Command(const v1::DialogRequest& c) override { commands.push_back(c); }
  void Volume(const v1::VolumeCommand& v) override { volumes.push_back(v); }
  int prompts(const std::string& name) const {
    int n = 0;
    for (const auto& c : commands) n += c.has_play_prompt() && c.play_prompt().name() == name;
    return n;
  }
};

v1::ToolCall Call(const std::string& id, const std::string& name, const std::string& args = "{}") {
  v1::ToolCall c;
  c.set_call_id(id);
  c.set_name(name);
  c.set_arguments_json(args);
  return c;
}

v1::ToolOffer Offer(const std::string& provider, const std::string& tool, uint32_t ttl_ms = 3000,
                    uint32_t timeout_ms = 0) {
  v1::ToolOffer o;
  o.set_provider(provider);
  o.set_ttl_ms(ttl_ms);
  auto* t = o.add_tools();
  t->set_name(tool);
  t->set_parameters_json(R"({"type":"object"})");
  t->set_timeout_ms(timeout_ms);
  return o;
}

class RegistryTest : public ::testing::Test {
 protected:
  void Make(RegistryOptions o = {}) {
    setenv("TZ", "UTC", 1);
    tzset();
    // 2026-12-03 19:20:05 UTC, a Thursday.
    reg = std::make_unique<ToolRegistry>(o, &rec, [] { return int64_t(1796325605); });
  }
  Recorder rec;
  std::unique_ptr<ToolRegistry> reg;
};

TEST_F(RegistryTest, TimeToolAnswersAtOnceWithTheDeviceClock) {
  Make();
  reg->OnToolCall(Call("c1", "get_current_time"), "chat1", 0);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(rec.outputs[0].turn, "chat1");
  EXPECT_EQ(rec.outputs[0].call, "c1");
  Json j = Json::parse(rec.outputs[0].output);
  EXPECT_EQ(j["date"], "2026-12-03");
  EXPECT_EQ(j["time"], "19:20:05");
  EXPECT_EQ(j["weekday"], "Thursday");
  EXPECT_EQ(j["utc_offset"], "+00:00");
  EXPECT_EQ(reg->pending(), 0u);
  EXPECT_EQ(rec.prompts("error"), 0);
}

TEST_F(RegistryTest, VolumeIsAnsweredWithThePlaybacksNewLevel) {
  Make();
  reg->OnToolCall(Call("v1", "volume_up"), "chat1", 0);
  ASSERT_EQ(rec.volumes.size(), 1u);
  EXPECT_EQ(rec.volumes[0].step_percent(), 10);
  EXPECT_EQ(rec.volumes[0].command_id(), "v1");
  EXPECT_TRUE(rec.outputs.empty()) << "answered only once the playback has the new level";
  v1::VolumeLevel other;  // a heartbeat's level is not the answer
  other.set_percent(70);
  reg->OnVolumeLevel(other);
  EXPECT_TRUE(rec.outputs.empty());
  v1::VolumeLevel l;
  l.set_percent(80);
  l.set_command_id("v1");
  reg->OnVolumeLevel(l);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(Json::parse(rec.outputs[0].output)["volume"], 80);

  reg->OnToolCall(Call("v2", "set_volume", R"({"level":"35"})"), "chat1", 0);
  ASSERT_EQ(rec.volumes.size(), 2u);
  EXPECT_EQ(rec.volumes[1].set_percent(), 35u);
  reg->OnToolCall(Call("v3", "volume_down", R"({"step":25})"), "chat1", 0);
  EXPECT_EQ(rec.volumes[2].step_percent(), -25);
}

TEST_F(RegistryTest, BadArgumentsGetAnErrorOutputTheAgentCanReadNotSilence) {
  Make();
  reg->OnToolCall(Call("v1", "set_volume", R"({"level":250})"), "chat1", 0);
  reg->OnToolCall(Call("m1", "set_mode", R"({"mode":"loud"})"), "chat1", 0);
  reg->OnToolCall(Call("x1", "get_current_time", "not json"), "chat1", 0);
  ASSERT_EQ(rec.outputs.size(), 3u);
  EXPECT_NE(Json::parse(rec.outputs[0].output)["error"].get<std::string>().find("0 to 100"), std::string::npos);
  EXPECT_NE(Json::parse(rec.outputs[1].output)["error"].get<std::string>().find("wake_word"), std::string::npos);
  EXPECT_TRUE(Json::parse(rec.outputs[2].output).contains("error"));
  EXPECT_TRUE(rec.volumes.empty());
  EXPECT_EQ(reg->counters().failed, 3u);
}

// Found by fuzz_tool_calls: a level of 1e40 was cast to int64 (undefined
// behaviour) instead of being refused like any other bad level.
TEST_F(RegistryTest, AHugeNumberIsABadArgumentNotAnOverflow) {
  Make();
  reg->OnToolCall(Call("v1", "set_volume", R"({"level":1e40})"), "chat1", 0);
  reg->OnToolCall(Call("v2", "volume_up", R"({"step":-1e300})"), "chat1", 0);
  ASSERT_EQ(rec.outputs.size(), 2u);
  EXPECT_TRUE(Json::parse(rec.outputs[0].output).contains("error")) << rec.outputs[0].output;
  EXPECT_TRUE(Json::parse(rec.outputs[1].output).contains("error")) << rec.outputs[1].output;
  EXPECT_TRUE(rec.volumes.empty());
}

TEST_F(RegistryTest, StopAnswersThenCancelsTheReply) {
  Make();
  reg->OnToolCall(Call("s1", "stop"), "chat9", 0);
  ASSERT_EQ(rec.outputs.size(), 1u);
  ASSERT_EQ(rec.commands.size(), 1u);
  ASSERT_TRUE(rec.commands[0].has_interrupt());
  EXPECT_EQ(rec.commands[0].interrupt().turn_id(), "chat9");
  EXPECT_EQ(rec.commands[0].interrupt().reason(), v1::Interrupt::USER_REQUEST);
}

TEST_F(RegistryTest, SetModeSwitchesTheDialog) {
  Make();
  reg->OnToolCall(Call("m1", "set_mode", R"({"mode":"push_to_talk"})"), "chat1", 0);
  ASSERT_EQ(rec.commands.size(), 1u);
  EXPECT_EQ(rec.commands[0].set_mode().mode(), v1::MODE_PUSH_TO_TALK);
  EXPECT_EQ(Json::parse(rec.outputs.at(0).output)["mode"], "push_to_talk");
}

TEST_F(RegistryTest, ConfigAnswerFillsArguments) {
  RegistryOptions o;
  o.answers = {{"get_weather", "sunny and 21 degrees in {location}, {days} days"}};
  Make(o);
  reg->OnToolCall(Call("w1", "get_weather", R"({"location":"Paris","days":2})"), "chat1", 0);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(rec.outputs[0].output, "sunny and 21 degrees in Paris, 2 days");
  EXPECT_EQ(FillTemplate(R"({"a":"{x}"} {missing})", R"({"x":"1"})"), R"({"a":"1"} {missing})");
}

TEST_F(RegistryTest, UnknownToolIsAnsweredAtOnceWithAnErrorAndTheFallback) {
  Make();
  reg->OnToolCall(Call("u1", "book_flight"), "chat1", 0);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_NE(rec.outputs[0].output.find("book_flight"), std::string::npos);
  EXPECT_EQ(rec.prompts("error"), 1);
  EXPECT_EQ(reg->counters().unknown, 1u);
}

TEST_F(RegistryTest, ProviderOnTheBusAnswersAndOnlyTheAskedProviderCounts) {
  Make();
  reg->OnOffer(Offer("weather-svc", "get_weather"), 0);
  reg->OnToolCall(Call("w1", "get_weather", R"({"location":"Paris"})"), "chat1", 10 * kMs);
  ASSERT_EQ(rec.invocations.size(), 1u);
  EXPECT_EQ(rec.invocations[0].provider(), "weather-svc");
  EXPECT_EQ(rec.invocations[0].arguments_json(), R"({"location":"Paris"})");
  EXPECT_EQ(rec.invocations[0].timeout_ms(), 8000u);
  v1::ToolAnswer impostor;
  impostor.set_call_id("w1");
  impostor.set_provider("someone-else");
  impostor.set_output("snow");
  reg->OnAnswer(impostor, 20 * kMs);
  EXPECT_TRUE(rec.outputs.empty());
  v1::ToolAnswer a;
  a.set_call_id("w1");
  a.set_provider("weather-svc");
  a.set_output("rain, 12 degrees");
  reg->OnAnswer(a, 30 * kMs);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(rec.outputs[0].output, "rain, 12 degrees");
  reg->OnAnswer(a, 40 * kMs);  // twice: not answered twice
  EXPECT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(reg->counters().late_answers, 2u);
}

TEST_F(RegistryTest, ProviderErrorIsPassedOnWithTheFallback) {
  Make();
  reg->OnOffer(Offer("p", "lookup"), 0);
  reg->OnToolCall(Call("l1", "lookup"), "chat1", 0);
  v1::ToolAnswer a;
  a.set_call_id("l1");
  a.set_provider("p");
  a.set_error("database offline");
  reg->OnAnswer(a, kMs);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(Json::parse(rec.outputs[0].output)["error"], "database offline");
  EXPECT_EQ(rec.prompts("error"), 1);
}

TEST_F(RegistryTest, UnansweredCallTimesOutWithAnErrorOutputAndTheFallback) {
  RegistryOptions o;
  o.timeout_ms = 3000;
  Make(o);
  reg->OnOffer(Offer("slow", "get_weather", 60000), 0);
  reg->OnToolCall(Call("w1", "get_weather"), "chat1", 1000 * kMs);
  ASSERT_TRUE(reg->NextDeadline());
  EXPECT_EQ(*reg->NextDeadline(), 4000 * kMs);
  reg->Tick(3999 * kMs);
  EXPECT_TRUE(rec.outputs.empty());
  reg->Tick(4000 * kMs);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_NE(Json::parse(rec.outputs[0].output)["error"].get<std::string>().find("did not answer in time"),
            std::string::npos);
  EXPECT_EQ(rec.prompts("error"), 1);
  EXPECT_EQ(reg->counters().timeouts, 1u);
  v1::ToolAnswer late;
  late.set_call_id("w1");
  late.set_provider("slow");
  late.set_output("too late");
  reg->OnAnswer(late, 5000 * kMs);
  EXPECT_EQ(rec.outputs.size(), 1u);
}

TEST_F(RegistryTest, ToolsOwnTimeoutAndAMissingPlaybackTimeOutToo) {
  RegistryOptions o;
  o.timeout_ms = 8000;
  Make(o);
  reg->OnOffer(Offer("quick", "ping", 60000, 500), 0);
  reg->OnToolCall(Call("p1", "ping"), "chat1", 0);
  reg->OnToolCall(Call("v1", "volume_up"), "chat1", 0);  // nobody answers with the level
  reg->Tick(500 * kMs);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(rec.outputs[0].call, "p1");
  reg->Tick(8000 * kMs);
  ASSERT_EQ(rec.outputs.size(), 2u);
  EXPECT_NE(rec.outputs[1].output.find("vb-playback"), std::string::npos);
}

TEST_F(RegistryTest, ExpiredOfferIsForgottenAndTheConfigAnswerServesAgain) {
  RegistryOptions o;
  o.answers = {{"get_weather", "demo weather"}};
  Make(o);
  reg->OnOffer(Offer("svc", "get_weather", 1000), 0);
  EXPECT_EQ(reg->Catalog().tools(0).provider(), "svc");
  reg->Tick(999 * kMs);
  EXPECT_EQ(reg->providers(), 1u);
  reg->Tick(1000 * kMs);
  EXPECT_EQ(reg->providers(), 0u);
  reg->OnToolCall(Call("w1", "get_weather"), "chat1", 1000 * kMs);
  EXPECT_TRUE(rec.invocations.empty());
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_EQ(rec.outputs[0].output, "demo weather");
}

TEST_F(RegistryTest, CancelledTurnDropsItsPendingCallsWithoutAFallback) {
  Make();
  reg->OnOffer(Offer("svc", "slow_tool", 60000), 0);
  reg->OnToolCall(Call("a", "slow_tool"), "chat1", 0);
  reg->OnTurnEnded("chat1", v1::TurnEnded::REQUIRES_ACTION);
  EXPECT_EQ(reg->pending(), 1u);
  reg->OnTurnEnded("chat1", v1::TurnEnded::CANCELLED);
  EXPECT_EQ(reg->pending(), 0u);
  reg->Tick(60000 * kMs);
  EXPECT_TRUE(rec.outputs.empty());
  EXPECT_EQ(rec.prompts("error"), 0);
  reg->OnToolCall(Call("a", "slow_tool"), "chat1", 0);  // the same call again: not run twice
  EXPECT_EQ(rec.invocations.size(), 1u);
}

TEST_F(RegistryTest, HostileOffersAreBoundedAndCounted) {
  Make();
  v1::ToolOffer nameless = Offer("", "x");
  reg->OnOffer(nameless, 0);
  for (int i = 0; i < 100; ++i) reg->OnOffer(Offer("p" + std::to_string(i), "t"), 0);
  EXPECT_EQ(reg->providers(), 64u);
  EXPECT_EQ(reg->counters().bad_offers, 1u + 36u);
  v1::ToolOffer withdraw;
  withdraw.set_provider("p0");
  reg->OnOffer(withdraw, 0);
  EXPECT_EQ(reg->providers(), 63u);
}

TEST_F(RegistryTest, CatalogListsBuiltinsWithSchemas) {
  Make();
  auto c = reg->Catalog();
  EXPECT_EQ(c.timeout_ms(), 8000u);
  std::vector<std::string> names;
  for (const auto& e : c.tools()) {
    names.push_back(e.spec().name());
    Json schema = Json::parse(e.spec().parameters_json(), nullptr, false);
    EXPECT_TRUE(schema.is_object() && schema["type"] == "object") << e.spec().name();
    EXPECT_EQ(e.provider(), "builtin");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"get_current_time", "set_volume", "volume_up", "volume_down", "stop",
                                             "set_mode"}));
}

// A gateway client's text chat calls a tool nobody serves: the agent gets the
// error output, but the device's speaker stays quiet (nobody there asked);
// the same failure in a voice turn plays the fallback prompt.
TEST_F(RegistryTest, ATextChatsFailedCallPlaysNoPromptAtTheDevice) {
  Make();
  v1::ToolCall quiet = Call("q1", "get_weather");
  quiet.set_text_chat(true);
  reg->OnToolCall(quiet, "chat-text", 0);
  ASSERT_EQ(rec.outputs.size(), 1u);
  EXPECT_NE(rec.outputs[0].output.find("no tool named"), std::string::npos);
  EXPECT_EQ(rec.prompts("error"), 0);
  reg->OnToolCall(Call("v1", "get_weather"), "chat-voice", 0);
  EXPECT_EQ(rec.prompts("error"), 1);
}

}  // namespace
}  // namespace vb::tools
