// Gateway benchmarks: TtsSegmenter throughput on English and Chinese replies
// streamed in 3-character deltas, and GatewayCore's cost per AgentText delta
// delivered to N authorized clients (stream_token + tts_ready_chunk; the
// transport only counts frames).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "actors/gateway/gateway_core.h"
#include "actors/gateway/tts_segmenter.h"

namespace vb::gateway {
namespace {

std::vector<std::string> Deltas(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    size_t n = 0, j = i;
    while (j < text.size() && n < 3) {
      auto c = static_cast<unsigned char>(text[j]);
      j += c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      ++n;
    }
    out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

void Segment(benchmark::State& state, const std::string& text) {
  auto deltas = Deltas(text);
  size_t units = 0;
  for (auto _ : state) {
    TtsSegmenter seg;
    for (const auto& d : deltas) units += seg.Push(d).size();
    units += seg.Flush().size();
  }
  benchmark::DoNotOptimize(units);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

void BM_SegmentEnglish(benchmark::State& state) {
  Segment(state, Repeat("Dr. Smith paid $3.50 for tea, e.g. Earl Grey, at 4 p.m. yesterday. Was it good? Yes! ", 20));
}
BENCHMARK(BM_SegmentEnglish);

void BM_SegmentChinese(benchmark::State& state) {
  Segment(state, Repeat("今天天气很好，我们出去走走吧！价格是12.5元，对吗？当然。", 20));
}
BENCHMARK(BM_SegmentChinese);

class CountingTransport : public ClientTransport {
 public:
  void Send(ConnId, Frame f) override {
    bytes += f->size();
    ++frames;
  }
  void Close(ConnId, std::string_view) override {}
  uint64_t frames = 0, bytes = 0;
};
class NullSink : public CommandSink {
 public:
  bool Publish(const v1::DialogRequest&) override { return true; }
};

void BM_CoreFanout(benchmark::State& state) {
  TokenSet tokens;
  tokens.AddList("t");
  AvatarLibrary lib("", "");
  CountingTransport transport;
  NullSink sink;
  GatewayCore core(CoreOptions{}, tokens, lib, transport, sink);
  int clients = int(state.range(0));
  for (int c = 1; c <= clients; ++c) {
    core.OnOpen(c, 0);
    core.OnText(c, R"({"type":"authorize","token":"t"})", 0);
  }
  v1::SessionEvent start;
  start.mutable_turn_started()->set_turn_id("turn");
  core.OnSessionEvent(start, "turn", 0);
  v1::SessionEvent delta;
  delta.mutable_agent_text()->set_message_id("m");
  const char* words[] = {"Hello ", "there, ", "how ", "are ", "you ", "today? "};
  size_t i = 0;
  transport.frames = 0;
  for (auto _ : state) {
    delta.mutable_agent_text()->set_text(words[i++ % 6]);
    core.OnSessionEvent(delta, "turn", 0);
  }
  state.SetItemsProcessed(int64_t(state.iterations()));  // tokens
  state.counters["frames_per_token"] = double(transport.frames) / double(state.iterations());
}
BENCHMARK(BM_CoreFanout)->Arg(1)->Arg(50);

}  // namespace
}  // namespace vb::gateway

BENCHMARK_MAIN();
