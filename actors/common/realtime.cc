// Real-time scheduling (see realtime.h).
#include "actors/common/realtime.h"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "bus/log.h"

namespace vb::audio {

Status SetRealtimePriority(int priority) {
  if (priority <= 0) return Status::Ok();
  sched_param p{};
  p.sched_priority = priority;
  if (sched_setscheduler(0, SCHED_FIFO, &p) != 0)
    return Status::Unavailable(std::string("SCHED_FIFO ") + std::to_string(priority) + ": " + strerror(errno));
  return Status::Ok();
}

void RequestRealtimePriority(int priority) {
  if (Status st = SetRealtimePriority(priority); !st.ok()) {
    VB_LOG(kWarn) << "real-time scheduling not granted (" << st.message() << "): running at normal priority";
  }
}

}  // namespace vb::audio
