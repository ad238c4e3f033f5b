// Bus benchmarks (Google Benchmark; JSON with --benchmark_format=json).
//
// BM_Hop: one hop publisher → vb-broker → subscriber, for inproc, ipc and
// tcp, with a 640-byte audio frame and a 64-byte event. Every iteration
// sends one message through the runtime (Node: typed publish, header stamp,
// checks, dispatch) and one through bare libzmq PUB/SUB over the same
// broker (the floor), so both see the same machine noise; counters give
// p50/p99 of each and their ratios.
// BM_Throughput: audio frames per second through the broker, runtime and floor.
// BM_ProtoAudioFrame: protobuf encode + decode of a header and a 640-byte frame.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "bus/broker/broker.h"
#include "bus/node.h"

namespace vb::bus {
namespace {

const char* kTransport[] = {"inproc", "ipc", "tcp"};

std::string Endpoint(int transport) {
  static std::atomic<int> n{0};
  int id = n++;
  switch (transport) {
    case 0: return "inproc://bench" + std::to_string(id);
    case 1: return "ipc:///tmp/vb-bench-" + std::to_string(getpid()) + "-" + std::to_string(id);
    default: return "tcp://127.0.0.1:" + std::to_string(27000 + (getpid() % 500) * 8 + id * 4 % 8000);
  }
}

// A broker on its own thread, as vb-broker runs in its own process.
class BrokerThread {
 public:
  BrokerThread(zmq::context_t& ctx, const BusConfig& cfg) : broker_(ctx, loop_, cfg) {
    ok_ = broker_.Bind().ok();
    thread_ = std::thread([this] { loop_.Run(); });
  }
  ~BrokerThread() {
    loop_.Stop();
    thread_.join();
  }
  bool ok() const { return ok_; }

