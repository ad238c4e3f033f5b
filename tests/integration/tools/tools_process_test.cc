// Issue 13, item 1: a tool call is always answered. Real vb-broker,
// vb-cozesim (a script whose rules call tools), vb-session and vb-tools
// processes; this test process plays vb-control's part (text turns on
// dialog.request) and, where a test says so, a tool provider: a process on
// the bus other than the registry, offering a tool and answering its calls.
#include "tests/integration/session/session_fixture.h"

namespace vb::testing {
namespace {

// The simulator's agent: each question calls one tool, and the reply quotes
// the tool's output.
constexpr char kScript[] = R"YAML(
prologue: "Tool test agent."
fallback: "You said: {text}."
rules:
  - name: time
    match: ['\bwhat time\b']
    tool: {name: get_current_time, resume: "Now: {output}."}
  - name: weather
    match: ['\bweather in ([a-z ]+)$']
    tool: {name: get_weather, arguments: {location: "{1}"}, resume: "Weather: {output}."}
  - name: slow
    match: ['\bslow\b']
    tool: {name: slow_lookup, resume: "Lookup: {output}."}
  - name: louder
    match: ['\blouder\b']
    tool: {name: volume_up, resume: "Volume: {output}."}
)YAML";

class ToolsProcessTest : public SessionProcessTest {
 protected:
  void SetUp() override {
    SessionProcessTest::SetUp();
    // What vb-tools asks for (dialog.request), read as the command it is.
    node_->Subscribe<v1::DialogRequest>(bus::topics::kDialogRequest, [this](const auto& m) {
      seen_commands_.push_back({bus::AsCommand(m.msg), m.header.mono_ns()});
    });
    node_->Subscribe<v1::ToolInvocation>(bus::topics::kToolInvoke, [this](const auto& m) {
      invocations_.push_back(m.msg);
      if (answer_) answer_(m.msg);
    });
    node_->Subscribe<v1::ToolCatalog>(bus::topics::kToolCatalog, [this](const auto& m) { catalog_ = m.msg; });
    offers_ = node_->Advertise(bus::topics::kToolOffer);
    answers_ = node_->Advertise(bus::topics::kToolAnswer);
  }
  void TearDown() override {
    tools_.Stop(SIGTERM, 3000ms);
    SessionProcessTest::TearDown();
  }

  void StartWithTools(const std::string& tools_yaml) {
    dir_.Write("script.yaml", kScript);
    // No downlink pacing: a reply that reads a tool's JSON aloud is long.
    StartAll("  limit_period_s: 0\ntools:\n" + tools_yaml, {"--script", dir_.File("script.yaml")});
    ASSERT_TRUE(tools_.Start({Bin("vb-tools"), "--config", dir_.File("vb.yaml")}, dir_.File("tools.log")));
    // The registry is up once it publishes its catalog.
    ASSERT_TRUE(RunUntil(
        loop_, [&] { return catalog_.tools_size() > 0; }, 10000ms))
        << ReadFile(dir_.File("tools.log"));
  }

  // Offers `tool` as provider "test-provider" until the registry lists it.
  void Provide(const std::string& tool) {
    v1::ToolOffer o;
    o.set_provider("test-provider");
    o.set_ttl_ms(60000);
    o.add_tools()->set_name(tool);
    ASSERT_TRUE(AwaitSubscribers(loop_, *node_, {offers_.topic()}));
    offers_.Publish(o);
    ASSERT_TRUE(RunUntil(
        loop_,
        [&] {
          for (const auto& e : catalog_.tools())
            if (e.spec().name() == tool && e.provider() == "test-provider") return true;
          return false;
        },
        5000ms))
        << catalog_.ShortDebugString();
  }

  // A text question through to its end; returns the index of its TurnEnded.
  struct Turn {
    std::string chat;
    const v1::ToolCall* call = nullptr;
    int64_t call_ns = 0;
    const v1::ToolResult* result = nullptr;
    std::string answer;  // the agent's final text
    v1::TurnEnded::Outcome outcome = v1::TurnEnded::OUTCOME_UNSPECIFIED;
  };
  Turn Ask(const std::string& text, const std::string& req) {
    Turn t;
    size_t from = events_.size();
    Say(text, req);
    int st = Await(
        from, [&](const Seen& s) { return s.event.has_turn_started() && s.event.turn_started().request_id() == req; });
    EXPECT_GE(st, 0) << Dump(from);
    if (st < 0) return t;
    t.chat = events_[size_t(st)].turn_id;
    int end = Await(from, [&](const Seen& s) {
      return s.turn_id == t.chat && s.event.has_turn_ended() &&
             s.event.turn_ended().outcome() != v1::TurnEnded::REQUIRES_ACTION;
    });
    EXPECT_GE(end, 0) << Dump(from) << "--- tools log:\n" << ReadFile(dir_.File("tools.log"));
    if (end < 0) return t;
    t.outcome = events_[size_t(end)].event.turn_ended().outcome();
    for (size_t i = from; i <= size_t(end); ++i) {
      const auto& e = events_[i];
      if (e.turn_id != t.chat) continue;
      if (e.event.has_tool_call() && !t.call) {
        t.call = &e.event.tool_call();
        t.call_ns = e.sent_ns;
      }
      if (e.event.has_tool_result() && !t.result) t.result = &e.event.tool_result();
      if (e.event.has_agent_text() && e.event.agent_text().final()) t.answer = e.event.agent_text().text();
    }
    return t;
  }
  int Prompts(const std::string& name) const {
    int n = 0;
    for (const auto& [c, ns] : seen_commands_) n += c.has_play_prompt() && c.play_prompt().name() == name;
    return n;
  }
  int64_t OutputSentNs(const std::string& call_id) const {
    for (const auto& [c, ns] : seen_commands_)
      if (c.has_tool_output() && c.tool_output().call_id() == call_id) return ns;
    return 0;
  }

