// Fault-injecting fake devices (see fault_pcm.h).
#include "actors/common/fault_pcm.h"

#include <algorithm>

namespace vb::audio {

void FaultDevice::ApplyScript() {
  const int64_t now = clock_();
  while (next_step_ < script_.size() && script_[next_step_].at_ns <= now) {
    const FaultStep& s = script_[next_step_++];
    switch (s.kind) {
      case FaultStep::kVanish: Vanish(); break;
      case FaultStep::kReturn: Return(); break;
      case FaultStep::kShortIo: ShortIo(s.frames); break;
      case FaultStep::kXrun: Xrun(); break;
      case FaultStep::kStallOn: Stall(true); break;
      case FaultStep::kStallOff: Stall(false); break;
    }
  }
}

Status FaultDevice::OpenDevice(const char* what) {
  ApplyScript();
  if (vanished_) {
    ++failed_opens_;
    return Status::Unavailable(std::string(what) + ": no such device");
  }
  ++opens_;
  open_ = true;
  return Status::Ok();
}

// ---- Source ----------------------------------------------------------------

Status FaultSource::Open() {
  if (Status st = OpenDevice("fault source"); !st.ok()) return st;
  anchor_ns_ = clock_();
  queued_ = 0;  // a fresh stream: nothing captured before it
  return Status::Ok();
}

void FaultSource::Advance() {
  const int64_t now = clock_();
  const int64_t made = Frames(now - anchor_ns_);
  if (made <= 0) return;
  anchor_ns_ += made * 1'000'000'000 / int64_t(format_.sample_rate);
  produced_ += uint64_t(made);
  if (!stalled_) queued_ += uint64_t(made);
  if (queued_ > buffer_frames_) xrun_pending_ = true;  // the reader was too late
}

Status FaultSource::Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) {
  *frames = 0;
  if (delay_frames) *delay_frames = 0;
  ApplyScript();
  if (!open_) return Status::Unavailable("fault source: not open");
  if (vanished_) return Status::Unavailable("fault source: device vanished");
  Advance();
  if (xrun_pending_) {
    xrun_pending_ = false;
    ++xruns_;
    queued_ = 0;  // what was queued is lost
    return Status::Ok();
  }
  size_t n = size_t(std::min<uint64_t>(queued_, max_frames));
  if (short_io_) n = std::min(n, short_io_);
  // The oldest queued frame has ramp index produced_ - queued_.
  const uint64_t first = produced_ - queued_;
  for (size_t k = 0; k < n; ++k)
    for (uint32_t c = 0; c < format_.channels; ++c) out[k * format_.channels + c] = int16_t((first + k) % 32768);
  queued_ -= n;
  *frames = n;
  if (delay_frames) *delay_frames = int64_t(queued_);
  return Status::Ok();
}

// ---- Sink ------------------------------------------------------------------

Status FaultSink::Open() {
  if (Status st = OpenDevice("fault sink"); !st.ok()) return st;
  queued_ = 0;
  running_ = false;
  anchor_ns_ = clock_();
  return Status::Ok();
}

void FaultSink::Advance() {
  const int64_t now = clock_();
  const int64_t played = Frames(now - anchor_ns_);
  if (played <= 0) return;
  anchor_ns_ += played * 1'000'000'000 / int64_t(format_.sample_rate);
  if (!running_ || stalled_) return;
  if (uint64_t(played) > queued_) {
    // The queue ran dry: an underrun; the stream restarts with the next write.
    ++xruns_;
    queued_ = 0;
    running_ = false;
    return;
  }
  queued_ -= uint64_t(played);
}

Status FaultSink::Avail(size_t* frames, int64_t* delay_frames) {
  *frames = 0;
  if (delay_frames) *delay_frames = 0;
  ApplyScript();
  if (!open_) return Status::Unavailable("fault sink: not open");
  if (vanished_) return Status::Unavailable("fault sink: device vanished");
  Advance();
  if (xrun_pending_) {
    xrun_pending_ = false;
    ++xruns_;
    queued_ = 0;
    running_ = false;
  }
  if (stalled_) return Status::Ok();
  *frames = buffer_frames_ - std::min<uint64_t>(queued_, buffer_frames_);
  if (delay_frames) *delay_frames = int64_t(queued_);
  return Status::Ok();
}

Status FaultSink::Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) {
  *written = 0;
  if (delay_frames) *delay_frames = 0;
  size_t avail = 0;
  int64_t delay = 0;
  if (Status st = Avail(&avail, &delay); !st.ok()) return st;
  size_t n = std::min(frames, avail);
  if (short_io_) n = std::min(n, short_io_);
  written_.insert(written_.end(), in, in + n * format_.channels);
  if (n > 0 && !running_) {
    running_ = true;
    anchor_ns_ = clock_();
  }
  queued_ += n;
  *written = n;
  if (delay_frames) *delay_frames = delay;
  return Status::Ok();
}

Status FaultSink::Rewind(size_t max_frames, size_t* frames) {
  *frames = 0;
  if (rewind_margin_ < 0) return Status::Unavailable("fault sink: not rewritable");
  if (!open_ || vanished_) return Status::Unavailable("fault sink: device vanished");
  Advance();
  if (queued_ <= uint64_t(rewind_margin_)) return Status::Ok();
  const size_t take = std::min<size_t>(max_frames, size_t(queued_ - uint64_t(rewind_margin_)));
  queued_ -= take;
  written_.resize(written_.size() - take * format_.channels);
  *frames = take;
  return Status::Ok();
}

Status FaultSink::Drop() {
  if (!open_ || vanished_) return Status::Unavailable("fault sink: device vanished");
  queued_ = 0;
  running_ = false;
  return Status::Ok();
}

}  // namespace vb::audio
