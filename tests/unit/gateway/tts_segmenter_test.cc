// TtsSegmenter: speakable units as tokens arrive, in English and Chinese.
#include "actors/gateway/tts_segmenter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vb::gateway {
namespace {

using Units = std::vector<std::string>;

// Feeds `deltas` one by one, then flushes; returns every unit in order.
Units Segment(const std::vector<std::string>& deltas, TtsSegmenter::Options o = {}) {
  TtsSegmenter s(o);
  Units out;
  for (const auto& d : deltas)
    for (auto& u : s.Push(d)) out.push_back(u);
  for (auto& u : s.Flush()) out.push_back(u);
  return out;
}

// Splits text into pieces of `n` bytes (which cuts UTF-8 sequences apart).
std::vector<std::string> Bytes(const std::string& text, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); i += n) out.push_back(text.substr(i, n));
  return out;
}

TEST(TtsSegmenter, EmitsASentenceBeforeTheReplyEnds) {
  TtsSegmenter t;
  EXPECT_TRUE(t.Push("Hello there.").empty());  // needs one character of look-ahead
  Units u = t.Push(" How are");
  ASSERT_EQ(u, Units{"Hello there."});
  u = t.Push(" you? I am");
  ASSERT_EQ(u, Units{"How are you?"});
  EXPECT_EQ(t.Flush(), Units{"I am"});
}

TEST(TtsSegmenter, KeepsDecimalsAndThousandsWhole) {
  EXPECT_EQ(Segment({"Pi is 3", ".", "14 and e is 2.718. Done"}), (Units{"Pi is 3.14 and e is 2.718.", "Done"}));
  EXPECT_EQ(Segment({"It costs 1,000,000 dollars, more or less."}),
            (Units{"It costs 1,000,000 dollars,", "more or less."}));
  EXPECT_EQ(Segment({"Version 2.0.1 is out. Get it"}), (Units{"Version 2.0.1 is out.", "Get it"}));
  EXPECT_EQ(Segment({"Visit example.com today. Bye"}), (Units{"Visit example.com today.", "Bye"}));
}

TEST(TtsSegmenter, KeepsAbbreviationsWhole) {
  EXPECT_EQ(Segment({"Dr. Smith met Mr. Jones at 5 p.m. yesterday. Then they left."}),
            (Units{"Dr. Smith met Mr. Jones at 5 p.m. yesterday.", "Then they left."}));
  EXPECT_EQ(Segment({"Bring fruit, e.g. apples or pears, i.e. anything sweet. Thanks"}),
            (Units{"Bring fruit,", "e.g. apples or pears,", "i.e. anything sweet.", "Thanks"}));
  EXPECT_EQ(Segment({"The U.S. Army and the U.K. Navy met. OK"}),
            (Units{"The U.S. Army and the U.K. Navy met.", "OK"}));
  EXPECT_EQ(Segment({"Written by J. K. Rowling. Read it"}), (Units{"Written by J. K. Rowling.", "Read it"}));
}

TEST(TtsSegmenter, NumberedListsAndNewlines) {
  EXPECT_EQ(Segment({"Steps:\n1. Open the door.\n2. Walk in."}), (Units{"Steps:", "1. Open the door.", "2. Walk in."}));
}

TEST(TtsSegmenter, ClauseMarksNeedAUnitWorthSpeaking) {
  // "Well," is too short to speak alone; the long clause is cut at its comma.
  EXPECT_EQ(Segment({"Well, that depends on the weather tomorrow, and on you."}),
            (Units{"Well, that depends on the weather tomorrow,", "and on you."}));
}

TEST(TtsSegmenter, ExclamationsQuestionsAndQuotes) {
  EXPECT_EQ(Segment({"Really?! Yes. He said \"stop.\" Then"}),
            (Units{"Really?!", "Yes.", "He said \"stop.\"", "Then"}));
  EXPECT_EQ(Segment({"Wait... what happened"}), (Units{"Wait...", "what happened"}));
}

