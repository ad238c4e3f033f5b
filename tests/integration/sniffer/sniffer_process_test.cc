// vb-sniff as a user runs it (issue 14 items 1, 2, 6), with a real broker
// and real publishers over ipc:// in a private temp dir:
// - a whole dialog (`vb demo` with the simulator) recorded to MCAP is read
//   by the official @mcap/core reader, every message decoded by protobufjs
//   from the embedded schema, counts and times as the recorder reported;
// - a recorder killed with -9 loses at most its last chunk (≤ ~1 s), the
//   cut file is recovered and read by @mcap/core;
// - replay publishes into the live bus at the publishers' original pacing
//   (judged by the replayed stamps), with --rate, --device-map, --topics;
//   `vb sniff echo` sees it;
// - live commands that hear nothing say so, naming endpoint and config;
//   drops prints changes only; every command has --help.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "bus/node.h"
#include "tests/support/process.h"
#include "tools/sniffer/mcap_reader.h"
#include "tools/sniffer/recording.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// Waits (polling ≤ 50 ms apart, bounded) until `pred` holds.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  bus::Loop idle;  // only a timer: RunUntil wakes at least every 50 ms
  idle.AddTimer(50ms, [] {});
  return RunUntil(idle, pred, timeout);
}

// The last line of `text` that parses as a JSON object.
json LastJson(const std::string& text) {
  json out;
  size_t end = text.size();
  while (end > 0) {
    size_t begin = text.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line[0] == '{') {
      out = json::parse(line, nullptr, false);
      if (!out.is_discarded()) return out;
    }
    if (begin == 0) break;
    end = begin - 1;
  }
  return json();
}

json ReadWithMcapCore(const std::string& file) {
  std::string out;
  int rc = RunCommand({VB_NODE, SourceDir() + "/tests/node/mcap_read.js", file}, &out, 60000ms);
  EXPECT_EQ(rc, 0) << out;
  json j = LastJson(out);
  EXPECT_TRUE(j.is_object()) << out;
  return j;
}

// Publisher stamps (Header.mono_ns) and seqs of one topic in a recording.
struct Recorded {
  std::vector<int64_t> stamps;
  std::vector<uint64_t> seqs;
};
Recorded ReadTopic(const std::string& file, const std::string& topic) {
  Recorded r;
  sniff::McapReader reader;
  EXPECT_TRUE(reader.Open(file).ok()) << file;
  sniff::McapReadReport report;
  v1::Header h;
  reader.Read(
      [&](const sniff::McapMessage& m) {
        std::string_view header, payload;
        if (reader.channels().at(m.channel_id).topic == topic && sniff::DecodeRecorded(m.data, &header, &payload) &&
            h.ParseFromArray(header.data(), int(header.size()))) {
          r.stamps.push_back(h.mono_ns());
          r.seqs.push_back(h.seq());
        }
        return true;
      },
      &report);
  return r;
}

class SnifferProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.File("bus");
    dir_.Write("vb.yaml", "bus:\n  endpoint: " + endpoint_ + "\nprobe:\n  publish_hz: 50\n");
    config_ = dir_.File("vb.yaml");
  }
  void TearDown() override {
    node_.reset();
    if (zctx_) zctx_->shutdown();
  }
  void StartBroker() {
    ASSERT_TRUE(broker_.Start({Bin("vb-broker"), "--config", config_}, dir_.File("broker.log")));
    // Bound: its ipc socket files exist (clients connecting earlier retry
    // only every 100 ms, and a subscription can miss a quick test).
    ASSERT_TRUE(WaitFor([&] { return access(dir_.File("bus.control.out").c_str(), F_OK) == 0; }, 10000ms))
        << ReadFile(dir_.File("broker.log"));
  }
  void StartProbe() { ASSERT_TRUE(probe_.Start({Bin("vb-probe"), "--config", config_}, dir_.File("probe.log"))); }
  // A test node on the bus (after the broker).
  void Connect() {
    zctx_ = std::make_unique<zmq::context_t>(1);
    bus::BusConfig bc;
    bc.endpoint = endpoint_;
    bc.stream_hwm = 10000;
    node_ = std::make_unique<bus::Node>(*zctx_, loop_, "test", "local", bc);
    node_->SetActive(true);
    ASSERT_TRUE(node_->Connect().ok());
  }
  // Runs the loop until the probe's audio.mic has been heard `n` times more.
  bool HearProbe(int n) {
    int heard = 0;
    node_->Subscribe<v1::AudioFrame>(bus::topics::kAudioMic, [&](const auto& m) {
      if (m.header.source() == "probe") {
        ++heard;
        last_probe_seq_ = m.header.seq();
      }
    });
    return RunUntil(
        loop_, [&] { return heard >= n; }, 20000ms);
  }

  TempDir dir_;
  std::string endpoint_, config_;
  Child broker_, probe_;
  bus::Loop loop_;
  std::unique_ptr<zmq::context_t> zctx_;
  std::unique_ptr<bus::Node> node_;
  uint64_t last_probe_seq_ = 0;
};

