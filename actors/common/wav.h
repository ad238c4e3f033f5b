// WAV files: read any PCM WAV (8/16/24/32-bit int, 32-bit float; any rate
// and channel count) into interleaved s16, and write s16 WAV, streaming or
// whole. Shared by capture (WAV source), playback (WAV sink), benches,
// evaluation tools and tests, so no actor carries its own copy.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bus/status.h"

namespace vb::audio {

struct PcmBuffer {
  uint32_t sample_rate = 16000;
  uint32_t channels = 1;
  std::vector<int16_t> samples;  // interleaved
  size_t frames() const { return channels ? samples.size() / channels : 0; }
};

// Reads a whole WAV file, converting to s16.
Status ReadWav(const std::string& path, PcmBuffer* out);
// Writes a whole s16 WAV file.
Status WriteWav(const std::string& path, const PcmBuffer& pcm);

// Streaming s16 WAV writer: the header is patched with the final size on
// Close() (and on every Flush()), so a file cut short by a crash still opens.
class WavWriter {
 public:
  WavWriter() = default;
  ~WavWriter();
  WavWriter(const WavWriter&) = delete;
  WavWriter& operator=(const WavWriter&) = delete;
  Status Open(const std::string& path, uint32_t sample_rate, uint32_t channels);
  Status Write(const int16_t* samples, size_t count);  // count = samples, all channels
  Status Flush();
  Status Close();
  bool is_open() const { return file_ != nullptr; }
  uint64_t frames_written() const { return channels_ ? samples_ / channels_ : 0; }

 private:
  Status PatchHeader();
  FILE* file_ = nullptr;
  uint32_t rate_ = 0, channels_ = 1;
  uint64_t samples_ = 0;
};

}  // namespace vb::audio