 private:
  Loop loop_;
  Broker broker_;
  bool ok_ = false;
  std::thread thread_;
};

BusConfig Config(int transport, int hwm = 1000) {
  BusConfig c;
  c.endpoint = Endpoint(transport);
  c.insecure = true;  // loopback only: measures the bare transport
  c.stream_hwm = hwm;
  c.control_hwm = hwm;
  return c;
}

void BM_Hop(benchmark::State& state) {
  const int transport = int(state.range(0));
  const bool audio = state.range(1) == 640;
  zmq::context_t ctx(1);
  BusConfig cfg = Config(transport);
  BrokerThread broker(ctx, cfg);
  if (!broker.ok()) return state.SkipWithError("broker bind failed");
  Endpoints ep;
  DeriveEndpoints(cfg.endpoint, &ep);
  Plane plane = audio ? Plane::kStream : Plane::kControl;

  // Runtime path: publisher and subscriber each on their own loop, as in
  // two actor processes (the subscriber's loop polls only its own sockets).
  Loop loop, pub_loop;
  Node pub(ctx, pub_loop, "bench-pub", "local", cfg), sub(ctx, loop, "bench-sub", "local", cfg);
  bool got = false;
  sub.Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto&) { got = true; });
  sub.Subscribe<v1::VadEvent>(topics::kVoiceVad, [&](const auto&) { got = true; });
  if (!pub.Connect().ok() || !sub.Connect().ok()) return state.SkipWithError("connect failed");
  pub.SetActive(true);
  auto mic = pub.Advertise(topics::kAudioMic);
  auto vad = pub.Advertise(topics::kVoiceVad);
  v1::AudioFrame frame;
  frame.set_sample_rate(16000);
  frame.set_channels(1);
  frame.mutable_pcm()->assign(640, '\x01');
  v1::VadEvent event;
  event.set_kind(v1::VadEvent::SPEECH_START);
  event.set_detector("energy-detector-x");
  event.set_sample_index(123456789);
  event.set_probability(0.9f);
  event.set_preroll_ms(300);
  auto publish = [&] {
    if (audio) mic.Publish(frame, {.origin_ns = 1});
    else vad.Publish(event, {.origin_ns = 1});
  };
  const std::string& topic = audio ? mic.topic() : vad.topic();
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!pub.HasSubscriber(audio ? Plane::kStream : Plane::kControl, topic) && Clock::now() < deadline) {
    pub_loop.RunOnce(std::chrono::milliseconds(5));
    loop.RunOnce(std::chrono::milliseconds(5));
  }

  // Floor path: the same three frames of the same sizes, bare PUB/SUB.
  zmq::socket_t fpub(ctx, zmq::socket_type::pub), fsub(ctx, zmq::socket_type::sub);
  fpub.connect(ep[int(plane)].in);
  fsub.connect(ep[int(plane)].out);
  fsub.set(zmq::sockopt::subscribe, "floor/");
  std::string ftopic = "floor/local";
  v1::Header h;
  h.set_type(audio ? "vb.v1.AudioFrame" : "vb.v1.VadEvent");
  h.set_seq(1);
  h.set_mono_ns(MonoNs());
  h.set_origin_ns(1);
  h.set_source("bench-pub");
  h.set_device("local");
  std::string fheader = h.SerializeAsString();
  std::string fpayload = audio ? frame.SerializeAsString() : event.SerializeAsString();
  auto floor_send = [&] {
    fpub.send(zmq::buffer(ftopic), zmq::send_flags::sndmore);
    fpub.send(zmq::buffer(fheader), zmq::send_flags::sndmore);
    fpub.send(zmq::buffer(fpayload), zmq::send_flags::none);
  };
  auto floor_recv = [&](zmq::recv_flags flags) {
    zmq::message_t m;
    if (!fsub.recv(m, flags)) return false;
    while (m.more()) (void)fsub.recv(m, zmq::recv_flags::none);
    return true;
  };
  // Warm up the floor path until its subscription has reached the publisher.
  bool floor_ready = false;
  for (int i = 0; i < 500 && !floor_ready; ++i) {
    floor_send();
    zmq::pollitem_t item{fsub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(10)) > 0) floor_ready = floor_recv(zmq::recv_flags::none);
  }
  while (floor_recv(zmq::recv_flags::dontwait)) {
  }
  if (!floor_ready) return state.SkipWithError("floor path never connected");

  Histogram runtime_us, floor_us;
  for (auto _ : state) {
    auto t0 = Clock::now();
    got = false;
    publish();
    while (!got) loop.RunOnce(std::chrono::milliseconds(100));
    auto t1 = Clock::now();
    floor_send();
    floor_recv(zmq::recv_flags::none);
    auto t2 = Clock::now();
    runtime_us.Add(std::chrono::duration<double, std::micro>(t1 - t0).count());
    floor_us.Add(std::chrono::duration<double, std::micro>(t2 - t1).count());
  }
  state.counters["runtime_p50_us"] = runtime_us.Percentile(50);
  state.counters["runtime_p99_us"] = runtime_us.Percentile(99);
  state.counters["floor_p50_us"] = floor_us.Percentile(50);
  state.counters["floor_p99_us"] = floor_us.Percentile(99);
  state.counters["ratio_p50"] = runtime_us.Percentile(50) / floor_us.Percentile(50);
  state.counters["ratio_p99"] = runtime_us.Percentile(99) / floor_us.Percentile(99);
  state.SetLabel(std::string(kTransport[transport]) + (audio ? "/audio640" : "/event64"));
}
BENCHMARK(BM_Hop)->ArgsProduct({{0, 1, 2}, {640, 64}})->Iterations(20000)->Unit(benchmark::kMicrosecond);

