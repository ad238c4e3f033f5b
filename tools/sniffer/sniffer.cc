// Bus sniffer core (see sniffer.h).
#include "tools/sniffer/sniffer.h"

#include <google/protobuf/descriptor.h>

namespace vb::sniff {
namespace pb = google::protobuf;

void Sniffer::Start(bool decode, MessageFn fn) {
  decode_ = decode;
  fn_ = std::move(fn);
  for (auto plane : {bus::Plane::kStream, bus::Plane::kControl})
    node_.SubscribeRaw(plane, prefix_, [this](const bus::RawMessage& m) { OnRaw(m); });
}

void Sniffer::ResetWindow() {
  for (auto& [t, s] : topics_) {
    s.window_messages = s.window_bytes = 0;
    s.since_origin_us.Reset();
    s.since_publish_us.Reset();
  }
}

const pb::Message* Sniffer::Decode(const std::string& type, std::string_view payload) {
  auto it = scratch_.find(type);
  if (it == scratch_.end()) {
    const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
    std::unique_ptr<pb::Message> m;
    if (d) m.reset(pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
    it = scratch_.emplace(type, std::move(m)).first;
  }
  if (!it->second) return nullptr;
  it->second->Clear();
  if (!it->second->ParseFromArray(payload.data(), int(payload.size()))) return nullptr;
  return it->second.get();
}

void Sniffer::OnRaw(const bus::RawMessage& m) {
  int64_t now = bus::MonoNs();
  if (!last_stats_ || m.topic != last_topic_) {
    last_topic_.assign(m.topic);
    last_stats_ = &topics_[last_topic_];
  }
  TopicStats& s = *last_stats_;
  if (m.frames != 3 || !m.header) {
    ++s.malformed;
    ++malformed_;
    return;
  }
  const v1::Header& h = *m.header;
  if (s.type != h.type()) s.type = h.type();
  if (s.publishers.size() < 64 && !s.publishers.count(h.source())) s.publishers.insert(h.source());
  ++s.messages;
  ++s.window_messages;
  s.bytes += m.payload.size();
  s.window_bytes += m.payload.size();
  seq_.Observe(h.source(), m.topic, h.seq());
  if (h.origin_ns() > 0) s.since_origin_us.Add(double(now - h.origin_ns()) / 1000.0);
  if (h.mono_ns() > 0) s.since_publish_us.Add(double(now - h.mono_ns()) / 1000.0);
  if (fn_) fn_(m.topic, h, decode_ ? Decode(h.type(), m.payload) : nullptr, m.payload.size());
}

}  // namespace vb::sniff
