// bus/dialog_request.h: each request kind has one taker, and a request read
// as a DialogCommand is the same command (the field numbers of
// DialogRequest and DialogCommand must stay twins: renumbering one fails here).
#include "bus/dialog_request.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace vb::bus {
namespace {

struct Kind {
  const char* name;
  std::function<void(v1::DialogRequest&)> fill;
  bool control;
};

const std::vector<Kind>& Kinds() {
  static const std::vector<Kind> kinds = {
      {"push_to_talk", [](auto& r) { r.mutable_push_to_talk()->set_down(true); }, true},
      {"interrupt",
       [](auto& r) {
         r.mutable_interrupt()->set_turn_id("t1");
         r.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
       },
       true},
      {"set_mode", [](auto& r) { r.mutable_set_mode()->set_mode(v1::MODE_WAKE_WORD); }, true},
      {"play_prompt", [](auto& r) { r.mutable_play_prompt()->set_name("wake"); }, true},
      {"text_input",
       [](auto& r) {
         r.mutable_text_input()->set_text("hello");
         r.mutable_text_input()->set_request_id("q1");
       },
       false},
      {"tool_output",
       [](auto& r) {
         r.mutable_tool_output()->set_turn_id("t1");
         r.mutable_tool_output()->set_call_id("c1");
         r.mutable_tool_output()->set_output("{}");
       },
       false},
      {"session_config", [](auto& r) { r.mutable_session_config()->set_voice_id("v7"); }, false},
      {"speak", [](auto& r) { r.mutable_speak()->set_text("dinner is ready"); }, false},
      {"new_conversation", [](auto& r) { r.mutable_new_conversation(); }, false},
  };
  return kinds;
}

TEST(DialogRequest, EveryKindHasOneTaker) {
  ASSERT_EQ(Kinds().size(), size_t(v1::DialogRequest::GetDescriptor()->FindOneofByName("request")->field_count()))
      << "a request kind was added: say who takes it (ForControl/ForSession) and add it here";
  for (const auto& k : Kinds()) {
    v1::DialogRequest r;
    k.fill(r);
    EXPECT_EQ(ForControl(r), k.control) << k.name;
    EXPECT_EQ(ForSession(r), !k.control) << k.name;
  }
  EXPECT_FALSE(ForControl(v1::DialogRequest{}));
  EXPECT_FALSE(ForSession(v1::DialogRequest{}));
}

TEST(DialogRequest, RequestsReadAsTheirCommandTwin) {
  for (const auto& k : Kinds()) {
    v1::DialogRequest r;
    k.fill(r);
    r.set_command_id("id-1");
    const v1::DialogCommand c = AsCommand(r);
    const auto* field = v1::DialogCommand::GetDescriptor()->FindFieldByName(k.name);
    ASSERT_NE(field, nullptr) << k.name;
    EXPECT_EQ(int(c.command_case()), field->number()) << k.name;
    EXPECT_EQ(c.command_id(), "id-1") << k.name;
    EXPECT_TRUE(c.GetReflection()->GetUnknownFields(c).empty()) << k.name;
    // And back: the same request.
    EXPECT_EQ(AsRequest(c).SerializeAsString(), r.SerializeAsString()) << k.name;
  }
  v1::DialogRequest r;
  r.mutable_text_input()->set_text("hello");
  EXPECT_EQ(AsCommand(r).text_input().text(), "hello");
}

TEST(DialogRequest, AnOrderIsNoRequest) {
  v1::DialogCommand c;
  c.mutable_start_listening();
  c.set_command_id("x");
  const v1::DialogRequest r = AsRequest(c);
  EXPECT_EQ(r.request_case(), v1::DialogRequest::REQUEST_NOT_SET);
  EXPECT_FALSE(ForControl(r) || ForSession(r));
}

}  // namespace
}  // namespace vb::bus
