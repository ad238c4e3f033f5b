// Heap given back after a burst. A flood of messages queued and then
// drained leaves its freed heap resident (glibc keeps it), and the process
// stays as big as the burst made it. Called at each heartbeat, AfterBurst()
// returns that heap to the system when the free heap has grown by more than
// a step since the last look. Free pages given back still count as free, so
// `floor_` follows the free heap down: a second burst that reuses and frees
// it again is trimmed too. In steady operation the free heap barely moves
// and a call is one mallinfo2() walk.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vb {

class HeapTrimmer {
 public:
  // True when it gave heap back (counted in trims()).
  bool AfterBurst();
  uint64_t trims() const { return trims_; }

 private:
  static constexpr size_t kStepBytes = 1u << 20;
  size_t floor_ = 0;
  uint64_t trims_ = 0;
};

}  // namespace vb
