// PulseAudio PcmSink with a rewritable queue (see pulse_pcm.h).
#include "actors/common/pulse_pcm.h"

#include <pulse/pulseaudio.h>

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

namespace vb::audio {
namespace {

// Wakes Open()'s wait on every state change and at its deadline.
void Signal(pa_threaded_mainloop* m) { pa_threaded_mainloop_signal(m, 0); }

struct Waker {
  pa_threaded_mainloop* mainloop;
  bool timed_out = false;
};

}  // namespace

PulseSink::PulseSink(PulseConfig config) : config_(std::move(config)) {
  frame_bytes_ = 2 * std::max<uint32_t>(config_.channels, 1);
}

PulseSink::~PulseSink() { Close(); }

Status PulseSink::Fail(const std::string& what) {
  std::string why = "pulse: " + what;
  if (context_) why += std::string(": ") + pa_strerror(pa_context_errno(context_));
  return Status::Unavailable(why);
}

Status PulseSink::Open() {
  Close();
  mainloop_ = pa_threaded_mainloop_new();
  if (!mainloop_) return Status::Unavailable("pulse: cannot create a mainloop");
  if (pa_threaded_mainloop_start(mainloop_) < 0) {
    pa_threaded_mainloop_free(mainloop_);
    mainloop_ = nullptr;
    return Status::Unavailable("pulse: cannot start the mainloop thread");
  }
  pa_threaded_mainloop_lock(mainloop_);
  Waker waker{mainloop_};
  pa_time_event* deadline = nullptr;
  auto wait_ready = [&](auto state_of, auto good, auto ready) -> bool {
    for (;;) {
      const auto s = state_of();
      if (s == ready) return true;
      if (!good(s) || waker.timed_out) return false;
      pa_threaded_mainloop_wait(mainloop_);
    }
  };
  Status st = Status::Ok();
  do {
    context_ = pa_context_new(pa_threaded_mainloop_get_api(mainloop_), config_.client_name.c_str());
    if (!context_) {
      st = Status::Unavailable("pulse: cannot create a context");
      break;
    }
    pa_context_set_state_callback(
        context_, [](pa_context*, void* m) { Signal(static_cast<pa_threaded_mainloop*>(m)); }, mainloop_);
    if (pa_context_connect(context_, config_.server.empty() ? nullptr : config_.server.c_str(), PA_CONTEXT_NOAUTOSPAWN,
                           nullptr) < 0) {
      st = Fail("cannot connect to the server");
      break;
    }
    deadline = pa_context_rttime_new(
        context_, pa_rtclock_now() + pa_usec_t(config_.connect_timeout_ms) * 1000,
        [](pa_mainloop_api*, pa_time_event*, const struct timeval*, void* w) {
          auto* k = static_cast<Waker*>(w);
          k->timed_out = true;
          Signal(k->mainloop);
        },
        &waker);
    if (!wait_ready([&] { return pa_context_get_state(context_); },
                    [](pa_context_state_t s) { return PA_CONTEXT_IS_GOOD(s); }, PA_CONTEXT_READY)) {
      st = waker.timed_out ? Status::Unavailable("pulse: no answer from the server in " +
                                                 std::to_string(config_.connect_timeout_ms) + " ms")
                           : Fail("cannot connect to the server");
      break;
    }
    pa_sample_spec ss{PA_SAMPLE_S16LE, config_.sample_rate, uint8_t(std::max<uint32_t>(config_.channels, 1))};
    stream_ = pa_stream_new(context_, config_.stream_name.c_str(), &ss, nullptr);
    if (!stream_) {
      st = Fail("cannot create a stream");
      break;
    }
    pa_stream_set_state_callback(
        stream_, [](pa_stream*, void* m) { Signal(static_cast<pa_threaded_mainloop*>(m)); }, mainloop_);
    pa_stream_set_underflow_callback(
        stream_, [](pa_stream*, void* self) { static_cast<PulseSink*>(self)->underflows_.fetch_add(1); }, this);
    const auto bytes = [&](uint32_t us) {
      return uint32_t(uint64_t(config_.sample_rate) * us / 1'000'000) * uint32_t(frame_bytes_);
    };
    pa_buffer_attr attr;
    attr.maxlength = uint32_t(-1);
    attr.tlength = bytes(config_.buffer_us);
    // Starts (and restarts after an underflow) once one period is queued.
    attr.prebuf = bytes(config_.period_us);
    attr.minreq = bytes(config_.period_us);
    attr.fragsize = uint32_t(-1);
    const char* dev = config_.device.empty() ? std::getenv("PULSE_SINK") : config_.device.c_str();
    if (dev && !*dev) dev = nullptr;
    const auto flags =
        pa_stream_flags_t(PA_STREAM_INTERPOLATE_TIMING | PA_STREAM_AUTO_TIMING_UPDATE | PA_STREAM_ADJUST_LATENCY);
    if (pa_stream_connect_playback(stream_, dev, &attr, flags, nullptr, nullptr) < 0) {
      st = Fail("cannot connect the stream");
      break;
    }
    if (!wait_ready([&] { return pa_stream_get_state(stream_); },
                    [](pa_stream_state_t s) { return PA_STREAM_IS_GOOD(s); }, PA_STREAM_READY)) {
      st = waker.timed_out ? Status::Unavailable("pulse: the stream did not start in " +
                                                 std::to_string(config_.connect_timeout_ms) + " ms")
                           : Fail(std::string("cannot play to ") + (dev ? dev : "the default sink"));
      break;
    }
    if (const pa_buffer_attr* got = pa_stream_get_buffer_attr(stream_)) buffer_frames_ = got->tlength / frame_bytes_;
    const char* name = pa_stream_get_device_name(stream_);
    sink_name_ = name ? name : "";
  } while (false);
  if (deadline) pa_threaded_mainloop_get_api(mainloop_)->time_free(deadline);
  pa_threaded_mainloop_unlock(mainloop_);
  if (!st.ok()) {
    Close();
    return st;
  }
  written_ = 0;
  seek_to_ = -1;
  rewrite_.clear();
  last_played_ = 0;
  return Status::Ok();
}

void PulseSink::Close() {
  if (!mainloop_) return;
  pa_threaded_mainloop_lock(mainloop_);
  if (stream_) {
    pa_stream_set_state_callback(stream_, nullptr, nullptr);
    pa_stream_set_underflow_callback(stream_, nullptr, nullptr);
    pa_stream_disconnect(stream_);
    pa_stream_unref(stream_);
    stream_ = nullptr;
  }
  if (context_) {
    pa_context_set_state_callback(context_, nullptr, nullptr);
    pa_context_disconnect(context_);
    pa_context_unref(context_);
    context_ = nullptr;
  }
  pa_threaded_mainloop_unlock(mainloop_);
  pa_threaded_mainloop_stop(mainloop_);
  pa_threaded_mainloop_free(mainloop_);
  mainloop_ = nullptr;
}

Status PulseSink::Healthy() {
  if (!context_ || !stream_) return Status::Unavailable("pulse: not open");
  if (pa_context_get_state(context_) != PA_CONTEXT_READY) return Fail("connection to the server lost");
  if (pa_stream_get_state(stream_) != PA_STREAM_READY) return Fail("stream failed");
  return Status::Ok();
}

// The frame playing now (frames since the stream opened), never past what
// was written nor behind an earlier answer.
int64_t PulseSink::PlayedFrames() {
  pa_usec_t t = 0;
  if (pa_stream_get_time(stream_, &t) == 0)
    last_played_ = std::max(last_played_, int64_t(t * config_.sample_rate / 1'000'000));
  return std::min(last_played_, std::max<int64_t>(written_, 0));
}

Status PulseSink::Send(const void* data, size_t bytes, int64_t offset, int seek) {
  if (pa_stream_write(stream_, data, bytes, nullptr, offset, pa_seek_mode_t(seek)) < 0) return Fail("write refused");
  return Status::Ok();
}

// The rewritten frames, padded with silence up to the old end if the caller
// wrote less, in one write at the rewind position.
Status PulseSink::FlushRewrite() {
  if (seek_to_ < 0) return Status::Ok();
  if (written_ < rewrite_end_) {
    rewrite_.resize(rewrite_.size() + size_t(rewrite_end_ - written_) * frame_bytes_, 0);
    written_ = rewrite_end_;
  }
  const int64_t at = seek_to_;
  seek_to_ = -1;
  Status st = Send(rewrite_.data(), rewrite_.size(), at * int64_t(frame_bytes_), PA_SEEK_ABSOLUTE);
  rewrite_.clear();
  return st;
}

Status PulseSink::Avail(size_t* frames, int64_t* delay_frames) {
  if (!mainloop_) return Status::Unavailable("pulse: not open");
  pa_threaded_mainloop_lock(mainloop_);
  Status st = Healthy();
  // A rewrite still short of the old end since the last round: padded now.
  if (st.ok() && seek_to_ >= 0 && std::exchange(rewrite_asked_, true)) st = FlushRewrite();
  int64_t delay = 0;
  if (st.ok()) delay = written_ - PlayedFrames();
  pa_threaded_mainloop_unlock(mainloop_);
  if (!st.ok()) return st;
  // The whole queue, the sink's own part included (the server's tlength
  // leaves that part out when it adjusts the sink's latency).
  const int64_t target = int64_t(uint64_t(config_.sample_rate) * config_.buffer_us / 1'000'000);
  *frames = size_t(std::max<int64_t>(target - delay, 0));
  if (delay_frames) *delay_frames = delay;
  return Status::Ok();
}

Status PulseSink::Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) {
  *written = 0;
  if (!mainloop_) return Status::Unavailable("pulse: not open");
  pa_threaded_mainloop_lock(mainloop_);
  Status st = Healthy();
  int64_t delay = 0;
  if (st.ok()) {
    delay = written_ - PlayedFrames();
    const size_t bytes = frames * frame_bytes_;
    if (seek_to_ >= 0) {
      const auto* p = reinterpret_cast<const uint8_t*>(in);
      rewrite_.insert(rewrite_.end(), p, p + bytes);
      written_ += int64_t(frames);
      if (written_ >= rewrite_end_) st = FlushRewrite();
    } else {
      st = Send(in, bytes, 0, PA_SEEK_RELATIVE);
      if (st.ok()) written_ += int64_t(frames);
    }
  }
  pa_threaded_mainloop_unlock(mainloop_);
  if (!st.ok()) return st;
  *written = frames;
  if (delay_frames) *delay_frames = delay;
  return Status::Ok();
}

Status PulseSink::Rewind(size_t max_frames, size_t* frames) {
  *frames = 0;
  if (!mainloop_) return Status::Unavailable("pulse: not open");
  pa_threaded_mainloop_lock(mainloop_);
  Status st = Healthy();
  if (st.ok()) st = FlushRewrite();
  if (st.ok()) {
    const int64_t keep = PlayedFrames() + int64_t(uint64_t(config_.sample_rate) * config_.margin_us / 1'000'000);
    const int64_t from = std::max(keep, written_ - int64_t(max_frames));
    if (from < written_) {
      *frames = size_t(written_ - from);
      rewrite_end_ = written_;
      rewrite_asked_ = false;
      seek_to_ = from;
      written_ = from;
    }
  }
  pa_threaded_mainloop_unlock(mainloop_);
  return st;
}

}  // namespace vb::audio
