// Sequence gap counting (see seq_tracker.h).
#include "bus/seq_tracker.h"

namespace vb::bus {

uint64_t SeqTracker::Observe(std::string_view source, std::string_view topic, uint64_t seq) {
  key_.assign(source);
  key_.push_back('\0');
  key_.append(topic);
  auto it = entries_.find(key_);
  if (it == entries_.end()) it = entries_.emplace(key_, Entry{}).first;
  Entry& e = it->second;
  uint64_t lost = 0;
  if (e.received == 0) {
    // First message seen from this publisher: losses before we joined are
    // not ours to count.
  } else if (seq > e.last) {
    lost = seq - e.last - 1;
  } else {
    ++e.restarts;  // went backwards (or repeated): the publisher restarted
  }
  e.last = seq;
  ++e.received;
  e.lost += lost;
  total_lost_ += lost;
  return lost;
}

std::vector<SeqTracker::Row> SeqTracker::Rows() const {
  std::vector<Row> rows;
  for (const auto& [k, e] : entries_) {
    auto z = k.find('\0');
    rows.push_back(Row{k.substr(0, z), k.substr(z + 1), e});
  }
  return rows;
}

}  // namespace vb::bus
