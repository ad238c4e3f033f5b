// Sequence gap counting with bounded, LRU-evicted per-publisher state (see
// seq_tracker.h).
#include "bus/seq_tracker.h"

namespace vb::bus {

uint64_t SeqTracker::Observe(std::string_view source, std::string_view topic, uint64_t seq) {
  key_.assign(source);
  key_.push_back('\0');
  key_.append(topic);
  auto it = index_.find(std::string_view(key_));
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);  // iterators stay valid
  } else {
    if (index_.size() >= capacity_) {
      index_.erase(std::string_view(lru_.back().key));
      lru_.pop_back();
      ++evictions_;
    }
    lru_.push_front(Slot{key_, Entry{}});
    it = index_.emplace(std::string_view(lru_.front().key), lru_.begin()).first;
  }
  Entry& e = it->second->entry;
  uint64_t lost = 0;
  if (e.received == 0) {
    // First message seen from this publisher: losses before we joined are
    // not ours to count.
  } else if (seq > e.last && seq - e.last - 1 <= max_gap_) {
    lost = seq - e.last - 1;
  } else {
    ++e.restarts;  // backwards, repeated or an implausible jump: a restart
    ++total_restarts_;
  }
  e.last = seq;
  ++e.received;
  e.lost += lost;
  total_lost_ += lost;
  return lost;
}

std::vector<SeqTracker::Row> SeqTracker::Rows() const {
  std::vector<Row> rows;
  rows.reserve(lru_.size());
  for (const auto& slot : lru_) {
    auto z = slot.key.find('\0');
    rows.push_back(Row{slot.key.substr(0, z), slot.key.substr(z + 1), slot.entry});
  }
  return rows;
}

}  // namespace vb::bus
