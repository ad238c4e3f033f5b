// SeqTracker: counts sequence gaps per (publisher, topic) so drops are never
// silent. A sequence number that goes backwards (or repeats) means the
// publisher restarted; so does a forward jump larger than max_gap — no real
// outage loses that many messages from one connected publisher, but a spoofed
// or corrupted seq would otherwise count as billions of drops. Both are
// counted as restarts, not as drops.
//
// Memory is bounded whatever publishers send: at most `capacity` (publisher,
// topic) entries are kept, least recently seen evicted first (counted), so a
// flood of fake publisher names costs a fixed amount. A real publisher that
// was evicted is simply seen anew (its next message starts a fresh count).
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vb::bus {

class SeqTracker {
 public:
  static constexpr size_t kDefaultCapacity = 2048;
  static constexpr uint64_t kDefaultMaxGap = 65536;
  explicit SeqTracker(size_t capacity = kDefaultCapacity, uint64_t max_gap = kDefaultMaxGap)
      : capacity_(capacity < 1 ? 1 : capacity), max_gap_(max_gap) {}

  struct Entry {
    uint64_t last = 0;
    uint64_t received = 0;
    uint64_t lost = 0;
    uint64_t restarts = 0;  // backwards, repeated, or a jump over max_gap
  };
  // Records seq from source on topic; returns how many messages were lost
  // just before this one (0 if none).
  uint64_t Observe(std::string_view source, std::string_view topic, uint64_t seq);
  uint64_t total_lost() const { return total_lost_; }
  uint64_t total_restarts() const { return total_restarts_; }
  uint64_t evictions() const { return evictions_; }
  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

  struct Row {
    std::string source, topic;
    Entry entry;
  };
  // Most recently seen first.
  std::vector<Row> Rows() const;

 private:
  struct Slot {
    std::string key;  // source '\0' topic
    Entry entry;
  };
  size_t capacity_;
  uint64_t max_gap_;
  std::list<Slot> lru_;                                                    // front = most recently seen
  std::unordered_map<std::string_view, std::list<Slot>::iterator> index_;  // views into lru_ keys
  std::string key_;                                                        // reused buffer
  uint64_t total_lost_ = 0;
  uint64_t total_restarts_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace vb::bus
