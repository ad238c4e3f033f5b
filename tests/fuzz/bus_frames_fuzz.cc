// Fuzzes the bus receive path (bus/node.h): whatever frames a publisher on
// the bus may send — any frame count, topic, header and payload bytes —
// reach a real Node through real ZeroMQ sockets (inproc) and go through its
// checks (frame count, topic, header, type, size, payload parse) into typed
// and raw subscribers, exactly as in an actor. The input picks the plane, the
// topic (one the node subscribes to, so ZeroMQ does not filter it first),
// the frame count and the frame sizes. After each message a well-formed
// marker is sent; the loop runs until the marker arrives, so every fuzzed
// message has been judged before the next input. A message is either
// delivered or counted as malformed, never both, never lost.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bus/loop.h"
#include "bus/node.h"
#include "bus/topics.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using vb::bus::Plane;

struct Rig {
  zmq::context_t ctx;
  vb::bus::Loop loop;
  std::unique_ptr<vb::bus::Node> node;
  std::unique_ptr<zmq::socket_t> out[2];  // the broker's XPUB side, one per plane
  uint64_t delivered = 0;
  uint64_t markers = 0;

  Rig() {
    vb::bus::BusConfig cfg;
    cfg.endpoint = "inproc://fuzz";
    cfg.limits.max_payload = 64 << 10;
    for (int p = 0; p < 2; ++p) {
      out[p] = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::xpub);
      out[p]->set(zmq::sockopt::sndhwm, 0);
      out[p]->bind(p == int(Plane::kStream) ? "inproc://fuzz.stream.out" : "inproc://fuzz.control.out");
    }
    node = std::make_unique<vb::bus::Node>(ctx, loop, "fuzz", "dev", cfg);
    using vb::bus::Received;
    node->Subscribe<vb::v1::SessionEvent>(
        vb::bus::topics::kSessionEvent, [this](const Received<vb::v1::SessionEvent>& m) { Use(m.msg.ByteSizeLong()); },
        "*");
    node->Subscribe<vb::v1::DialogState>(vb::bus::topics::kDialogState, [this](const Received<vb::v1::DialogState>& m) {
      Use(m.header.turn_id().size());
    });
    node->Subscribe<vb::v1::AudioFrame>(
        vb::bus::topics::kAudioMic, [this](const Received<vb::v1::AudioFrame>& m) { Use(m.msg.pcm().size()); }, "*");
    for (Plane p : {Plane::kStream, Plane::kControl})
      node->SubscribeRaw(p, "fuzz.end/", [this](const vb::bus::RawMessage&) { ++markers; });
    if (!node->Connect().ok()) std::abort();
    // Wait until both planes carry the node's subscriptions (an XPUB drops
    // what nobody has subscribed to yet): read them off our XPUB sockets.
    for (int p = 0; p < 2; ++p) {
      int seen = 0;
      int want = p == int(Plane::kStream) ? 2 : 3;
      while (seen < want) {
        zmq::message_t sub;
        if (!out[p]->recv(sub)) std::abort();
        ++seen;
      }
    }
  }
  void Use(size_t n) { delivered += 1 + 0 * n; }

  void Send(Plane plane, const std::vector<std::string>& frames) {
    auto& s = *out[int(plane)];
    for (size_t i = 0; i < frames.size(); ++i)
      s.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
};

std::string Marker() {
  vb::v1::Header h;
  h.set_type("vb.v1.Heartbeat");
  return h.SerializeAsString();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Rig rig;
  static const char* kTopics[] = {"session.event/", "dialog.state/dev", "audio.mic/", "session.event/dev",
                                  "audio.mic/dev"};
  std::string_view in = vb::fuzz::AsView(data, size);
  uint8_t shape = vb::fuzz::TakeByte(&in);
  size_t topic_pick = shape % 5;
  Plane plane = (topic_pick == 2 || topic_pick == 4) ? Plane::kStream : Plane::kControl;
  size_t count = 1 + (shape >> 4) % 5;  // 1…5 frames
  std::vector<std::string> frames;
  for (size_t i = 0; i < count; ++i) {
    size_t n = i + 1 == count ? in.size() : std::min<size_t>(vb::fuzz::TakeByte(&in), in.size());
    std::string f(in.substr(0, n));
    in.remove_prefix(n);
    frames.push_back(i == 0 ? kTopics[topic_pick] + f : std::move(f));
  }

  const auto& c = rig.node->counters();
  uint64_t before = rig.delivered + c.malformed.total() + c.handler_errors;
  uint64_t in_before = c.msgs_in;
  uint64_t markers = rig.markers;
  rig.Send(plane, frames);
  rig.Send(plane, {"fuzz.end/dev", Marker(), ""});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rig.markers == markers) {
    if (std::chrono::steady_clock::now() > deadline) std::abort();  // lost or blocked
    rig.loop.RunOnce(std::chrono::milliseconds(100));
  }
  // Both messages were taken in (the marker is raw-only and also counted);
  // the fuzzed one was delivered (possibly more than once: a device-wide and
  // a device subscription), or rejected as malformed once.
  if (c.msgs_in - in_before != 2) std::abort();
  uint64_t after = rig.delivered + c.malformed.total() + c.handler_errors;
  if (after == before) {
    // Not judged at all: only a topic no subscription matches (the device
    // part differs, e.g. "dialog.state/devX"), which is not an error.
    if (frames.size() == 3 && frames[0].starts_with("dialog.state/dev") && frames[0] != "dialog.state/dev") return 0;
    std::abort();
  }
  return 0;
}
