// Fuzzes the simulator's WebSocket session (tools/coze-sim/session.h): every
// upstream text frame a client of `/v1/chat` may send. One input is one
// connection, one frame per line; between frames the session's pending
// synthesis and recognition jobs are answered (short silence, a fixed
// transcript) and everything due is pumped out on a simulated clock, so
// replies, cancels and tool calls run as they would on the server. Every
// event the session sends must be JSON.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz_input.h"
#include "tests/unit/coze_sim/test_util.h"
#include "tools/coze-sim/session.h"

namespace {

using vb::cozesim::testing::FakeServices;

const vb::cozesim::Agent& BuiltInAgent() {
  static const std::unique_ptr<vb::cozesim::Agent> agent = vb::cozesim::Agent::BuiltIn();
  return *agent;
}

void Answer(FakeServices& services, vb::cozesim::Session& s) {
  for (int guard = 0; guard < 64 && !services.jobs.empty(); ++guard) {
    FakeServices::Job job = std::move(services.jobs.front());
    services.jobs.pop_front();
    if (job.synth) {
      s.OnSynthesized(job.job, std::vector<int16_t>(1600, 0), 16000);
    } else {
      vb::cozesim::RecognitionResult r;
      r.text = "what is the weather";
      r.speech_seconds = 1;
      s.OnRecognized(job.job, r);
    }
  }
}

void Pump(vb::cozesim::Session& s, int64_t* now_ms) {
  for (int guard = 0; guard < 256; ++guard) {
    std::vector<std::string> batch;
    int64_t wait = s.Pump(*now_ms, 64, &batch);
    for (const auto& e : batch)
      if (nlohmann::json::parse(e, nullptr, false).is_discarded()) std::abort();
    if (batch.empty()) {
      if (wait <= 0) return;
      *now_ms += wait;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vb::cozesim::Store store;
  FakeServices services;
  vb::cozesim::Faults faults;
  vb::cozesim::Session session(1, vb::cozesim::SessionContext{&store, &BuiltInAgent(), &services, &faults},
                               "7000000000000000001", "FUZZLOGID");
  session.Start();
  int64_t now_ms = 0;
  for (std::string_view line : vb::fuzz::Lines(vb::fuzz::AsView(data, size), 64)) {
    session.OnText(line);
    Answer(services, session);
    Pump(session, &now_ms);
    if (session.overflow()) break;
  }
  return 0;
}
