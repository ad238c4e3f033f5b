// vb-session-bench: the session's own latency, with real processes
// (vb-broker, vb-cozesim, vb-session) on this machine.
//
//   mic_to_wire: audio.clean published (Header.mono_ns) → its
//     input_audio_buffer.append written to the WebSocket. Measured inside
//     vb-session (it alone sees the write) and reported per heartbeat
//     interval; we print the median over intervals of each percentile.
//   wire_to_bus: a downlink frame read off the WebSocket → its session.audio
//     publish. vb-session stamps the receive time as Header.origin_ns, so
//     every packet gives one exact sample here (mono_ns − origin_ns).
//
// Mic audio streams at real time (20 ms frames) for --seconds per input
// codec while text turns keep downlink audio flowing. Prints one JSON object.
//
//   vb-session-bench [--bin DIR] [--seconds N]
#include <nlohmann/json.hpp>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <regex>

#include "bus/node.h"
#include "tests/support/process.h"

namespace vb {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(p / 100.0 * double(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double Median(std::vector<double> v) { return Pct(std::move(v), 50); }

struct Phase {
  std::vector<double> up_p50, up_p99;  // per heartbeat interval
  uint64_t up_count = 0;
  std::vector<double> down_us;  // per packet
  int turns = 0;
};

bool RunPhase(const std::string& bin, const std::string& codec, int seconds, Phase* out, std::string* error) {
  testing::TempDir dir;
  std::string endpoint = "ipc://" + dir.File("bus");
  const std::string token = "bench-token";
  testing::Child sim, broker, session;
  std::string sim_log = dir.File("sim.log");
  if (!sim.Start({bin + "/vb-cozesim", "--port", "0", "--token", token}, sim_log) ||
      !testing::WaitForText(sim_log, "listening ", 20000ms)) {
    *error = "vb-cozesim did not start: " + testing::ReadFile(sim_log);
    return false;
  }
  std::smatch m;
  std::string text = testing::ReadFile(sim_log);
  if (!std::regex_search(text, m, std::regex("listening 127\\.0\\.0\\.1:(\\d+)"))) {
    *error = "no port in " + text;
    return false;
  }
  std::string port = m[1];
  dir.Write("vb.yaml", "bus:\n  endpoint: " + endpoint + "\nsession:\n  bot_id: \"1\"\n  api_base: http://127.0.0.1:" +
                           port + "\n  ws_base: ws://127.0.0.1:" + port + "\n  state_dir: " + dir.File("state") +
                           "\n  input_codec: " + codec + "\n");
  std::string cfg = dir.File("vb.yaml");
  if (!broker.Start({bin + "/vb-broker", "--config", cfg}, dir.File("broker.log")) ||
      !session.Start({bin + "/vb-session", "--config", cfg}, dir.File("session.log"), {"COZE_API_TOKEN=" + token})) {
    *error = "cannot start vb-broker / vb-session";
    return false;
  }

  zmq::context_t zctx(1);
  bus::Loop loop;
  bus::BusConfig bc;
  bc.endpoint = endpoint;
  bool connected = false, turn_running = false, measuring = false;
  {
    bus::Node node(zctx, loop, "bench", "local", bc);
    node.Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [&](const auto& r) {
      if (r.msg.has_status()) connected = r.msg.status().connected();
      if (r.msg.has_turn_ended()) {
        turn_running = false;
        if (measuring) ++out->turns;
      }
    });
    node.Subscribe<v1::EncodedAudio>(bus::topics::kSessionAudio, [&](const auto& r) {
      if (measuring && r.header.origin_ns() > 0)
        out->down_us.push_back(double(r.header.mono_ns() - r.header.origin_ns()) / 1000.0);
    });
    node.Subscribe<v1::Heartbeat>(bus::topics::kHeartbeat, [&](const auto& r) {
      if (!measuring || r.msg.actor() != "session") return;
      const auto& x = r.msg.extra();
      auto get = [&](const char* k) {
        auto it = x.find(k);
        return it == x.end() ? int64_t(0) : it->second;
      };
      if (get("mic_to_wire_count") < 10) return;
      out->up_p50.push_back(double(get("mic_to_wire_us_p50")));
      out->up_p99.push_back(double(get("mic_to_wire_us_p99")));
      out->up_count += uint64_t(get("mic_to_wire_count"));
    });
    auto commands = node.Advertise(bus::topics::kDialogRequest);
    auto clean = node.Advertise(bus::topics::kAudioClean);
    if (!node.Connect().ok()) {
      *error = "bench cannot join the bus";
      return false;
    }
    node.SetActive(true);
    if (!testing::RunUntil(
            loop, [&] { return connected; }, 15000ms)) {
      *error = "vb-session did not connect: " + testing::ReadFile(dir.File("session.log"));
      return false;
    }
    // Warm-up of one heartbeat interval, then measure.
    testing::RunUntil(
        loop, [] { return false; }, 1200ms);
    measuring = true;
    uint64_t index = 0;
    std::string pcm(640, '\0');
    for (size_t i = 0; i < pcm.size(); i += 2) pcm[i] = char((i * 37) & 0x3f);  // low-level noise, not speech
    auto timer = loop.AddTimer(20ms, [&] {
      v1::AudioFrame f;
      f.set_sample_rate(16000);
      f.set_channels(1);
      f.set_sample_index(index);
      f.set_pcm(pcm);
      index += 320;
      clean.Publish(f, {.origin_ns = bus::MonoNs()});
      if (!turn_running) {
        v1::DialogRequest c;
        c.mutable_text_input()->set_text("tell me a story");
        turn_running = commands.Publish(c);
      }
    });
    auto end = bus::Clock::now() + std::chrono::seconds(seconds);
    testing::RunUntil(
        loop, [&] { return bus::Clock::now() >= end; }, std::chrono::seconds(seconds + 1));
    loop.CancelTimer(timer);
    // One more heartbeat carries the last interval.
    size_t n = out->up_p50.size();
    testing::RunUntil(
        loop, [&] { return out->up_p50.size() > n; }, 2500ms);
  }
  session.Stop(SIGTERM, 3000ms);
  broker.Stop(SIGTERM, 3000ms);
  sim.Stop(SIGTERM, 3000ms);
  return true;
}

}  // namespace
}  // namespace vb