TEST(TtsSegmenter, Chinese) {
  EXPECT_EQ(Segment({"你好。今天天气很好，我们出去走走吧！你觉得呢？好的；走吧"}),
            (Units{"你好。", "今天天气很好，", "我们出去走走吧！", "你觉得呢？", "好的；", "走吧"}));
  // Short clause stays with what follows; decimals inside Chinese stay whole.
  EXPECT_EQ(Segment({"你好，圆周率约等于3.14159。对"}), (Units{"你好，圆周率约等于3.14159。", "对"}));
  // Closing quotes stay with their sentence.
  EXPECT_EQ(Segment({"他说：“我明天来。”然后走了。"}), (Units{"他说：“我明天来。”", "然后走了。"}));
  // Mixed: an ASCII mark followed directly by Chinese ends the sentence.
  EXPECT_EQ(Segment({"Hello!你好。"}), (Units{"Hello!", "你好。"}));
}

TEST(TtsSegmenter, ChineseUnitsAreEmittedAsTheyArrive) {
  TtsSegmenter s;
  EXPECT_TRUE(s.Push("你好").empty());
  EXPECT_TRUE(s.Push("。").empty());  // a closing quote may still follow
  EXPECT_EQ(s.Push("我是"), Units{"你好。"});
}

TEST(TtsSegmenter, SameUnitsWhateverTheTokenBoundaries) {
  const std::string texts[] = {
      "Dr. Who paid $3.50 for tea, e.g. Earl Grey, at 4 p.m. on Jan. 3rd. Nice! Isn't it? Yes",
      "今天是2024年1月1日。价格是12.5元，对吗？当然！“好的。”再见",
      "Mixed 中文 and English. 这是第1.5版，it works! OK",
  };
  for (const auto& text : texts) {
    Units whole = Segment({text});
    for (size_t n : {1, 2, 3, 5, 7})
      EXPECT_EQ(Segment(Bytes(text, n)), whole) << "pieces of " << n << " bytes: " << text;
  }
}

TEST(TtsSegmenter, NeverCutsInsideAMultibyteCharacter) {
  std::string text = "中文句子。第二句！";
  Units u = Segment(Bytes(text, 1));
  ASSERT_EQ(u, (Units{"中文句子。", "第二句！"}));
}

TEST(TtsSegmenter, LongRunOnTextIsCutAtSpaces) {
  TtsSegmenter::Options o;
  o.max_unit_chars = 20;
  std::string text = "one two three four five six seven eight nine ten eleven 12345678901234567890123";
  Units u = Segment({text}, o);
  ASSERT_GE(u.size(), 3u);
  std::string joined;
  for (const auto& x : u) {
    EXPECT_LE(x.size(), 23u) << x;
    joined += (joined.empty() ? "" : " ") + x;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(u.back(), "12345678901234567890123");  // a number is never cut
}

TEST(TtsSegmenter, HugeTokensWithoutSpacesAreCutToBoundedUnits) {
  // e.g. a pasted blob: 400 deltas of 6 kB, no boundary anywhere.
  TtsSegmenter s;
  std::string block(6000, 'x');
  size_t emitted = 0;
  for (int i = 0; i < 400; ++i)
    for (auto& u : s.Push(block)) {
      EXPECT_LE(u.size(), 200u);
      emitted += u.size();
    }
  EXPECT_LE(s.pending().size(), 800u);  // bounded: at most 4x the unit limit waits
  for (auto& u : s.Flush()) emitted += u.size();
  EXPECT_EQ(emitted, 400u * 6000u);
}

TEST(TtsSegmenter, DropsUnspeakableUnitsAndResets) {
  EXPECT_EQ(Segment({"... \n\n**\nHi."}), (Units{"Hi."}));
  EXPECT_EQ(Segment({"\n\n**\nHi."}), (Units{"Hi."}));
  TtsSegmenter s;
  s.Push("Half a sent");
  s.Reset();
  EXPECT_EQ(s.Flush(), Units{});
}

}  // namespace
}  // namespace vb::gateway
