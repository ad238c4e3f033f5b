// Real-time scheduling for the audio actors' loops: a short-period device
// loop that a busy machine preempts underruns; SCHED_FIFO keeps it on time.
// Best effort: without the privilege (root, CAP_SYS_NICE or an rtprio limit)
// the process stays as it is and the Status says why.
#pragma once

#include "bus/status.h"

namespace vb::audio {

// priority 1–99: SCHED_FIFO at that priority for the calling thread;
// 0: nothing.
Status SetRealtimePriority(int priority);
// The same, logging one warning when it is not granted (actors' Activate).
void RequestRealtimePriority(int priority);

}  // namespace vb::audio
