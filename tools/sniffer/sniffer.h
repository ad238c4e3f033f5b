// Sniffer: reads every message on the bus (both planes), decodes it by
// reflection from Header.type, and keeps per-topic statistics: type,
// publishers, message and byte rates, sequence gaps per publisher, and
// latency (now − origin_ns, now − mono_ns). The command front end
// (sniff_main.cc) prints them; this class knows nothing of output.
//
// Memory is bounded whatever the bus carries: at most kMaxTopics rows (then
// one "(other topics)" row), topics longer than kMaxTopicBytes share one row,
// unknown payload types are not cached, publishers per topic are capped and
// the sequence tracker is LRU-bounded.
#pragma once

#include <google/protobuf/message.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bus/node.h"
#include "bus/seq_tracker.h"
#include "bus/stats.h"

namespace vb::sniff {

struct TopicStats {
  std::string type;
  std::set<std::string> publishers;
  uint64_t messages = 0, bytes = 0;                // since start
  uint64_t window_messages = 0, window_bytes = 0;  // since last ResetWindow()
  uint64_t malformed = 0;
  bus::Histogram since_origin_us, since_publish_us;  // windowed
};

class Sniffer {
 public:
  // Called for each well-formed message with its decoded payload (null if
  // the type is unknown or the payload does not parse).
  using MessageFn = std::function<void(std::string_view topic, const v1::Header&,
                                       const google::protobuf::Message* payload, size_t payload_bytes)>;

  // Called for every message (malformed ones included) with its plane and
  // arrival time, before any decoding (the recorder).
  using RawFn = std::function<void(bus::Plane, const bus::RawMessage&, int64_t receive_mono_ns)>;

  // prefixes: topics to hear (none, or "", = every topic). A prefix that
  // another one covers is dropped, so no message is delivered twice.
  Sniffer(bus::Node& node, std::vector<std::string> prefixes);
  // Subscribes on both planes. decode=false skips payload parsing (hz, bw…).
  void Start(bool decode, MessageFn fn = nullptr, RawFn raw = nullptr);
  const std::vector<std::string>& prefixes() const { return prefixes_; }
  // Messages heard (well-formed or not) since start.
  uint64_t heard() const { return heard_; }

  std::map<std::string, TopicStats>& topics() { return topics_; }
  const bus::SeqTracker& seq() const { return seq_; }
  uint64_t malformed() const { return malformed_; }
  static constexpr size_t kMaxTopics = 512;  // a row holds two histograms (~17 KB)
  static constexpr size_t kMaxTopicBytes = 256;
  static constexpr const char* kOtherTopicsRow = "(other topics)";
  static constexpr const char* kOversizedTopicRow = "(oversized topic names)";
  void ResetWindow();

 private:
  void OnRaw(bus::Plane plane, const bus::RawMessage& m);
  TopicStats& Stats(std::string_view topic);
  const google::protobuf::Message* Decode(const std::string& type, std::string_view payload);

  bus::Node& node_;
  std::vector<std::string> prefixes_;
  bool decode_ = true;
  MessageFn fn_;
  RawFn raw_;
  uint64_t heard_ = 0;
  std::map<std::string, TopicStats> topics_;  // node-stable: pointers stay valid
  std::string last_topic_;                    // cache: most messages repeat a topic
  TopicStats* last_stats_ = nullptr;
  bus::SeqTracker seq_;
  uint64_t malformed_ = 0;
  std::map<std::string, std::unique_ptr<google::protobuf::Message>> scratch_;
};

}  // namespace vb::sniff
