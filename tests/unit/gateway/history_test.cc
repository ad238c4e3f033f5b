// TurnHistory: the dashboard's bounded memory of ended turns.
#include "actors/gateway/turn_history.h"

#include <gtest/gtest.h>

#include <string>

namespace vb::gateway {
namespace {

Json Turn(const std::string& id, const std::string& answer = "ok") {
  return Json{
      {"turn_id", id}, {"question", "q " + id}, {"answer", answer}, {"outcome", "completed"}, {"tools", Json::array()}};
}

TEST(TurnHistory, KeepsTheLastNOldestFirst) {
  TurnHistory h({.max_turns = 3});
  for (int i = 1; i <= 5; ++i) h.Add(Turn("t" + std::to_string(i)));
  Json turns = h.Turns();
  ASSERT_EQ(turns.size(), 3u);
  EXPECT_EQ(turns[0]["turn_id"], "t3");
  EXPECT_EQ(turns[2]["turn_id"], "t5");
  EXPECT_EQ(h.last()["turn_id"], "t5");
  EXPECT_EQ(h.dropped(), 2u);
}

TEST(TurnHistory, ZeroKeepsNothing) {
  TurnHistory h({.max_turns = 0});
  h.Add(Turn("t1"));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_TRUE(h.Turns().empty());
}

TEST(TurnHistory, LongTextsAreCutOnACharacterBoundary) {
  TurnHistory h({.max_turns = 2, .max_text_bytes = 20});
  std::string chinese;
  for (int i = 0; i < 20; ++i) chinese += "天";  // 3 bytes each
  Json t = Turn("t1", chinese);
  t["question"] = std::string(500, 'x');
  t["tools"] = Json::array({Json{{"name", "f"}, {"args", std::string(100, 'a')}, {"result", "short"}}});
  h.Add(t);
  Json r = h.Turns()[0];
  std::string answer = r["answer"];
  EXPECT_LE(answer.size(), 20u);
  EXPECT_EQ(answer.substr(answer.size() - 3), "…");
  EXPECT_EQ(answer, "天天天天天…");  // 15 bytes of whole characters, then the mark
  EXPECT_LE(r["question"].get<std::string>().size(), 20u);
  EXPECT_LE(r["tools"][0]["args"].get<std::string>().size(), 20u);
  EXPECT_EQ(r["tools"][0]["result"], "short");
  EXPECT_TRUE(Json::accept(r.dump()));  // still valid UTF-8
}

TEST(TurnHistory, ToolCallsAreCapped) {
  TurnHistory h({.max_turns = 2, .max_text_bytes = 100, .max_tools = 2});
  Json t = Turn("t1");
  for (int i = 0; i < 5; ++i) t["tools"].push_back(Json{{"name", "f" + std::to_string(i)}});
  h.Add(t);
  Json r = h.Turns()[0];
  ASSERT_EQ(r["tools"].size(), 2u);
  EXPECT_EQ(r["tools"][0]["name"], "f0");
  EXPECT_EQ(r["tools"][1]["name"], "f1");
  EXPECT_EQ(r["tools_dropped"], 3);
}

}  // namespace
}  // namespace vb::gateway
