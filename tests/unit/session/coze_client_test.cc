// CozeClient's ownership of what it was asked to open: a connection or a
// request asked for and never opened by the lws thread (the client stopped
// first: a SIGTERM right after vb-session connected) is freed with the
// client. The leak this guards against shows under the ASan+UBSan run (LSan).
#include <gtest/gtest.h>

#include <string>

#include "actors/session/coze_client.h"

namespace vb::session {
namespace {

ClientOptions Nowhere() {
  ClientOptions o;
  EXPECT_TRUE(Url::Parse("ws://127.0.0.1:9", &o.ws));
  EXPECT_TRUE(Url::Parse("http://127.0.0.1:9", &o.api));
  return o;
}

TEST(CozeClient, WhatWasAskedForButNeverOpenedIsFreedWithTheClient) {
  int reports = 0;
  CozeClient::Callbacks cb;
  cb.closed = [&](uint64_t, std::string, int) { ++reports; };
  {
    CozeClient client(
        Nowhere(), [](std::function<void()>) { return true; }, cb);
    EXPECT_EQ(client.Connect("/v1/chat?bot_id=1"), 1u);
    client.HttpPost("/v1/conversation/create", "{}", [&](int, std::string, std::string) { ++reports; });
    client.HttpPostStream("/v3/chat", "{}", nullptr, [&](int, std::string, std::string) { ++reports; });
  }  // never started: nothing was opened, nothing is reported
  EXPECT_EQ(reports, 0);
}

TEST(CozeClient, StoppedRightAfterAskingLeavesNothing) {
  CozeClient client(Nowhere(), [](std::function<void()>) { return true; }, {});
  std::string error;
  ASSERT_TRUE(client.Start(&error)) << error;
  client.Connect("/v1/chat?bot_id=1");
  client.HttpPost("/v1/conversation/create", "{}", [](int, std::string, std::string) {});
  client.Stop();  // the lws thread may or may not have opened them
  client.Stop();
}

}  // namespace
}  // namespace vb::session
