// File and synthetic implementations of PcmSource/PcmSink (pcm_io.h): a WAV
// file as a microphone (optionally looping), silence as a microphone, and a
// WAV file as a speaker. They have no poll descriptors: the actor paces them
// with a loop timer (real time) or runs them as fast as possible.
#pragma once

#include <string>

#include "actors/common/pcm_io.h"
#include "actors/common/wav.h"

namespace vb::audio {

class WavFileSource : public PcmSource {
 public:
  WavFileSource(std::string path, bool loop) : path_(std::move(path)), loop_(loop) {}
  Status Open() override;
  void Close() override { open_ = false; }
  bool is_open() const override { return open_; }
  PcmFormat format() const override { return {pcm_.sample_rate, pcm_.channels}; }
  Status Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) override;
  bool at_end() const override { return !loop_ && pos_ >= pcm_.frames(); }
  uint64_t loops() const { return loops_; }

 private:
  std::string path_;
  bool loop_;
  bool open_ = false;
  PcmBuffer pcm_;
  size_t pos_ = 0;  // next frame
  uint64_t loops_ = 0;
};

class SilenceSource : public PcmSource {
 public:
  explicit SilenceSource(PcmFormat format) : format_(format) {}
  Status Open() override {
    open_ = true;
    return Status::Ok();
  }
  void Close() override { open_ = false; }
  bool is_open() const override { return open_; }
  PcmFormat format() const override { return format_; }
  Status Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) override;
  bool synthetic() const override { return true; }

 private:
  PcmFormat format_;
  bool open_ = false;
};

// Writes every frame it is given; the file's header is kept valid
// (patched at least every `flush_frames` frames) so it can be read while the
// actor still runs or after a crash.
class WavFileSink : public PcmSink {
 public:
  WavFileSink(std::string path, PcmFormat format, size_t flush_frames = 16000)
      : path_(std::move(path)), format_(format), flush_frames_(flush_frames) {}
  Status Open() override;
  void Close() override;
  bool is_open() const override { return writer_.is_open(); }
  PcmFormat format() const override { return format_; }
  Status Avail(size_t* frames, int64_t* delay_frames = nullptr) override;
  Status Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) override;
  uint64_t frames_written() const { return writer_.frames_written(); }

 private:
  std::string path_;
  PcmFormat format_;
  size_t flush_frames_;
  size_t since_flush_ = 0;
  WavWriter writer_;
};

}  // namespace vb::audio
