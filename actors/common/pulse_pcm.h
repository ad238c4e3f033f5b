// PulseSink: a PcmSink straight to a PulseAudio server through libpulse,
// with a deep queue that can be rewritten.
//
// Why: through the ALSA pulse plugin a flush has to wait for the device
// queue to play out, so the queue had to stay short (20 ms) and the loop
// woke every 5 ms. Here the queue is deep (`buffer_us`, e.g. 80 ms: a busy
// machine does not starve it) and the loop writes every `period_us` (20 ms),
// yet a flush is fast: Rewind() moves the write position back to just after
// what is about to play (the play position + `margin_us`), so the next
// Write() replaces the queued tail (the fade, then silence) — PulseAudio
// rewinds its sink for data it already took. What is replaced is known
// exactly (the caller's own copy of the last frames written), so the fade
// continues the very sample that plays before it: no click. The rewritten
// frames reach the server in one write that covers the old end, so the
// queue never runs dry in between.
//
// Positions are frames since the stream opened: written() is where the next
// Write() goes, the play position comes from libpulse's interpolated timing
// (pa_stream_get_time). Avail() keeps about `buffer_us` queued.
//
// Threads: libpulse's threaded mainloop runs the connection; every call here
// takes its lock. No poll descriptors: the pump serves it from a timer every
// wake period. A server that dies or a stream that fails turns every later
// call into an error (device gone: the pump closes it and reopens with
// back-off). Underflows are counted in xruns().
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "actors/common/pcm_io.h"

struct pa_threaded_mainloop;
struct pa_context;
struct pa_stream;

namespace vb::audio {

struct PulseConfig {
  std::string server;  // "" = the default (PULSE_SERVER, client.conf)
  std::string device;  // sink name; "" = PULSE_SINK or the server's default
  std::string client_name = "voicebus";
  std::string stream_name = "playback";
  uint32_t sample_rate = 16000;
  uint32_t channels = 1;
  uint32_t buffer_us = 80000;  // queue kept (write → speaker)
  uint32_t period_us = 20000;  // the caller writes this often
  uint32_t margin_us = 20000;  // Rewind() keeps this much ahead of the play position
  uint32_t connect_timeout_ms = 2000;
};

class PulseSink : public PcmSink {
 public:
  explicit PulseSink(PulseConfig config);
  ~PulseSink() override;
  PulseSink(const PulseSink&) = delete;
  PulseSink& operator=(const PulseSink&) = delete;

  Status Open() override;
  void Close() override;
  bool is_open() const override { return mainloop_ != nullptr; }
  PcmFormat format() const override { return {config_.sample_rate, config_.channels}; }
  Status Avail(size_t* frames, int64_t* delay_frames = nullptr) override;
  Status Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) override;
  Status Rewind(size_t max_frames, size_t* frames) override;
  bool rewindable() const override { return true; }
  bool clocked() const override { return true; }
  uint64_t xruns() const override { return underflows_.load(); }
  size_t wake_frames() const override { return size_t(config_.sample_rate) * config_.period_us / 1'000'000; }
  // The sink's own queue (frames), as the server granted it.
  size_t buffer_frames() const { return buffer_frames_; }
  const std::string& sink_name() const { return sink_name_; }

 private:
  // Under the mainloop lock.
  Status Healthy();
  Status Fail(const std::string& what);
  int64_t PlayedFrames();
  Status Send(const void* data, size_t bytes, int64_t offset, int seek);
  Status FlushRewrite();

  PulseConfig config_;
  pa_threaded_mainloop* mainloop_ = nullptr;
  pa_context* context_ = nullptr;
  pa_stream* stream_ = nullptr;
  size_t frame_bytes_ = 2;
  size_t buffer_frames_ = 0;
  int64_t written_ = 0;  // frames: where the next Write() goes
  // After a Rewind: the frames written since are held here and go to the
  // server in one write at seek_to_ once they reach rewrite_end_ (the old
  // end), so the server's queue never ends before its read position (an
  // underflow) while the rewrite is under way.
  int64_t seek_to_ = -1;
  int64_t rewrite_end_ = 0;
  bool rewrite_asked_ = false;  // Avail() was called since the Rewind
  std::vector<uint8_t> rewrite_;
  int64_t last_played_ = 0;
  std::string sink_name_;
  std::atomic<uint64_t> underflows_{0};
};

}  // namespace vb::audio