// Item 1: a whole running dialog, recorded, read by the official reader.
TEST_F(SnifferProcessTest, RecordedDialogIsReadByMcapCoreAndDecodedFromItsSchemas) {
  std::string run = dir_.File("run");
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  Child recorder;
  ASSERT_TRUE(recorder.Start(
      {Bin("vb"), "sniff", "record", dir_.File("dialog.mcap"), "--endpoint", "ipc://" + run + "/bus", "--json"},
      dir_.File("record.log")));
  std::string out;
  std::string demo = SourceDir() + "/config/demo.yaml";
  ASSERT_EQ(
      RunCommand({Bin("vb"), "demo", "--config", demo, "--out", run, "--say", "What time is it?"}, &out, 150000ms), 0)
      << out;
  ASSERT_EQ(recorder.Stop(SIGINT, 10000ms), 0) << ReadFile(dir_.File("record.log"));
  json rec = LastJson(ReadFile(dir_.File("record.log")));
  ASSERT_TRUE(rec.is_object()) << ReadFile(dir_.File("record.log"));
  ASSERT_GT(rec["messages"].get<uint64_t>(), 100u) << rec.dump();

  json read = ReadWithMcapCore(dir_.File("dialog.mcap"));
  ASSERT_TRUE(read.is_object());
  EXPECT_EQ(read["messages"], rec["messages"]) << read.dump() << "\n" << rec.dump();
  EXPECT_EQ(read["decoded"], rec["messages"]) << "every message decodes from its embedded schema";
  EXPECT_EQ(read["failed"], 0) << read["failures"].dump();
  EXPECT_EQ(read["statistics_messages"], std::to_string(rec["messages"].get<uint64_t>()));
  EXPECT_GE(read["chunks"].get<int>(), 2);
  // The same topics with the same counts as the recorder reported.
  ASSERT_EQ(read["topics"].size(), rec["topics"].size()) << read["topics"].dump() << "\n" << rec["topics"].dump();
  for (auto& [topic, n] : rec["topics"].items()) {
    ASSERT_TRUE(read["topics"].contains(topic)) << topic;
    const json& t = read["topics"][topic];
    EXPECT_EQ(t["messages"], n) << topic;
    EXPECT_TRUE(t["header_types_ok"].get<bool>()) << topic << ": the header's type is the channel's payload type";
    EXPECT_EQ(t["schema"].get<std::string>().rfind("vb.recorded.", 0), 0u) << topic;
  }
  // The dialog's stages are all in it: speech in, the agent's events and audio out.
  for (const char* topic : {"audio.mic/local", "audio.clean/local", "session.event/local", "session.audio/local",
                            "audio.out/local", "dialog.state/local", "actor.heartbeat/local"})
    EXPECT_TRUE(read["topics"].contains(topic)) << topic << " missing from " << read["topics"].dump();
  // Times: log times within the recording's span, as wall-clock ns of today.
  uint64_t start = std::stoull(read["start_ns"].get<std::string>()),
           end = std::stoull(read["end_ns"].get<std::string>());
  EXPECT_GT(end, start);
  EXPECT_LE(double(end - start) / 1e9, rec["seconds"].get<double>() + 0.5);
  EXPECT_GT(start, uint64_t(time(nullptr) - 3600) * 1'000'000'000ull);
  // info agrees.
  ASSERT_EQ(RunCommand({Bin("vb"), "sniff", "info", dir_.File("dialog.mcap"), "--json"}, &out), 0) << out;
  json info = LastJson(out);
  EXPECT_EQ(info["messages"], rec["messages"]) << out;
  EXPECT_EQ(info["complete"], true);
  ASSERT_EQ(RunCommand({Bin("vb"), "sniff", "info", dir_.File("dialog.mcap")}, &out), 0);
  EXPECT_NE(out.find("audio.mic/local"), std::string::npos) << out;
  EXPECT_NE(out.find("vb.v1.AudioFrame"), std::string::npos) << out;
  EXPECT_NE(out.find(" Hz"), std::string::npos) << out;
}

// Item 1: kill -9 loses at most the last chunk; recover, then @mcap/core reads it.
TEST_F(SnifferProcessTest, KilledRecorderLosesAtMostItsLastChunk) {
  StartBroker();
  StartProbe();
  Connect();
  std::string file = dir_.File("killed.mcap");
  Child recorder;
  ASSERT_TRUE(recorder.Start({Bin("vb-sniff"), "record", file, "audio.mic", "actor.", "--config", config_},
                             dir_.File("record.log")));
  // Recording: its first chunk reached the file.
  ASSERT_TRUE(WaitFor([&] { return FileSize(file) > 200; }, 15000ms)) << ReadFile(dir_.File("record.log"));
  ASSERT_TRUE(HearProbe(130));  // ~2.6 s more
  uint64_t published = last_probe_seq_;
  ASSERT_EQ(recorder.Stop(SIGKILL, 5000ms), -SIGKILL);

  std::string out;
  ASSERT_EQ(RunCommand({Bin("vb-sniff"), "info", file}, &out), 0) << out;  // the reader copes with the cut file
  EXPECT_NE(out.find("cut short"), std::string::npos) << out;
  ASSERT_EQ(RunCommand({Bin("vb-sniff"), "recover", file, dir_.File("fixed.mcap")}, &out), 0) << out;
  EXPECT_NE(out.find("recovered"), std::string::npos) << out;
  Recorded mic = ReadTopic(dir_.File("fixed.mcap"), "audio.mic/local");
  ASSERT_GT(mic.seqs.size(), 50u);
  int64_t lost = int64_t(published) - int64_t(mic.seqs.back());
  // 50 frames/s; a chunk is closed at least once a second.
  EXPECT_LE(lost, 60) << "frames published before the kill but not in the recording";
  std::cout << "[ measured ] kill -9: " << lost << " audio.mic frames (" << lost * 20 << " ms) lost of " << published
            << "\n";
  for (size_t i = 1; i < mic.seqs.size(); ++i)
    ASSERT_EQ(mic.seqs[i], mic.seqs[i - 1] + 1) << "gap inside the recording";

  json read = ReadWithMcapCore(dir_.File("fixed.mcap"));
  EXPECT_EQ(read["failed"], 0);
  EXPECT_EQ(read["topics"]["audio.mic/local"]["messages"].get<size_t>(), mic.seqs.size()) << read.dump();
  EXPECT_TRUE(read["topics"].contains("actor.heartbeat/local")) << read.dump();
  EXPECT_FALSE(read["topics"].contains("dialog.state/local")) << "recorded only the prefixes asked for";
}

// Item 2: replay at the original pacing into a live bus; echo sees it.
TEST_F(SnifferProcessTest, ReplayKeepsThePublishersPacingAndRestampsHeaders) {
  StartBroker();
  StartProbe();
  std::string file = dir_.File("probe.mcap");
  std::string out;
  ASSERT_EQ(RunCommand({Bin("vb-sniff"), "record", file, "--config", config_, "--duration", "3"}, &out, 30000ms), 0)
      << out;
  ASSERT_EQ(probe_.Stop(SIGTERM, 5000ms), 0);  // the live bus now carries only the replay
  Recorded original = ReadTopic(file, "audio.mic/local");
  ASSERT_GT(original.stamps.size(), 100u);
  double original_span = double(original.stamps.back() - original.stamps.front()) / 1e9;

  Connect();
  // First the echo (a live tool) is on the bus: its subscription is the only
  // one that can reach our kitchen publisher yet.
  Child echo;
  ASSERT_TRUE(echo.Start({Bin("vb"), "sniff", "echo", "audio", "--config", config_, "--json"}, dir_.File("echo.log")));
  auto marker = node_->Advertise(bus::topics::kAudioMic, "kitchen");
  ASSERT_TRUE(AwaitSubscribers(loop_, *node_, {"audio.mic/kitchen"})) << ReadFile(dir_.File("echo.log"));
  struct Got {
    std::vector<int64_t> stamps;
    std::vector<uint64_t> seqs;
    std::string device;
    bool origin_ok = true;
  } got;
  int heartbeats = 0, markers = 0;
  node_->Subscribe<v1::AudioFrame>(
      bus::topics::kAudioMic,
      [&](const auto& m) {
        if (m.header.source() == "test") {
          ++markers;
          return;
        }
        got.stamps.push_back(m.header.mono_ns());
        got.seqs.push_back(m.header.seq());
        got.device = m.header.device();
        got.origin_ok &= m.header.origin_ns() > 0 && m.header.origin_ns() <= m.header.mono_ns() &&
                         m.header.mono_ns() - m.header.origin_ns() < 1'000'000'000;
      },
      "kitchen");
  node_->Subscribe<v1::Heartbeat>(
      bus::topics::kHeartbeat, [&](const auto&) { ++heartbeats; }, "*");
  // Then our own subscription is live: we hear our own marker.
  ASSERT_TRUE(RunUntil(
      loop_,
      [&] {
        if (!markers) marker.Publish(v1::AudioFrame());
        return markers > 0;
      },
      10000ms));
  markers = 0;

  auto replay = [&](std::vector<std::string> extra) {
    got = Got{};
    std::vector<std::string> argv = {Bin("vb"), "sniff",        "replay",        file,       "--config",
                                     config_,   "--device-map", "local=kitchen", "--topics", "audio.mic"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Child r;
    EXPECT_TRUE(r.Start(argv, dir_.File("replay.log")));
    // Done when the replayer exits and what it sent has arrived.
    bool done = RunUntil(
        loop_, [&] { return !r.running() && got.stamps.size() >= original.stamps.size(); }, 30000ms);
    EXPECT_TRUE(done) << got.stamps.size() << " of " << original.stamps.size() << "\n"
                      << ReadFile(dir_.File("replay.log"));
  };

  replay({});
  ASSERT_EQ(got.stamps.size(), original.stamps.size());
  EXPECT_EQ(got.device, "kitchen");
  EXPECT_TRUE(got.origin_ok) << "origin_ns keeps its distance to the new publish stamp";
  for (size_t i = 0; i < got.seqs.size(); ++i) ASSERT_EQ(got.seqs[i], i + 1) << "seq restamped from 1";
  double span = double(got.stamps.back() - got.stamps.front()) / 1e9;
  EXPECT_NEAR(span, original_span, 0.05 * original_span + 0.06) << "original pacing";
  // Frame by frame: each replayed frame is sent when the recorded one was
  // published, relative to the first (median lateness or earliness). Both the
  // recording and the replay may run on a loaded machine: a few ms each; an
  // unpaced replay would be off by up to the whole span.
  std::vector<double> err;
  for (size_t i = 1; i < got.stamps.size(); ++i)
    err.push_back(std::abs(double(got.stamps[i] - got.stamps[0]) - double(original.stamps[i] - original.stamps[0])) /
                  1e6);
  std::nth_element(err.begin(), err.begin() + err.size() / 2, err.end());
  EXPECT_LT(err[err.size() / 2], 10.0) << "median pacing error, ms";
  std::cout << "[ measured ] replay span " << span << " s of " << original_span << " s recorded; median frame error "
            << err[err.size() / 2] << " ms\n";
  EXPECT_EQ(heartbeats, 0) << "--topics audio.mic replayed nothing else";
  // A live tool sees the replay as it would the real publisher: every
  // message, stamped with the replay's publish times.
  std::string last_seq = "\"seq\":" + std::to_string(got.seqs.size()) + ",";
  ASSERT_TRUE(WaitForText(echo.log_path(), last_seq, 10000ms)) << ReadFile(echo.log_path());
  std::string echo_log = ReadFile(echo.log_path());
  size_t lines = 0;  // the replayed ones (our markers are source "test")
  for (size_t p = echo_log.find("\"source\":\"probe\",\"device\":\"kitchen\""); p != std::string::npos;
       p = echo_log.find("\"source\":\"probe\",\"device\":\"kitchen\"", p + 1))
    ++lines;
  EXPECT_EQ(lines, got.seqs.size()) << echo_log.substr(0, 2000);

  replay({"--rate", "2"});
  ASSERT_EQ(got.stamps.size(), original.stamps.size());
  double fast_span = double(got.stamps.back() - got.stamps.front()) / 1e9;
  EXPECT_NEAR(fast_span, original_span / 2, 0.05 * original_span + 0.06) << "--rate 2";
  EXPECT_EQ(echo.Stop(SIGINT, 5000ms), 0);
}

// Item 6: silence is named; drops prints changes; every command has --help.
TEST_F(SnifferProcessTest, NothingHeardIsSaidWithEndpointAndConfig) {
  std::string out;  // no broker at all: the sniffer waits, and says so
  ASSERT_EQ(
      RunCommand({Bin("vb"), "sniff", "echo", "audio.mic", "--config", config_, "--duration", "4"}, &out, 20000ms), 0)
      << out;
  EXPECT_NE(out.find("no messages matching 'audio.mic' in 3.0 s on " + endpoint_ + " (config: " + config_ + ")"),
            std::string::npos)
      << out;
  ASSERT_EQ(RunCommand({Bin("vb-sniff"), "list", "--endpoint", endpoint_, "--duration", "0.5"}, &out, 20000ms), 0)
      << out;
  EXPECT_NE(out.find("no messages in 0.5 s on " + endpoint_ + " (config: none, built-in defaults, --endpoint)"),
            std::string::npos)
      << out;
  for (const char* cmd : {"list", "echo", "hz", "bw", "drops", "latency", "record", "replay", "info", "recover"}) {
    ASSERT_EQ(RunCommand({Bin("vb-sniff"), cmd, "--help"}, &out), 0) << cmd;
    EXPECT_EQ(out.rfind(std::string("vb-sniff ") + cmd, 0), 0u) << out;
  }
  EXPECT_EQ(RunCommand({Bin("vb-sniff"), "record"}, &out), 64) << "record needs a file";
  EXPECT_EQ(RunCommand({Bin("vb-sniff"), "replay", dir_.File("none.mcap"), "--config", config_}, &out), 1);
  EXPECT_NE(out.find("cannot read"), std::string::npos) << out;
  dir_.Write("text.mcap", "not a recording");
  EXPECT_EQ(RunCommand({Bin("vb-sniff"), "info", dir_.File("text.mcap")}, &out), 1);
  EXPECT_NE(out.find("not an MCAP file"), std::string::npos) << out;
}

TEST_F(SnifferProcessTest, DropsPrintsChangesNotTheTable) {
  StartBroker();
  Connect();
  Child drops;
  ASSERT_TRUE(drops.Start({Bin("vb-sniff"), "drops", "audio.mic", "--config", config_}, dir_.File("drops.log")));
  ASSERT_TRUE(RunUntil(
      loop_, [&] { return node_->HasSubscriber(bus::Plane::kStream, "audio.mic/local"); }, 10000ms));
  v1::Header h;
  h.set_type("vb.v1.AudioFrame");
  h.set_source("rogue");
  h.set_device("local");
  std::string payload = v1::AudioFrame().SerializeAsString();
  auto send = [&](uint64_t seq) {
    h.set_seq(seq);
    h.set_mono_ns(bus::MonoNs());
    node_->SendRaw(bus::Plane::kStream, {"audio.mic/local", h.SerializeAsString(), payload});
  };
  for (uint64_t s : {1, 2, 3}) send(s);
  ASSERT_TRUE(WaitForText(drops.log_path(), "new publisher", 10000ms)) << ReadFile(drops.log_path());
  for (uint64_t s : {7, 8}) send(s);  // 4, 5, 6 lost
  ASSERT_TRUE(WaitForText(drops.log_path(), "lost 3 (+3)", 10000ms)) << ReadFile(drops.log_path());
  // Nothing changes for the next seconds: nothing more is printed (the old
  // sniffer printed the whole table every second). Judged by the sniffer's
  // own later output: the final table at exit comes after exactly 2 lines.
  for (uint64_t s = 9; s < 60; ++s) send(s);
  bus::Loop wait;
  wait.AddOneShot(2500ms, [&] { wait.Stop(); });  // a span of time is what is tested here
  wait.Run();
  ASSERT_EQ(drops.Stop(SIGINT, 5000ms), 0);
  std::string log = ReadFile(drops.log_path());
  size_t lines = std::count(log.begin(), log.end(), '\n');
  EXPECT_EQ(lines, 2u + 2u) << "two change lines, then the final table (the row and malformed frames):\n" << log;
  EXPECT_NE(log.find("rogue  audio.mic/local  total: received 56  lost 3"), std::string::npos) << log;
}

}  // namespace
}  // namespace vb::testing
