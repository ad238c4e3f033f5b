// Agent: rules of the built-in script, recall, tool calls, script errors, and
// a grammar that covers the rule phrases.
#include "tools/coze-sim/agent.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vb::cozesim {
namespace {

TEST(Agent, BuiltInRules) {
  auto a = Agent::BuiltIn();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->Respond("Hello!", {}).rule, "greeting");
  EXPECT_EQ(a->Respond("what time is it", {}).rule, "time");
  auto t = a->Respond("What time is it?", {}).text;
  EXPECT_TRUE(t.rfind("It is ", 0) == 0 && t.find("UTC") != std::string::npos) << t;
  EXPECT_EQ(a->Respond("what is the date today", {}).rule, "date");
  EXPECT_EQ(a->Respond("purple elephants", {}).text, "You said: purple elephants.");
  EXPECT_EQ(a->Respond("what did I say before", {"one", "two"}).text, "Before that you said: two.");
  EXPECT_EQ(a->Respond("what did I say first", {"one", "two"}).text, "First you said: one.");
  EXPECT_GT(a->Respond("tell me a story", {}).text.size(), 500u);
}

TEST(Agent, WeatherIsAToolCall) {
  auto a = Agent::BuiltIn();
  auto r = a->Respond("What's the weather like in New York?", {});
  ASSERT_TRUE(r.tool);
  EXPECT_EQ(r.tool->name, "get_weather");
  EXPECT_EQ(nlohmann::json::parse(r.tool->arguments_json)["location"], "new york");
  EXPECT_EQ(a->ResumeAfterTool(*r.tool, "snow"), "The weather in new york: snow.");
}

TEST(Agent, ScriptErrorsNameTheLine) {
  std::string err;
  EXPECT_FALSE(Agent::FromYaml("rules:\n  - name: x\n    match: ['(']\n    reply: y\n", &err));
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_FALSE(Agent::FromYaml("rules:\n  - name: x\n    reply: y\n", &err));
  EXPECT_FALSE(Agent::FromYaml("[1, 2", &err));
  auto custom =
      Agent::FromYaml("fallback: 'Echo {text}'\nrules:\n  - name: ping\n    match: ['ping']\n    reply: pong\n", &err);
  ASSERT_TRUE(custom) << err;
  EXPECT_EQ(custom->Respond("ping", {}).text, "pong");
  EXPECT_EQ(custom->Respond("abc", {}).text, "Echo abc");
}

TEST(Agent, GrammarCoversRulePhrases) {
  std::string g = Agent::BuiltIn()->Grammar();
  EXPECT_NE(g.find("#JSGF"), std::string::npos);
  EXPECT_NE(g.find("what time is it"), std::string::npos);
  EXPECT_NE(g.find("<city> = paris"), std::string::npos);
}

}  // namespace
}  // namespace vb::cozesim
