// WAV reading and writing (see wav.h).
#include "actors/common/wav.h"

#include <cstring>

namespace vb::audio {
namespace {

uint32_t Le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
uint16_t Le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}

void MakeHeader(uint8_t h[44], uint32_t rate, uint32_t channels, uint64_t data_bytes) {
  uint32_t bytes = data_bytes > 0xFFFFFFFFull - 36 ? 0xFFFFFFFFu - 36 : uint32_t(data_bytes);
  memcpy(h, "RIFF", 4);
  Put32(h + 4, 36 + bytes);
  memcpy(h + 8, "WAVEfmt ", 8);
  Put32(h + 16, 16);
  Put16(h + 20, 1);
  Put16(h + 22, uint16_t(channels));
  Put32(h + 24, rate);
  Put32(h + 28, rate * channels * 2);
  Put16(h + 32, uint16_t(channels * 2));
  Put16(h + 34, 16);
  memcpy(h + 36, "data", 4);
  Put32(h + 40, bytes);
}

}  // namespace

Status ReadWav(const std::string& path, PcmBuffer* out) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return Status::Io(path + ": cannot open: " + strerror(errno));
  std::vector<uint8_t> data;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
  fclose(f);
  if (data.size() < 12 || memcmp(data.data(), "RIFF", 4) != 0 || memcmp(data.data() + 8, "WAVE", 4) != 0)
    return Status::Invalid(path + ": not a RIFF/WAVE file");
  uint16_t format = 0, channels = 0, bits = 0;
  uint32_t rate = 0;
  const uint8_t* pcm = nullptr;
  size_t pcm_bytes = 0;
  size_t pos = 12;
  while (pos + 8 <= data.size()) {
    uint32_t size = Le32(&data[pos + 4]);
    const uint8_t* body = &data[pos + 8];
    size_t avail = data.size() - pos - 8;
    if (!memcmp(&data[pos], "fmt ", 4) && size >= 16 && avail >= 16) {
      format = Le16(body);
      channels = Le16(body + 2);
      rate = Le32(body + 4);
      bits = Le16(body + 14);
      if (format == 0xFFFE && size >= 26 && avail >= 26) format = Le16(body + 24);  // extensible
    } else if (!memcmp(&data[pos], "data", 4)) {
      pcm = body;
      pcm_bytes = std::min<size_t>(size, avail);  // streamed files may say 0 or too much
      if (size == 0 || size == 0xFFFFFFFF) pcm_bytes = avail;
      break;
    }
    pos += 8 + size_t(size) + (size & 1);  // in size_t: a size near 4 GiB must not wrap to 0
  }
  if (!pcm || channels == 0 || rate == 0) return Status::Invalid(path + ": no fmt or data chunk");
  if (!((format == 1 && (bits == 8 || bits == 16 || bits == 24 || bits == 32)) || (format == 3 && bits == 32)))
    return Status::Invalid(path + ": unsupported WAV format " + std::to_string(format) + "/" + std::to_string(bits) +
                           " bit");
  out->sample_rate = rate;
  out->channels = channels;
  size_t width = bits / 8;
  size_t count = pcm_bytes / width;
  count -= count % channels;
  out->samples.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* p = pcm + i * width;
    int32_t v;
    if (format == 3) {
      float fl;
      memcpy(&fl, p, 4);
      v = int32_t(std::max(-1.0f, std::min(1.0f, fl)) * 32767.0f);
    } else if (bits == 8) {
      v = (int32_t(p[0]) - 128) << 8;
    } else if (bits == 16) {
      v = int16_t(Le16(p));
    } else if (bits == 24) {
      v = int32_t((uint32_t(p[0]) << 8) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 24)) >> 16;
    } else {
      v = int32_t(Le32(p)) >> 16;
    }
    out->samples[i] = int16_t(v);
  }
  return Status::Ok();
}

Status WriteWav(const std::string& path, const PcmBuffer& pcm) {
  WavWriter w;
  if (Status st = w.Open(path, pcm.sample_rate, pcm.channels); !st.ok()) return st;
  if (Status st = w.Write(pcm.samples.data(), pcm.samples.size()); !st.ok()) return st;
  return w.Close();
}

WavWriter::~WavWriter() { Close(); }

Status WavWriter::Open(const std::string& path, uint32_t sample_rate, uint32_t channels) {
  Close();
  file_ = fopen(path.c_str(), "wb");
  if (!file_) return Status::Io(path + ": cannot create: " + strerror(errno));
  rate_ = sample_rate;
  channels_ = channels;
  samples_ = 0;
  return PatchHeader();
}

Status WavWriter::PatchHeader() {
  uint8_t h[44];
  MakeHeader(h, rate_, channels_, samples_ * 2);
  long at = ftell(file_);
  fseek(file_, 0, SEEK_SET);
  bool ok = fwrite(h, 1, 44, file_) == 44;
  if (at > 44) fseek(file_, at, SEEK_SET);
  return ok ? Status::Ok() : Status::Io("WAV header write failed");
}

Status WavWriter::Write(const int16_t* samples, size_t count) {
  if (!file_) return Status::Io("WAV writer not open");
  // WAV is little-endian, as is every machine we build for.
  if (fwrite(samples, 2, count, file_) != count) return Status::Io(std::string("WAV write failed: ") + strerror(errno));
  samples_ += count;
  return Status::Ok();
}

Status WavWriter::Flush() {
  if (!file_) return Status::Ok();
  Status st = PatchHeader();
  fflush(file_);
  return st;
}

Status WavWriter::Close() {
  if (!file_) return Status::Ok();
  Status st = PatchHeader();
  if (fclose(file_) != 0 && st.ok()) st = Status::Io("WAV close failed");
  file_ = nullptr;
  return st;
}

}  // namespace vb::audio
