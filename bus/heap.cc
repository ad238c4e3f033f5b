// Heap given back after a burst (see heap.h).
#include "bus/heap.h"

#include <malloc.h>

#include <algorithm>

namespace vb {

bool HeapTrimmer::AfterBurst() {
#if defined(__GLIBC__)
  const size_t free_bytes = mallinfo2().fordblks;
  if (free_bytes <= floor_ + kStepBytes) {
    floor_ = std::min(floor_, free_bytes);
    return false;
  }
  malloc_trim(0);
  floor_ = free_bytes;
  ++trims_;
  return true;
#else
  return false;
#endif
}

}  // namespace vb