int main(int argc, char** argv) {
  using namespace vb;
  std::string bin = getenv("VB_BIN_DIR") ? getenv("VB_BIN_DIR") : "";
  if (bin.empty()) {
    std::string self = argv[0];
    bin = self.substr(0, self.rfind('/') == std::string::npos ? 0 : self.rfind('/'));
    if (bin.empty()) bin = ".";
  }
  int seconds = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--bin" && i + 1 < argc) bin = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) seconds = std::max(2, atoi(argv[++i]));
    else {
      std::cerr << "usage: vb-session-bench [--bin DIR] [--seconds N]\n";
      return 2;
    }
  }
  SetLogLevel(LogLevel::kWarn);
  Json result = {{"bench", "session"}, {"seconds_per_phase", seconds}, {"unit", "us"}};
  std::vector<double> all_down;
  for (std::string codec : {"pcm", "opus"}) {
    Phase p;
    std::string error;
    if (!RunPhase(bin, codec, seconds, &p, &error)) {
      std::cerr << "vb-session-bench: " << error << "\n";
      return 1;
    }
    result["mic_to_wire"][codec] = {
        {"p50", Median(p.up_p50)}, {"p99", Median(p.up_p99)}, {"intervals", p.up_p50.size()}, {"frames", p.up_count}};
    result["wire_to_bus"][codec + "_uplink_phase"] = {{"p50", Pct(p.down_us, 50)},
                                                      {"p99", Pct(p.down_us, 99)},
                                                      {"packets", p.down_us.size()},
                                                      {"turns_completed", p.turns}};
    all_down.insert(all_down.end(), p.down_us.begin(), p.down_us.end());
  }
  result["wire_to_bus"]["all"] = {{"p50", Pct(all_down, 50)}, {"p99", Pct(all_down, 99)}, {"packets", all_down.size()}};
  std::cout << result.dump(2) << std::endl;
  return 0;
}
