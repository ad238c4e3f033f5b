// `vb sniff trace` (issue 14 item 4) on a real dialog: `vb demo` with the
// Coze simulator says "What time is it?" while the bus is recorded and traced
// live. The recording's trace has every stage of the voice turn, in the order
// a person lives them, and a plausible response time (speech end -> first
// reply sample at the speaker); the live trace says the same.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace vb::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// The turns of `text` (one JSON object per line), those that parse.
std::vector<json> Turns(const std::string& text) {
  std::vector<json> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(at, nl - at);
    at = nl + 1;
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("stages")) out.push_back(j);
  }
  return out;
}

TEST(TraceProcessTest, DemoTurnHasEveryStageInOrderAndAPlausibleResponseTime) {
  TempDir dir;
  std::string run = dir.File("run");
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  const std::string endpoint = "ipc://" + run + "/bus";
  // The reply arrives as a burst (~130 stream messages within a few ms): with
  // the default stream_hwm (100) a sniffer on a loaded machine drops some of
  // it, and the turn's first audio with it. Listen with room for the burst.
  dir.Write("sniff.yaml", "bus:\n  endpoint: " + endpoint + "\n  stream_hwm: 10000\n");
  const std::string config = dir.File("sniff.yaml");
  Child recorder, live;
  ASSERT_TRUE(recorder.Start({Bin("vb-sniff"), "record", dir.File("dialog.mcap"), "--config", config, "--json"},
                             dir.File("record.log")));
  ASSERT_TRUE(live.Start({Bin("vb-sniff"), "trace", "--config", config, "--json"}, dir.File("live.log")));
  std::string out;
  std::string demo = SourceDir() + "/config/demo.yaml";
  ASSERT_EQ(
      RunCommand({Bin("vb"), "demo", "--config", demo, "--out", run, "--say", "What time is it?"}, &out, 150000ms), 0)
      << out;
  ASSERT_EQ(recorder.Stop(SIGINT, 10000ms), 0) << ReadFile(dir.File("record.log"));
  ASSERT_EQ(live.Stop(SIGINT, 10000ms), 0) << ReadFile(dir.File("live.log"));

  ASSERT_EQ(RunCommand({Bin("vb-sniff"), "trace", dir.File("dialog.mcap"), "--json"}, &out, 30000ms), 0) << out;
  std::vector<json> turns = Turns(out);
  ASSERT_EQ(turns.size(), 1u) << out;
  const json& t = turns[0];
  std::cout << "[ measured ] demo turn: " << t.dump() << "\n";
  EXPECT_EQ(t["outcome"], "completed") << t;
  const json& s = t["stages"];
  for (const char* stage :
       {"transcript", "turn_started", "first_text", "first_audio", "first_sample", "last_sample", "end"})
    ASSERT_TRUE(s.contains(stage)) << "missing " << stage << ": " << t;
  EXPECT_FALSE(s.contains("interrupted")) << t;
  auto at = [&](const char* stage) { return s[stage].get<double>(); };
  // Speech end: client VAD (vb-wakevad), or the service's VAD. On a loaded
  // machine vb-wakevad may start after the demo's speech has begun.
  ASSERT_TRUE(s.contains("speech_end") || s.contains("server_speech_end")) << t;
  const char* speech_end = s.contains("speech_end") ? "speech_end" : "server_speech_end";
  if (s.contains("speech_start")) {
    EXPECT_LT(at("speech_start"), at("speech_end"));
    // "What time is it?" is 0.9 s of voice in 1.3 s, after 1 s of silence.
    // vb-wakevad stamps SPEECH_START 40 ms into a voiced run and SPEECH_END
    // 500 ms (min_silence_ms) after its last voiced frame: the whole question
    // gives ~1.4 s; a vb-wakevad that joined late (an ASan build on a loaded
    // machine) hears only its end, down to 498 ms (seen in CI). Never less
    // than the silence wait, never more than the file.
    EXPECT_GT(at("speech_end") - at("speech_start"), 450) << t;
    EXPECT_LT(at("speech_end") - at("speech_start"), 2500) << t;
  } else {
    std::cout << "[ measured ] no client VAD speech in this run (vb-wakevad started late)\n";
  }
  // The order a person lives (a stage may share a millisecond with the last).
  EXPECT_LE(at(speech_end), at("transcript"));
  EXPECT_LE(at("transcript"), at("turn_started"));
  EXPECT_LE(at("turn_started"), at("first_text"));
  EXPECT_LE(at("turn_started"), at("first_audio"));
  // A listener on a loaded machine may still lose part of the burst at the
  // broker (its stream_hwm); the trace then says so instead of lying.
  const bool lost = t["audio_lost"].get<bool>();
  if (lost) std::cout << "[ measured ] the recording lost the reply's first packet; the trace says so\n";
  else EXPECT_LT(at("first_audio"), at("first_sample")) << "the reply is heard after it arrived";
  EXPECT_LT(at("first_sample"), at("last_sample"));
  EXPECT_LE(at("first_text"), at("end"));
  // The simulator answers at once; a loaded machine may add seconds, not more.
  ASSERT_TRUE(t["response_ms"].is_number()) << t;
  double response = t["response_ms"].get<double>();
  EXPECT_GT(response, 0) << t;
  EXPECT_LT(response, 10000) << t;
  EXPECT_NEAR(response, at("first_sample") - at(speech_end), 0.15) << t;  // each rounded to 0.1 ms
  // The reply ("It is HH:MM UTC.", ~2 s) was heard whole.
  EXPECT_GT(at("last_sample") - at("first_sample"), 500) << t;

  // Live, the same turn with the same publishers' stamps.
  std::vector<json> heard = Turns(ReadFile(dir.File("live.log")));
  ASSERT_EQ(heard.size(), 1u) << ReadFile(dir.File("live.log"));
  EXPECT_EQ(heard[0]["turn_id"], t["turn_id"]);
  if (!lost && !heard[0]["audio_lost"].get<bool>()) {
    EXPECT_EQ(heard[0]["response_ms"], t["response_ms"]) << heard[0] << "\n" << t;
    EXPECT_EQ(heard[0]["stages"], t["stages"]) << heard[0] << "\n" << t;
  }
}

}  // namespace
}  // namespace vb::testing
