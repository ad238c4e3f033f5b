// Issue 13, item 6 (client side): vb-session reaches the simulator the way
// it reaches the real Coze, over https:// and wss:// (the simulator behind
// TLS with a test CA made on the spot by tools/coze-sim/make-test-ca.sh).
// With the CA in session.ca_file a text turn works; an unknown CA and a
// wrong host name are refused, and the person reads which, with
// session.ca_file named — not OpenSSL's "error:00000001:lib(0)::reason(1)".
#include "tests/integration/session/session_fixture.h"

namespace vb::testing {
namespace {

class SessionTlsTest : public SessionProcessTest {
 protected:
  void SetUp() override {
    SessionProcessTest::SetUp();
    node_->Subscribe<v1::Heartbeat>(bus::topics::kHeartbeat, [this](const auto& m) {
      if (m.msg.kind() != "session") return;
      auto it = m.msg.extra().find("disconnects");
      if (it != m.msg.extra().end()) disconnects_ = it->second;
    });
  }
  int64_t disconnects_ = 0;
  // A CA (ca.pem) with a certificate for localhost/127.0.0.1 (server.pem)
  // and one for another name only (wrong.pem), plus an unrelated CA.
  void MakeCerts() {
    const std::string script = SourceDir() + "/tools/coze-sim/make-test-ca.sh";
    std::string out;
    ASSERT_EQ(RunCommand({"/bin/sh", script, dir_.File("ca")}, &out), 0) << out;
    ASSERT_EQ(
        RunCommand({"/usr/bin/env", "CERT_NAME=wrong", "/bin/sh", script, dir_.File("ca"), "DNS:wrong.example"}, &out),
        0)
        << out;
    ASSERT_EQ(RunCommand({"/bin/sh", script, dir_.File("other")}, &out), 0) << out;
  }
  void StartTls(const std::string& cert, const std::string& ca_file, const std::string& extra = "") {
    StartSim({"--tls-cert", dir_.File("ca/" + cert + ".pem"), "--tls-key", dir_.File("ca/" + cert + ".key")});
    std::string cfg = "bus:\n  endpoint: " + endpoint_ +
                      "\nsession:\n"
                      "  bot_id: \"7379462189365198898\"\n"
                      "  api_base: https://127.0.0.1:" +
                      std::to_string(port_) + "\n  ws_base: wss://127.0.0.1:" + std::to_string(port_) +
                      "\n  ca_file: " + ca_file + "\n  state_dir: " + dir_.File("state") +
                      "\n  reconnect_initial_ms: 200\n  reconnect_max_ms: 1000\n" + extra;
    dir_.Write("vb.yaml", cfg);
    ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", dir_.File("vb.yaml")}, dir_.File("broker.log")));
    ASSERT_TRUE(session_.Start({Bin("vb-session"), "--config", dir_.File("vb.yaml")}, dir_.File("session.log"),
                               {std::string("COZE_API_TOKEN=") + kToken}));
  }
  // The first SessionError the session publishes, within 15 s.
  const v1::SessionError* AwaitError() {
    int i = Await(
        0, [](const Seen& s) { return s.event.has_error(); }, 15000ms);
    return i < 0 ? nullptr : &events_[size_t(i)].event.error();
  }
};

TEST_F(SessionTlsTest, WithTheTestCaRestAndWebSocketWorkOverTls) {
  MakeCerts();
  StartTls("server", dir_.File("ca/ca.pem"));
  ASSERT_TRUE(AwaitConnected()) << ReadFile(dir_.File("session.log"));
  EXPECT_FALSE(StateFileConversation().empty()) << "the conversation was created over https";
  std::string chat = TextTurn("What time is it?", "tls-1");
  EXPECT_FALSE(chat.empty());
  EXPECT_FALSE(AwaitAudioOf(chat).empty()) << "the reply's audio came over wss";
}

TEST_F(SessionTlsTest, AnUnknownCaIsRefusedAndThePersonReadsItNamingCaFile) {
  MakeCerts();
  StartTls("server", dir_.File("other/ca.pem"));  // trusts another CA
  const v1::SessionError* e = AwaitError();
  ASSERT_NE(e, nullptr) << ReadFile(dir_.File("session.log"));
  EXPECT_EQ(e->code(), 495);
  EXPECT_TRUE(e->fatal());
  EXPECT_NE(e->message().find("unknown CA"), std::string::npos) << e->message();
  EXPECT_NE(e->message().find("session.ca_file"), std::string::npos) << e->message();
  EXPECT_NE(e->message().find(dir_.File("other/ca.pem")), std::string::npos) << e->message();
  EXPECT_NE(e->message().find("set session.ca_file to its PEM file"), std::string::npos) << e->message();
  EXPECT_EQ(e->message().find("lib(0)"), std::string::npos) << e->message();
  EXPECT_FALSE(status_.connected());
  EXPECT_TRUE(WaitForText(dir_.File("session.log"), "unknown CA", 5000ms)) << ReadFile(dir_.File("session.log"));
  printf("unknown CA: %s\n", e->message().c_str());
}

TEST_F(SessionTlsTest, AWrongHostNameIsRefusedAndSaidSoOnTheWebSocketToo) {
  MakeCerts();
  // A fixed conversation: the WebSocket is the first TLS connection.
  StartTls("wrong", dir_.File("ca/ca.pem"), "  conversation_id: \"7381473525342978089\"\n");
  const v1::SessionError* e = AwaitError();
  ASSERT_NE(e, nullptr) << ReadFile(dir_.File("session.log"));
  EXPECT_EQ(e->code(), 495);
  EXPECT_NE(e->message().find("not valid for the host name '127.0.0.1'"), std::string::npos) << e->message();
  EXPECT_NE(e->message().find("session.ca_file"), std::string::npos) << e->message();
  EXPECT_EQ(e->message().find("unknown CA"), std::string::npos) << e->message();
  // Said once, not at every retry (the session's heartbeat counts them).
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return disconnects_ >= 3; }, 15000ms))
      << disconnects_;
  int errors = 0;
  for (const auto& s : events_) errors += s.event.has_error();
  EXPECT_EQ(errors, 1);
  printf("wrong host: %s\n", e->message().c_str());
}

}  // namespace
}  // namespace vb::testing
