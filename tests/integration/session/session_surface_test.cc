// Issue 13, item 3: the whole Coze surface from the client, against the
// simulator. chat.update carries every configured field of the session
// (what the simulator received, from its connection log); the Opus uplink
// is an Ogg Opus stream the server decodes (a spoken question is
// recognised); `vb speak` makes the agent's voice say a text as a turn of
// its own; `vb new-conversation` clears what the agent remembers. Both
// commands answer like `vb say` (ack → exit code).
#include <dirent.h>

#include "tests/integration/session/session_fixture.h"

namespace vb::testing {
namespace {

class SessionSurfaceTest : public SessionProcessTest {
 protected:
  // The first chat.update the simulator received on any connection.
  Json ReceivedChatUpdate() {
    Json found;
    RunUntil(
        loop_,
        [&] {
          DIR* d = opendir(dir_.File("simlog").c_str());
          if (!d) return false;
          while (dirent* e = readdir(d)) {
            std::string name = e->d_name;
            if (name.rfind("conn-", 0) != 0) continue;
            std::istringstream in(ReadFile(dir_.File("simlog/" + name)));
            for (std::string line; std::getline(in, line);) {
              Json j = Json::parse(line, nullptr, false);
              // Lines are the events as received (possibly wrapped with a time).
              const Json& ev = j.is_object() && j.contains("event") && j["event"].is_object() ? j["event"] : j;
              if (ev.is_object() && ev.value("event_type", "") == "chat.update") {
                found = ev;
                break;
              }
            }
            if (!found.is_null()) break;
          }
          closedir(d);
          return !found.is_null();
        },
        10000ms);
    return found;
  }
  int Vb(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), Bin("vb"));
    args.push_back("--config");
    args.push_back(dir_.File("vb.yaml"));
    return RunCommand(args, out);
  }
  std::string Answer(const std::string& text, const std::string& req) {
    size_t from = events_.size();
    std::string chat = TextTurn(text, req);
    for (size_t i = from; i < events_.size(); ++i)
      if (events_[i].turn_id == chat && events_[i].event.has_agent_text() && events_[i].event.agent_text().final())
        return events_[i].event.agent_text().text();
    return "";
  }
};

TEST_F(SessionSurfaceTest, ChatUpdateCarriesEveryConfiguredFieldAndOpusGoesUpAsOgg) {
  StartAll(
      "  input_codec: opus\n"
      "  user_id: kitchen-user\n"
      "  meta_data: {room: kitchen, owner: ada}\n"
      "  custom_variables: {name: Ada}\n"
      "  parameters: {city: Paris}\n"
      "  extra_params: {latitude: \"48.8566\", longitude: \"2.3522\"}\n"
      "  asr_config: {hot_words: [voicebus], context: a kitchen assistant, user_language: en}\n"
      "  interrupt_config: {mode: keyword_prefix, keywords: [stop, wait]}\n"
      "  prologue_content: Hello from the kitchen\n");
  Json u = ReceivedChatUpdate();
  ASSERT_TRUE(u.is_object()) << "no chat.update in the simulator's log";
  const Json& d = u["data"];
  const Json& cc = d["chat_config"];
  EXPECT_EQ(cc["user_id"], "kitchen-user");
  EXPECT_EQ(cc["meta_data"], Json({{"room", "kitchen"}, {"owner", "ada"}}));
  EXPECT_EQ(cc["custom_variables"], Json({{"name", "Ada"}}));
  EXPECT_EQ(cc["parameters"], Json({{"city", "Paris"}}));
  EXPECT_EQ(cc["extra_params"], Json({{"latitude", "48.8566"}, {"longitude", "2.3522"}}));
  EXPECT_EQ(d["asr_config"]["hot_words"], Json({"voicebus"}));
  EXPECT_EQ(d["asr_config"]["context"], "a kitchen assistant");
  EXPECT_EQ(d["turn_detection"]["interrupt_config"],
            Json({{"mode", "keyword_prefix"}, {"keywords", {"stop", "wait"}}}));
  EXPECT_EQ(d["prologue_content"], "Hello from the kitchen");
  EXPECT_EQ(d["input_audio"]["format"], "ogg");
  EXPECT_EQ(d["input_audio"]["codec"], "opus");
  EXPECT_EQ(ReadFile(dir_.File("sim1.log")).find("input_audio"), std::string::npos) << "no complaint about the format";

  // The Ogg Opus uplink is decoded by the server: a spoken question is heard.
  audio::PcmBuffer pcm = Speech(dir_, "what time is it");
  ASSERT_FALSE(pcm.samples.empty());
  size_t from = events_.size(), pos = 0;
  auto timer = loop_.AddTimer(20ms, [&] {
    size_t n = pos < pcm.samples.size() ? std::min<size_t>(320, pcm.samples.size() - pos) : 0;
    PublishFrame(pcm.samples.data() + std::min(pos, pcm.samples.size()), n);
    pos += 320;
  });
  int done = Await(
      from, [](const Seen& s) { return s.event.has_user_transcript() && s.event.user_transcript().final(); }, 30000ms);
  loop_.CancelTimer(timer);
  ASSERT_GE(done, 0) << Dump(from);
  EXPECT_NE(events_[size_t(done)].event.user_transcript().text().find("time"), std::string::npos)
      << events_[size_t(done)].event.user_transcript().text();
}

