// ALSA implementations of PcmSource and PcmSink (pcm_io.h): non-blocking
// PCMs whose poll descriptors join the actor's loop (Loop::AddPollGroup with
// PollFds(); Ready() translates revents with snd_pcm_poll_descriptors_revents).
//
// Formats: s16 interleaved. The source takes the nearest rate and channel
// count the device offers (the caller converts, e.g. with Resampler); the
// sink lets ALSA resample to the exact rate asked and takes the nearest
// channel count (the caller up-mixes mono).
//
// Xruns are recovered inside (snd_pcm_recover) and counted; any other error
// is returned as "device gone" and the PCM should be closed and reopened.
//
// Tests and machines without a sound card: device "pulse" (libasound2-plugins)
// with tests/tools/pulse_env.sh; the microphone is chosen with PULSE_SOURCE
// (e.g. vb_null.monitor, which hears the speaker) and the speaker with PULSE_SINK.
#pragma once

#include <string>

#include "actors/common/pcm_io.h"

typedef struct _snd_pcm snd_pcm_t;

namespace vb::audio {

struct AlsaConfig {
  std::string device = "default";
  uint32_t sample_rate = 16000;
  uint32_t channels = 1;
  uint32_t period_us = 10000;  // wake-up granularity
  uint32_t buffer_us = 40000;  // device queue (playback: bounds the flush latency)
};

class AlsaPcm {
 public:
  AlsaPcm(AlsaConfig config, bool capture) : config_(std::move(config)), capture_(capture) {}
  ~AlsaPcm() { Close(); }
  AlsaPcm(const AlsaPcm&) = delete;
  AlsaPcm& operator=(const AlsaPcm&) = delete;

  Status Open();
  void Close();
  bool is_open() const { return pcm_ != nullptr; }
  PcmFormat format() const { return format_; }
  size_t period_frames() const { return period_frames_; }
  size_t buffer_frames() const { return buffer_frames_; }
  std::vector<pollfd> PollFds();
  bool Ready(std::span<const pollfd> fds);
  uint64_t xruns() const { return xruns_; }
  // Available frames and the delay, recovering from an xrun.
  Status AvailDelay(size_t* avail, int64_t* delay);
  Status Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames);
  Status Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames);
  // Playback: discards the queued frames (snd_pcm_drop) and prepares again.
  Status Drop();

 private:
  Status Fail(const char* what, int err);
  bool Recover(int err);

  AlsaConfig config_;
  bool capture_;
  snd_pcm_t* pcm_ = nullptr;
  PcmFormat format_;
  size_t period_frames_ = 0, buffer_frames_ = 0;
  uint64_t xruns_ = 0;
  bool dropping_ = false;            // capture: discarding a stale backlog after an overrun
  std::vector<pollfd> revents_fds_;  // Ready()'s copy, reused: it runs at every period
};

class AlsaSource : public PcmSource {
 public:
  explicit AlsaSource(AlsaConfig config) : pcm_(std::move(config), true) {}
  Status Open() override { return pcm_.Open(); }
  void Close() override { pcm_.Close(); }
  bool is_open() const override { return pcm_.is_open(); }
  PcmFormat format() const override { return pcm_.format(); }
  Status Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) override {
    return pcm_.Read(out, max_frames, frames, delay_frames);
  }
  std::vector<pollfd> PollFds() override { return pcm_.PollFds(); }
  bool Ready(std::span<const pollfd> fds) override { return pcm_.Ready(fds); }
  uint64_t xruns() const override { return pcm_.xruns(); }
  bool clocked() const override { return true; }
  size_t period_frames() const { return pcm_.period_frames(); }

 private:
  AlsaPcm pcm_;
};

class AlsaSink : public PcmSink {
 public:
  explicit AlsaSink(AlsaConfig config) : pcm_(std::move(config), false) {}
  Status Open() override { return pcm_.Open(); }
  void Close() override { pcm_.Close(); }
  bool is_open() const override { return pcm_.is_open(); }
  PcmFormat format() const override { return pcm_.format(); }
  Status Avail(size_t* frames, int64_t* delay_frames = nullptr) override {
    int64_t delay;
    Status st = pcm_.AvailDelay(frames, &delay);
    if (delay_frames) *delay_frames = delay;
    return st;
  }
  Status Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) override {
    return pcm_.Write(in, frames, written, delay_frames);
  }
  Status Drop() override { return pcm_.Drop(); }
  bool clocked() const override { return true; }
  std::vector<pollfd> PollFds() override { return pcm_.PollFds(); }
  bool Ready(std::span<const pollfd> fds) override { return pcm_.Ready(fds); }
  uint64_t xruns() const override { return pcm_.xruns(); }
  size_t period_frames() const { return pcm_.period_frames(); }
  size_t buffer_frames() const { return pcm_.buffer_frames(); }
  size_t wake_frames() const override { return pcm_.period_frames(); }

 private:
  AlsaPcm pcm_;
};

}  // namespace vb::audio
