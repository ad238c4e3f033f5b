// SeqTracker: counts sequence gaps per (publisher, topic) so drops are never
// silent. A sequence number that goes backwards means the publisher restarted;
// that is counted as a restart, not as a drop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vb::bus {

class SeqTracker {
 public:
  struct Entry {
    uint64_t last = 0;
    uint64_t received = 0;
    uint64_t lost = 0;
    uint64_t restarts = 0;
  };
  // Records seq from source on topic; returns how many messages were lost
  // just before this one (0 if none).
  uint64_t Observe(std::string_view source, std::string_view topic, uint64_t seq);
  uint64_t total_lost() const { return total_lost_; }

  struct Row {
    std::string source, topic;
    Entry entry;
  };
  std::vector<Row> Rows() const;

 private:
  std::unordered_map<std::string, Entry> entries_;  // key: source '\0' topic
  std::string key_;                                  // reused buffer
  uint64_t total_lost_ = 0;
};

}  // namespace vb::bus