TEST_F(SessionSurfaceTest, DeviceAndUserIdsHaveStableDefaults) {
  StartSim();
  std::string cfg = Config();
  // Without coze_device_id and user_id (Config() sets coze_device_id 42: drop it).
  std::string text = ReadFile(cfg);
  text.erase(text.find("  coze_device_id: \"42\"\n"), std::string("  coze_device_id: \"42\"\n").size());
  dir_.Write("vb.yaml", text);
  ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
  StartSession("session.log");
  Json first = ReceivedChatUpdate();
  const std::string user = first["data"]["chat_config"].value("user_id", "");
  ASSERT_EQ(user.rfind("vb-", 0), 0u) << first.dump();
  const std::string id = user.substr(3);
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(id.find_first_not_of("0123456789"), std::string::npos) << id;
  const std::string line = "device_id " + id + ", user_id " + user;
  EXPECT_TRUE(WaitForText(dir_.File("session.log"), line, 5000ms)) << ReadFile(dir_.File("session.log"));
  // The same after a restart of the session.
  session_.Stop(SIGTERM, 3000ms);
  StartSession("session2.log");
  EXPECT_TRUE(WaitForText(dir_.File("session2.log"), line, 5000ms)) << ReadFile(dir_.File("session2.log"));
}

TEST_F(SessionSurfaceTest, VbSpeakSaysTheTextAsATurnOfItsOwn) {
  StartAll();
  std::string out;
  ASSERT_EQ(RunCommand({Bin("vb"), "speak", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: vb speak TEXT"), std::string::npos) << out;
  size_t from = events_.size();
  EXPECT_EQ(Vb({"speak", "Dinner", "is", "ready"}, &out), 0) << out;
  int end = Await(from, [](const Seen& s) { return s.event.has_turn_ended(); });
  ASSERT_GE(end, 0) << Dump(from);
  const Seen& e = events_[size_t(end)];
  EXPECT_EQ(e.event.turn_ended().outcome(), v1::TurnEnded::COMPLETED) << Dump(from);
  EXPECT_EQ(e.turn_id.rfind("speak-", 0), 0u) << e.turn_id;
  bool started = false, caption = false, audio_end = false;
  for (size_t i = from; i < events_.size(); ++i) {
    const auto& s = events_[i];
    started |= s.event.has_turn_started() && s.turn_id == e.turn_id;
    caption |= s.event.has_audio_caption() && s.event.audio_caption().text().find("Dinner") != std::string::npos;
    audio_end |= s.event.has_agent_audio_end() && s.turn_id == e.turn_id && s.event.agent_audio_end().packets() > 0;
    EXPECT_FALSE(s.event.has_agent_text()) << "no reply from the agent";
  }
  EXPECT_TRUE(started) << Dump(from);
  EXPECT_TRUE(caption) << Dump(from);
  EXPECT_TRUE(audio_end) << Dump(from);
  const std::string turn = e.turn_id;  // events_ may grow while waiting
  EXPECT_FALSE(AwaitAudioOf(turn).empty()) << "no session.audio of the spoken turn";
  // Offline: refused with the reason, exit 1.
  sim_.Stop(SIGTERM, 3000ms);
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return !status_.connected(); }, 10000ms));
  EXPECT_EQ(Vb({"speak", "hello"}, &out), 1) << out;
  EXPECT_NE(out.find("offline"), std::string::npos) << out;
}

TEST_F(SessionSurfaceTest, VbNewConversationMakesTheAgentForgetWhatWasSaid) {
  StartAll();
  const std::string a1 = Answer("my name is Bob", "a1");
  EXPECT_NE(a1.find("my name is Bob"), std::string::npos) << a1;
  const std::string a2 = Answer("what did I say first", "a2");
  EXPECT_NE(a2.find("my name is Bob"), std::string::npos) << a2;
  std::string out;
  ASSERT_EQ(RunCommand({Bin("vb"), "new-conversation", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: vb new-conversation"), std::string::npos) << out;
  EXPECT_EQ(Vb({"new-conversation"}, &out), 0) << out;
  const std::string b1 = Answer("hello there", "b1");
  EXPECT_NE(b1.find("Hello"), std::string::npos) << b1;
  const std::string recall = Answer("what did I say first", "b2");
  EXPECT_EQ(recall.find("Bob"), std::string::npos) << recall;
  EXPECT_NE(recall.find("hello there"), std::string::npos) << recall;
}

}  // namespace
}  // namespace vb::testing
