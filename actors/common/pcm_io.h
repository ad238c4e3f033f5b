// PcmSource and PcmSink: the sound hardware behind two small interfaces, so
// the capture and playback logic run the same against ALSA, WAV files,
// silence and the fault-injecting fakes of the tests.
//
// Both are non-blocking and driven by a PcmPump (pcm_pump.h) in the actor's
// loop. A device keeps its own time (clocked(): ALSA, the fault-injecting
// fakes of fault_pcm.h) and may expose poll descriptors (PollFds/Ready); a
// file or silence keeps none and is paced by the pump's timer. Samples are
// interleaved s16 in the format() reported after Open().
//
// Errors: a Status that is not ok from Read/Write means the device is gone
// (unplugged, sound server stopped). The caller Close()s it, reports once, and
// Open()s it again later. Overruns/underruns are recovered inside and counted
// in xruns(): they lose samples but keep the stream.
//
// Not thread-safe: use from the loop's thread.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "bus/status.h"

namespace vb::audio {

struct PcmFormat {
  uint32_t sample_rate = 16000;
  uint32_t channels = 1;
};

class PcmSource {
 public:
  virtual ~PcmSource() = default;
  // Opens (or reopens after an error) and starts the stream.
  virtual Status Open() = 0;
  virtual void Close() = 0;
  virtual bool is_open() const = 0;
  virtual PcmFormat format() const = 0;
  // Reads up to max_frames frames (per channel) into `out`; *frames = 0 when
  // nothing is available yet. *delay_frames (optional): frames captured after
  // the last one returned (still in the device), for capture timestamps.
  virtual Status Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) = 0;
  // True once a finite source (a file without loop) has no more samples.
  virtual bool at_end() const { return false; }
  // True: the device keeps its own time (the pump serves it when ready and
  // watches it for stalls); false: the pump paces it by its timer.
  virtual bool clocked() const { return false; }
  // Generated samples (silence), not a microphone: frames are marked synthetic.
  virtual bool synthetic() const { return false; }
  // Descriptors to poll; empty = pace with a timer.
  virtual std::vector<pollfd> PollFds() { return {}; }
  // Given the descriptors with revents, true if Read() may return data or
  // an error now.
  virtual bool Ready(std::span<const pollfd> fds) { return true; }
  virtual uint64_t xruns() const { return 0; }
};

class PcmSink {
 public:
  virtual ~PcmSink() = default;
  virtual Status Open() = 0;
  virtual void Close() = 0;
  virtual bool is_open() const = 0;
  virtual PcmFormat format() const = 0;
  // Frames that Write() accepts now without blocking; *delay_frames
  // (optional): frames queued in the device, i.e. how long until the next
  // frame written leaves the speaker.
  virtual Status Avail(size_t* frames, int64_t* delay_frames = nullptr) = 0;
  // Writes up to `frames` frames; *written may be less. *delay_frames
  // (optional): frames queued ahead of the first one written, i.e. how long
  // until it leaves the speaker.
  virtual Status Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) = 0;
  // Discards what is queued in the device and not yet played, staying ready
  // for Write() (a flush that must not wait for the queue to play out).
  // Not every sink can: the default says so.
  virtual Status Drop() { return Status::Unavailable("sink cannot drop its queue"); }
  // Rewritable queue (rewindable()): takes back up to max_frames of the
  // frames written last that have not started to play (keeping a safety
  // margin before the play position); *frames = how many. They are silenced,
  // and the next Write() goes in their place, so the caller can replace
  // them (a flush's fade) without a gap or a click.
  virtual Status Rewind(size_t /*max_frames*/, size_t* frames) {
    *frames = 0;
    return Status::Unavailable("sink cannot rewrite its queue");
  }
  virtual bool rewindable() const { return false; }
  // As PcmSource::clocked().
  virtual bool clocked() const { return false; }
  virtual std::vector<pollfd> PollFds() { return {}; }
  // Given the descriptors with revents, true if Avail()/Write() may progress.
  virtual bool Ready(std::span<const pollfd> fds) { return true; }
  virtual uint64_t xruns() const { return 0; }
  // Frames the device must have free before its descriptors wake the
  // caller (its period; 0: unknown). The caller writes blocks no larger.
  virtual size_t wake_frames() const { return 0; }
};

}  // namespace vb::audio
