// Bus sniffer core (see sniffer.h).
#include "tools/sniffer/sniffer.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>

namespace vb::sniff {
namespace pb = google::protobuf;

Sniffer::Sniffer(bus::Node& node, std::vector<std::string> prefixes) : node_(node) {
  if (prefixes.empty()) prefixes.emplace_back();
  std::sort(prefixes.begin(), prefixes.end());  // a covering prefix sorts before what it covers
  for (auto& p : prefixes)
    if (prefixes_.empty() || p.rfind(prefixes_.back(), 0) != 0) prefixes_.push_back(std::move(p));
}

void Sniffer::Start(bool decode, MessageFn fn, RawFn raw) {
  decode_ = decode;
  fn_ = std::move(fn);
  raw_ = std::move(raw);
  for (auto plane : {bus::Plane::kStream, bus::Plane::kControl})
    for (const auto& prefix : prefixes_)
      node_.SubscribeRaw(plane, prefix, [this, plane](const bus::RawMessage& m) { OnRaw(plane, m); });
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
    // Unknown types are not remembered: a publisher inventing type names
    // must not grow this map (the known ones are a fixed set).
    if (!d) return nullptr;
    m.reset(pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
    it = scratch_.emplace(type, std::move(m)).first;
  }
  it->second->Clear();
  if (!it->second->ParseFromArray(payload.data(), int(payload.size()))) return nullptr;
  return it->second.get();
}

TopicStats& Sniffer::Stats(std::string_view topic) {
  // Bounded whatever publishers send: absurd topic names and topics beyond
  // kMaxTopics share one row each, so a flood of invented names cannot grow
  // the sniffer (each row holds two histograms).
  if (topic.size() > kMaxTopicBytes) return topics_[kOversizedTopicRow];
  auto it = topics_.find(std::string(topic));
  if (it != topics_.end()) return it->second;
  if (topics_.size() >= kMaxTopics) return topics_[kOtherTopicsRow];  // its counts say how much
  return topics_[std::string(topic)];
}

void Sniffer::OnRaw(bus::Plane plane, const bus::RawMessage& m) {
  int64_t now = bus::MonoNs();
  ++heard_;
  if (raw_) raw_(plane, m, now);
  if (!last_stats_ || m.topic != last_topic_) {
    last_topic_.assign(m.topic.substr(0, kMaxTopicBytes + 1));
    last_stats_ = &Stats(m.topic);
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