// Frames per second through the broker: a publisher thread sends as fast as
// the high-water mark allows; the subscriber counts what arrives.
void BM_Throughput(benchmark::State& state) {
  const int transport = int(state.range(0));
  const bool runtime = state.range(1) == 1;
  const int kFrames = 200000;
  zmq::context_t ctx(1);
  BusConfig cfg = Config(transport, 1000000);
  BrokerThread broker(ctx, cfg);
  Endpoints ep;
  DeriveEndpoints(cfg.endpoint, &ep);
  for (auto _ : state) {
    uint64_t received = 0;
    Loop loop;
    Node sub(ctx, loop, "tp-sub", "local", cfg);
    sub.Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto&) { ++received; });
    zmq::socket_t fsub(ctx, zmq::socket_type::sub);
    if (runtime) {
      (void)sub.Connect();
    } else {
      fsub.set(zmq::sockopt::rcvhwm, 1000000);
      fsub.connect(ep[0].out);
      fsub.set(zmq::sockopt::subscribe, "audio.mic/");
    }
    std::atomic<bool> go{false}, consumed{false};
    std::thread producer([&] {
      Loop ploop;
      Node pub(ctx, ploop, "tp-pub", "local", cfg);
      (void)pub.Connect();
      pub.SetActive(true);
      auto mic = pub.Advertise(topics::kAudioMic);
      while (!pub.HasSubscriber(mic)) ploop.RunOnce(std::chrono::milliseconds(10));
      go = true;
      v1::AudioFrame f;
      f.mutable_pcm()->assign(640, '\x01');
      if (runtime) {
        for (int i = 0; i < kFrames; ++i) mic.Publish(f);
        // Stay connected until the consumer is done: closing the socket
        // would discard what is still queued (linger).
        while (!consumed) ploop.RunOnce(std::chrono::milliseconds(20));
      } else {
        zmq::socket_t fpub(ctx, zmq::socket_type::pub);
        fpub.set(zmq::sockopt::sndhwm, 1000000);
        fpub.connect(ep[0].in);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // bench only: let the bare PUB connect
        std::string payload = f.SerializeAsString(), header(60, 'h');
        for (int i = 0; i < kFrames; ++i) {
          fpub.send(zmq::str_buffer("audio.mic/local"), zmq::send_flags::sndmore);
          fpub.send(zmq::buffer(header), zmq::send_flags::sndmore);
          fpub.send(zmq::buffer(payload), zmq::send_flags::none);
        }
      }
    });
    auto t0 = Clock::now();
    auto last = t0;
    uint64_t floor_received = 0;
    while (Clock::now() - last < std::chrono::milliseconds(2000)) {
      uint64_t before = runtime ? received : floor_received;
      if (runtime) {
        loop.RunOnce(std::chrono::milliseconds(50));
      } else {
        zmq::pollitem_t item{fsub.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) > 0) {
          zmq::message_t m;
          while (fsub.recv(m, zmq::recv_flags::dontwait)) {
            while (m.more()) (void)fsub.recv(m, zmq::recv_flags::none);
            ++floor_received;
          }
        }
      }
      uint64_t now_count = runtime ? received : floor_received;
      if (now_count != before) last = Clock::now();
      if (now_count == uint64_t(kFrames)) break;
      if (!go) last = Clock::now();
    }
    double secs = std::chrono::duration<double>(last - t0).count();
    uint64_t n = runtime ? received : floor_received;
    consumed = true;
    producer.join();
    state.counters["frames_per_s"] = double(n) / secs;
    state.counters["delivered_fraction"] = double(n) / kFrames;
    if (runtime) {
      state.counters["seq_lost"] = double(sub.seq_tracker().total_lost());
      state.counters["malformed"] = double(sub.counters().malformed.total());
      state.counters["msgs_in"] = double(sub.counters().msgs_in);
    }
  }
  state.SetLabel(std::string(kTransport[transport]) + (runtime ? "/runtime" : "/floor"));
}
BENCHMARK(BM_Throughput)->ArgsProduct({{0, 1, 2}, {1, 0}})->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProtoAudioFrame(benchmark::State& state) {
  v1::AudioFrame frame, out;
  frame.set_sample_rate(16000);
  frame.set_channels(1);
  frame.set_sample_index(123456);
  frame.mutable_pcm()->assign(640, '\x05');
  v1::Header h, hout;
  h.set_type("vb.v1.AudioFrame");
  h.set_seq(99);
  h.set_mono_ns(MonoNs());
  h.set_origin_ns(MonoNs());
  h.set_source("capture");
  h.set_device("local");
  std::string hb, fb;
  for (auto _ : state) {
    h.SerializeToString(&hb);
    frame.SerializeToString(&fb);
    hout.ParseFromString(hb);
    out.ParseFromString(fb);
    benchmark::DoNotOptimize(out.pcm().data());
  }
}
BENCHMARK(BM_ProtoAudioFrame)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace vb::bus

BENCHMARK_MAIN();