  Child tools_;
  bus::Publisher<v1::ToolOffer> offers_;
  bus::Publisher<v1::ToolAnswer> answers_;
  v1::ToolCatalog catalog_;
  std::vector<v1::ToolInvocation> invocations_;
  std::function<void(const v1::ToolInvocation&)> answer_;
  std::vector<std::pair<v1::DialogCommand, int64_t>> seen_commands_;
};

TEST_F(ToolsProcessTest, BuiltinTimeToolAnswersAndTheAgentSpeaksItsOutput) {
  StartWithTools("  timeout_ms: 3000\n");
  Turn t = Ask("What time is it?", "time-1");
  ASSERT_NE(t.call, nullptr) << Dump();
  EXPECT_EQ(t.call->name(), "get_current_time");
  ASSERT_NE(t.result, nullptr) << Dump();
  auto out = Json::parse(t.result->output(), nullptr, false);
  ASSERT_TRUE(out.is_object()) << t.result->output();
  EXPECT_EQ(out["date"].get<std::string>().size(), 10u);
  EXPECT_EQ(t.outcome, v1::TurnEnded::COMPLETED);
  EXPECT_NE(t.answer.find(out["date"].get<std::string>()), std::string::npos) << t.answer;
  EXPECT_EQ(Prompts("error"), 0);
  printf("built-in: tool call → output %.1f ms (publishers' stamps); agent: %s\n",
         double(OutputSentNs(t.call->call_id()) - t.call_ns) / 1e6, t.answer.c_str());
}

TEST_F(ToolsProcessTest, ConfigAnswerServesTheDemoWeatherTool) {
  StartWithTools("  answers:\n    get_weather: \"sunny in {location}\"\n");
  Turn t = Ask("What is the weather in Paris", "w-1");
  ASSERT_NE(t.result, nullptr) << Dump();
  EXPECT_EQ(t.result->output(), "sunny in paris");
  EXPECT_EQ(t.outcome, v1::TurnEnded::COMPLETED);
  EXPECT_NE(t.answer.find("sunny in paris"), std::string::npos) << t.answer;
}

TEST_F(ToolsProcessTest, ToolOfferedByAnotherProcessOnTheBusAnswersAndWinsOverTheConfig) {
  StartWithTools("  answers:\n    get_weather: \"sunny in {location}\"\n");
  Provide("get_weather");
  answer_ = [this](const v1::ToolInvocation& inv) {
    auto args = Json::parse(inv.arguments_json(), nullptr, false);
    v1::ToolAnswer a;
    a.set_call_id(inv.call_id());
    a.set_provider("test-provider");
    a.set_output("rain over " + (args.is_object() ? args.value("location", "?") : std::string("?")));
    answers_.Publish(a);
  };
  Turn t = Ask("What is the weather in Tokyo", "w-2");
  ASSERT_EQ(invocations_.size(), 1u) << Dump();
  EXPECT_EQ(invocations_[0].provider(), "test-provider");
  EXPECT_EQ(invocations_[0].turn_id(), t.chat);
  ASSERT_NE(t.result, nullptr) << Dump();
  EXPECT_EQ(t.result->output(), "rain over tokyo");
  EXPECT_NE(t.answer.find("rain over tokyo"), std::string::npos) << t.answer;
  EXPECT_EQ(t.outcome, v1::TurnEnded::COMPLETED);
}

TEST_F(ToolsProcessTest, UnansweredCallTimesOutTheAgentGoesOnAndTheFallbackPlays) {
  StartWithTools("  timeout_ms: 1500\n");
  Provide("slow_lookup");  // offered, never answered
  Turn t = Ask("do the slow thing", "slow-1");
  ASSERT_NE(t.call, nullptr) << Dump();
  ASSERT_NE(t.result, nullptr) << Dump();
  auto out = Json::parse(t.result->output(), nullptr, false);
  ASSERT_TRUE(out.is_object() && out.contains("error")) << t.result->output();
  EXPECT_NE(out["error"].get<std::string>().find("slow_lookup"), std::string::npos);
  EXPECT_EQ(t.outcome, v1::TurnEnded::COMPLETED) << "the agent goes on after the error output";
  EXPECT_NE(t.answer.find("Lookup:"), std::string::npos) << t.answer;
  EXPECT_EQ(Prompts("error"), 1) << "the person hears the fallback";
  const double waited_ms = double(OutputSentNs(t.call->call_id()) - t.call_ns) / 1e6;
  EXPECT_GE(waited_ms, 1500.0);
  EXPECT_LT(waited_ms, 2500.0);
  printf("timeout 1500 ms: tool call → error output %.0f ms (publishers' stamps)\n", waited_ms);
}

TEST_F(ToolsProcessTest, VolumeToolWithoutAPlaybackTimesOutInsteadOfHanging) {
  StartWithTools("  timeout_ms: 1000\n");
  Turn t = Ask("louder please", "vol-1");
  ASSERT_NE(t.result, nullptr) << Dump();
  EXPECT_NE(t.result->output().find("vb-playback"), std::string::npos) << t.result->output();
  EXPECT_EQ(t.outcome, v1::TurnEnded::COMPLETED);
}

}  // namespace
}  // namespace vb::testing
