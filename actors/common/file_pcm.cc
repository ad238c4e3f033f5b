// WAV and silence PCM sources and the WAV sink (see file_pcm.h).
#include "actors/common/file_pcm.h"

#include <algorithm>
#include <cstring>

namespace vb::audio {

Status WavFileSource::Open() {
  if (!open_ || pcm_.samples.empty()) {
    if (Status st = ReadWav(path_, &pcm_); !st.ok()) return st;
    if (pcm_.frames() == 0 && loop_) return Status::Invalid(path_ + ": empty file cannot loop");
    pos_ = 0;
  }
  open_ = true;
  return Status::Ok();
}

Status WavFileSource::Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) {
  *frames = 0;
  if (delay_frames) *delay_frames = 0;
  if (!open_) return Status::Unavailable(path_ + ": not open");
  const size_t total = pcm_.frames();
  const size_t ch = pcm_.channels;
  while (*frames < max_frames) {
    if (pos_ >= total) {
      if (!loop_ || total == 0) break;
      pos_ = 0;
      ++loops_;
    }
    size_t n = std::min(max_frames - *frames, total - pos_);
    memcpy(out + *frames * ch, pcm_.samples.data() + pos_ * ch, n * ch * sizeof(int16_t));
    pos_ += n;
    *frames += n;
  }
  return Status::Ok();
}

Status SilenceSource::Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) {
  std::fill(out, out + max_frames * format_.channels, int16_t(0));
  *frames = max_frames;
  if (delay_frames) *delay_frames = 0;
  return Status::Ok();
}

Status WavFileSink::Open() {
  if (writer_.is_open()) return Status::Ok();
  since_flush_ = 0;
  return writer_.Open(path_, format_.sample_rate, format_.channels);
}

void WavFileSink::Close() { writer_.Close(); }

Status WavFileSink::Avail(size_t* frames, int64_t* delay_frames) {
  if (delay_frames) *delay_frames = 0;
  *frames = writer_.is_open() ? SIZE_MAX / 4 : 0;
  return writer_.is_open() ? Status::Ok() : Status::Unavailable(path_ + ": not open");
}

Status WavFileSink::Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) {
  *written = 0;
  if (delay_frames) *delay_frames = 0;
  if (Status st = writer_.Write(in, frames * format_.channels); !st.ok()) return st;
  *written = frames;
  since_flush_ += frames;
  if (since_flush_ >= flush_frames_) {
    since_flush_ = 0;
    return writer_.Flush();
  }
  return Status::Ok();
}

}  // namespace vb::audio
