// The fixture of vb-session's process tests: a real vb-broker, a real
// vb-cozesim and the vb-session binary, driven over the bus the way
// vb-control and the gateway drive it (dialog.order, dialog.request, audio.clean) and
// watched on session.event, session.audio and dialog.ack. Shared by
// session_process_test.cc and session_continuity_test.cc (two ctest entries,
// so each stays within its time limit).
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "actors/common/wav.h"
#include "bus/dialog_request.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr char kToken[] = "test-token-5ecr3t-do-not-print";

struct Seen {
  v1::SessionEvent event;
  std::string turn_id;
  int64_t sent_ns = 0;  // when the session published it
};

class SessionProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    bus::BusConfig c;
    c.endpoint = endpoint_;
    node_ = std::make_unique<bus::Node>(ctx_, loop_, "test", "local", c);
    node_->Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
      if (m.msg.has_status()) {
        status_ = m.msg.status();
        ++statuses_;
        return;
      }
      events_.push_back({m.msg, std::string(m.header.turn_id()), m.header.mono_ns()});
      std::string text;
      m.msg.SerializeToString(&text);
      bus_bytes_ += text;
    });
    node_->Subscribe<v1::EncodedAudio>(bus::topics::kSessionAudio, [this](const auto& m) {
      audio_.push_back({m.msg, std::string(m.header.turn_id())});
      audio_sent_ns_.push_back(m.header.mono_ns());
      audio_origin_ok_ = audio_origin_ok_ && m.header.origin_ns() > 0;
    });
    node_->Subscribe<v1::CommandAck>(bus::topics::kDialogAck, [this](const auto& m) { acks_.push_back(m.msg); });
    commands_ = node_->Advertise(bus::topics::kDialogOrder);
    requests_ = node_->Advertise(bus::topics::kDialogRequest);
    clean_ = node_->Advertise(bus::topics::kAudioClean);
    ASSERT_TRUE(node_->Connect().ok());
    node_->SetActive(true);
    mkdir(dir_.File("simlog").c_str(), 0700);
  }

  void TearDown() override {
    session_.Stop(SIGTERM, 3000ms);
    wakevad_.Stop(SIGTERM, 3000ms);
    sim_.Stop(SIGTERM, 3000ms);
    broker_.Stop(SIGTERM, 3000ms);
    // The token must never leave the process: not in logs, not on the bus.
    for (const char* log : {"session.log", "session2.log", "broker.log"})
      EXPECT_EQ(ReadFile(dir_.File(log)).find(kToken), std::string::npos) << log << " shows the token";
    EXPECT_EQ(bus_bytes_.find(kToken), std::string::npos) << "the token went out on the bus";
    node_.reset();
    ctx_.shutdown();
  }

  void StartSim(std::vector<std::string> extra = {}, int port = 0) {
    std::vector<std::string> argv = {Bin("vb-cozesim"), "--port",           std::to_string(port), "--token", kToken,
                                     "--log-dir",       dir_.File("simlog")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string log = dir_.File("sim" + std::to_string(++sims_) + ".log");
    ASSERT_TRUE(sim_.Start(argv, log));
    ASSERT_TRUE(WaitForText(log, "listening ", 20000ms)) << ReadFile(log);
    std::smatch m;
    std::string text = ReadFile(log);
    ASSERT_TRUE(std::regex_search(text, m, std::regex("listening 127\\.0\\.0\\.1:(\\d+)")));
    port_ = std::stoi(m[1]);
  }

  std::string Config(const std::string& extra = "") {
    std::string cfg = "bus:\n  endpoint: " + endpoint_ +
                      "\nsession:\n"
                      "  bot_id: \"7379462189365198898\"\n"
                      "  coze_device_id: \"42\"\n"
                      "  api_base: http://127.0.0.1:" +
                      std::to_string(port_) + "\n  ws_base: ws://127.0.0.1:" + std::to_string(port_) +
                      "\n  state_dir: " + dir_.File("state") +
                      "\n  reconnect_initial_ms: 200\n  reconnect_max_ms: 1000\n" + extra;
    dir_.Write("vb.yaml", cfg);
    return dir_.File("vb.yaml");
  }

  void StartAll(const std::string& extra = "", std::vector<std::string> sim_args = {}) {
    StartSim(sim_args);
    std::string cfg = Config(extra);
    ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", cfg}, dir_.File("broker.log")));
    StartSession("session.log");
  }

  void StartSession(const std::string& log) {
    ASSERT_TRUE(session_.Start({Bin("vb-session"), "--config", dir_.File("vb.yaml")}, dir_.File(log),
                               {std::string("COZE_API_TOKEN=") + kToken}));
    ASSERT_TRUE(AwaitConnected()) << ReadFile(dir_.File(log));
  }

  bool AwaitConnected(std::chrono::milliseconds t = 15000ms) {
    return RunUntil(
        loop_, [&] { return status_.connected(); }, t);
  }

  // As the others would: a request of the session's (text, tool output,
  // settings…) on dialog.request, the rest as vb-control's order.
  void Send(auto setter) {
    v1::DialogCommand c;
    setter(c);
    const v1::DialogRequest r = bus::AsRequest(c);
    if (bus::ForSession(r)) {
      ASSERT_TRUE(testing::AwaitSubscribers(loop_, *node_, {requests_.topic()}))
          << "no subscriber to " << requests_.topic();
      ASSERT_TRUE(requests_.Publish(r));
      return;
    }
    ASSERT_TRUE(testing::AwaitSubscribers(loop_, *node_, {commands_.topic()}))
        << "no subscriber to " << commands_.topic();
    ASSERT_TRUE(commands_.Publish(c));
  }
  void Say(const std::string& text, const std::string& request_id) {
    Send([&](auto& c) {
      c.mutable_text_input()->set_text(text);
      c.mutable_text_input()->set_request_id(request_id);
    });
  }

  // Index of the first event at or after `from` matching pred, or -1 after timeout.
  int Await(size_t from, const std::function<bool(const Seen&)>& pred, std::chrono::milliseconds t = 20000ms) {
    int found = -1;
    RunUntil(
        loop_,
        [&] {
          for (size_t i = from; i < events_.size(); ++i)
            if (pred(events_[i])) return (found = int(i)), true;
          return false;
        },
        t);
    return found;
  }
  static auto Ended(v1::TurnEnded::Outcome o, const std::string& turn = "") {
    return [o, turn](const Seen& s) {
      return s.event.has_turn_ended() && s.event.turn_ended().outcome() == o && (turn.empty() || s.turn_id == turn);
    };
  }
  std::string Dump(size_t from = 0) const {
    std::string out;
    for (size_t i = from; i < events_.size(); ++i)
      out += "[" + events_[i].turn_id + "] " + events_[i].event.ShortDebugString() + "\n";
    out += "--- session log:\n" + ReadFile(dir_.File("session.log"));
    // A restarted session's log and each simulator's (the tail), when there.
    std::vector<std::string> logs = {"session2.log"};
    for (int i = 1; i <= sims_; ++i) logs.push_back("sim" + std::to_string(i) + ".log");
    for (const auto& log : logs) {
      std::string text = ReadFile(dir_.File(log));
      if (text.size() > 4000) text = "…" + text.substr(text.size() - 4000);
      if (!text.empty()) out += "--- " + log + ":\n" + text;
    }
    return out;
  }
  // A text turn from request to COMPLETED; returns the chat id.
  std::string TextTurn(const std::string& text, const std::string& req) {
    size_t from = events_.size();
    Say(text, req);
    int st = Await(
        from, [&](const Seen& s) { return s.event.has_turn_started() && s.event.turn_started().request_id() == req; });
    EXPECT_GE(st, 0) << Dump(from);
    if (st < 0) return "";
    std::string chat = events_[size_t(st)].turn_id;
    EXPECT_GE(Await(from, Ended(v1::TurnEnded::COMPLETED, chat)), 0) << Dump(from);
    return chat;
  }
  std::vector<const v1::EncodedAudio*> AudioOf(const std::string& chat) const {
    std::vector<const v1::EncodedAudio*> r;
    for (const auto& [a, t] : audio_)
      if (t == chat) r.push_back(&a);
    return r;
  }
  // The turn's session.audio, waited for: it comes on the stream plane,
  // TurnEnded and AgentAudioEnd on the control plane, and the two planes are
  // not ordered. Waits for as many packets as AgentAudioEnd counted (at
  // least one when it was not seen).
  std::vector<const v1::EncodedAudio*> AwaitAudioOf(const std::string& chat, std::chrono::milliseconds t = 5000ms) {
    RunUntil(
        loop_,
        [&] {
          size_t want = 1;
          for (const auto& s : events_)
            if (s.turn_id == chat && s.event.has_agent_audio_end())
              want = std::max<size_t>(want, s.event.agent_audio_end().packets());
          return AudioOf(chat).size() >= want;
        },
        t);
    return AudioOf(chat);
  }
  // One 20 ms audio.clean frame of `n` ≤ 320 samples (zero-padded), as vb-afe publishes it
  // (on `to`, numbered by `*index`: by default this device's audio.clean).
  void PublishFrame(const int16_t* samples, size_t n, bus::Publisher<v1::AudioFrame>* to = nullptr,
                    uint64_t* index = nullptr) {
    if (!to) to = &clean_, index = &sample_index_;
    ASSERT_TRUE(testing::AwaitSubscribers(loop_, *node_, {to->topic()})) << "no subscriber to " << to->topic();
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    f.set_sample_index(*index);
    std::string bytes(640, '\0');
    if (n) memcpy(bytes.data(), samples, std::min<size_t>(n, 320) * 2);
    f.set_pcm(bytes);
    *index += 320;
    to->Publish(f, {.origin_ns = bus::MonoNs()});
  }
  // Everything sent to vb-session before it has been handled: a request
  // answered (orders and requests reach it through the broker in the order
  // they were sent). A SessionConfig that changes nothing.
  void Barrier() {
    const std::string id = "barrier-" + std::to_string(++barriers_);
    Send([&](v1::DialogCommand& c) {
      c.set_command_id(id);
      c.mutable_session_config();
    });
    ASSERT_TRUE(RunUntil(
        loop_,
        [&] { return std::any_of(acks_.begin(), acks_.end(), [&](const auto& a) { return a.command_id() == id; }); },
        5000ms))
        << "no answer to " << id;
  }
  // The audio.clean frames the simulator's newest connection received, in
  // order, each read as the one byte value its test frame repeats
  // (PublishFrame of 320 samples of value * 0x0101).
  std::vector<int> ServerHeardFrames() {
    std::vector<int> seen;
    std::string newest;
    for (const auto& e : std::filesystem::directory_iterator(dir_.File("simlog"))) {
      std::string text = ReadFile(e.path());
      if (text.find("input_audio_buffer.append") == std::string::npos) continue;
      newest = text;
    }
    std::istringstream in(newest);
    std::string line;
    while (std::getline(in, line)) {
      auto j = Json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      const Json* ev = j.contains("event") ? &j["event"] : &j;
      if (!ev->is_object() || ev->value("event_type", "") != "input_audio_buffer.append") continue;
      std::string delta = (*ev)["data"].value("delta", "");
      // 640 bytes of one value: base64 of a repeated byte starts with that pattern.
      static const std::string kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      if (delta.size() < 2) continue;
      seen.push_back(int(kB64.find(delta[0])) << 2 | int(kB64.find(delta[1])) >> 4);
    }
    return seen;
  }
  std::string StateFileConversation() const {
    auto j = Json::parse(ReadFile(dir_.File("state/session-local.json")), nullptr, false);
    return j.is_object() ? j.value("conversation_id", "") : "";
  }

  TempDir dir_;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  bus::Loop loop_;
  std::unique_ptr<bus::Node> node_;
  bus::Publisher<v1::DialogCommand> commands_;  // as vb-control (dialog.order)
  bus::Publisher<v1::DialogRequest> requests_;  // as the gateway or `vb` (dialog.request)
  bus::Publisher<v1::AudioFrame> clean_;
  Child broker_, sim_, session_, wakevad_;
  std::vector<v1::CommandAck> acks_;
  int port_ = 0;
  int sims_ = 0;
  int barriers_ = 0;
  v1::SessionStatus status_;
  int statuses_ = 0;
  std::vector<Seen> events_;
  std::vector<std::pair<v1::EncodedAudio, std::string>> audio_;
  std::vector<int64_t> audio_sent_ns_;  // when the session published each
  bool audio_origin_ok_ = true;
  uint64_t sample_index_ = 0;
  std::string bus_bytes_;
};

// Speech made now with espeak-ng (16 kHz mono, 0.3 s lead-in, 1.5 s of
// silence after), for publishing as audio.clean.
[[maybe_unused]] audio::PcmBuffer Speech(const TempDir& dir, const std::string& sentence) {
  std::string raw = dir.File("q.wav"), wav = dir.File("q16.wav");
  std::string out;
  audio::PcmBuffer pcm;
  EXPECT_EQ(RunCommand({"/usr/bin/espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, sentence}, &out), 0) << out;
  EXPECT_EQ(RunCommand({"/usr/bin/sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav, "pad", "0.3", "1.5"}, &out), 0)
      << out;
  EXPECT_TRUE(audio::ReadWav(wav, &pcm).ok());
  return pcm;
}

}  // namespace
}  // namespace vb::testing
