// Implementation of audio_codec.h. G.711 follows the ITU reference
// (segment search); Opus and resampling come from libopus and speexdsp.
#include "tools/coze-sim/audio_codec.h"

#include <opus/opus.h>
#include <speex/speex_resampler.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace vb::cozesim {
namespace {

int SegmentOf(int v, const int* ends, int n) {
  for (int i = 0; i < n; ++i)
    if (v <= ends[i]) return i;
  return n;
}
const int kSegAEnd[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};  // 13-bit input

int16_t Clamp16(int v) { return int16_t(std::clamp(v, -32768, 32767)); }

bool ValidOpusRate(int r) { return r == 8000 || r == 12000 || r == 16000 || r == 24000 || r == 48000; }

}  // namespace

uint8_t LinearToAlaw(int16_t pcm) {
  int v = pcm >> 3;
  int mask;
  if (v >= 0) {
    mask = 0xD5;
  } else {
    mask = 0x55;
    v = -v - 1;
  }
  int seg = SegmentOf(v, kSegAEnd, 8);
  if (seg >= 8) return uint8_t(0x7F ^ mask);
  int aval = seg << 4;
  aval |= (seg < 2) ? (v >> 1) & 0x0F : (v >> seg) & 0x0F;
  return uint8_t(aval ^ mask);
}

int16_t AlawToLinear(uint8_t a) {
  a ^= 0x55;
  int t = (a & 0x0F) << 4;
  int seg = (a & 0x70) >> 4;
  switch (seg) {
    case 0: t += 8; break;
    case 1: t += 0x108; break;
    default: t += 0x108; t <<= seg - 1;
  }
  return int16_t((a & 0x80) ? t : -t);
}

uint8_t LinearToUlaw(int16_t pcm) {
  constexpr int kBias = 0x84, kClip = 8159;
  int v = pcm >> 2;
  int mask;
  if (v < 0) {
    v = -v;
    mask = 0x7F;
  } else {
    mask = 0xFF;
  }
  if (v > kClip) v = kClip;
  v += kBias >> 2;
  static const int ends[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
  int seg = SegmentOf(v, ends, 8);
  if (seg >= 8) return uint8_t(0x7F ^ mask);
  int uval = (seg << 4) | ((v >> (seg + 1)) & 0xF);
  return uint8_t(uval ^ mask);
}

int16_t UlawToLinear(uint8_t u) {
  u = ~u;
  int t = ((u & 0x0F) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return int16_t((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

// ---------------------------------------------------------------- Resampler

Resampler::Resampler(int in_rate, int out_rate) : in_rate_(in_rate), out_rate_(out_rate) {
  if (in_rate != out_rate) {
    int err = 0;
    st_ = speex_resampler_init(1, in_rate, out_rate, 5, &err);
    if (err != 0) st_ = nullptr;
  }
}

Resampler::~Resampler() {
  if (st_) speex_resampler_destroy(st_);
}

void Resampler::Process(const int16_t* in, size_t n, std::vector<int16_t>* out) {
  if (!st_) {
    if (in_rate_ == out_rate_) out->insert(out->end(), in, in + n);
    return;
  }
  while (n > 0) {
    spx_uint32_t in_len = spx_uint32_t(std::min<size_t>(n, 1u << 16));
    spx_uint32_t out_cap = spx_uint32_t(uint64_t(in_len) * out_rate_ / in_rate_ + 64);
    size_t base = out->size();
    out->resize(base + out_cap);
    spx_uint32_t out_len = out_cap;
    speex_resampler_process_int(st_, 0, in, &in_len, out->data() + base, &out_len);
    out->resize(base + out_len);
    if (in_len == 0 && out_len == 0) break;  // defensive: no progress
    in += in_len;
    n -= in_len;
  }
}

void Resampler::Flush(std::vector<int16_t>* out) {
  if (!st_) return;
  std::vector<int16_t> zeros(size_t(speex_resampler_get_input_latency(st_)), 0);
  size_t before = out->size();
  Process(zeros.data(), zeros.size(), out);
  // Keep only as much tail as the latency represents in output samples.
  size_t keep = size_t(speex_resampler_get_output_latency(st_));
  if (out->size() > before + keep) out->resize(before + keep);
}

std::vector<int16_t> Resampler::Convert(const std::vector<int16_t>& in, int in_rate, int out_rate) {
  if (in_rate == out_rate) return in;
  Resampler r(in_rate, out_rate);
  std::vector<int16_t> out;
  out.reserve(in.size() * size_t(out_rate) / size_t(in_rate) + 128);
  r.Process(in.data(), in.size(), &out);
  r.Flush(&out);
  // Skip the filter delay so the output lines up with the input.
  if (r.st_) {
    size_t delay = size_t(speex_resampler_get_output_latency(r.st_));
    if (out.size() > delay) out.erase(out.begin(), out.begin() + long(delay));
  }
  return out;
}

// ------------------------------------------------------------- InputDecoder

InputDecoder::InputDecoder(const InputAudioConfig& cfg) : cfg_(cfg) {
  if (cfg_.codec == "g711a" || cfg_.codec == "g711u") cfg_.sample_rate = 8000;
  if (cfg_.channel != 2) cfg_.channel = 1;
  if (cfg_.codec == "opus") {
    int err = 0;
    opus_ = opus_decoder_create(kInternalRate, cfg_.channel, &err);
    if (err != OPUS_OK) opus_ = nullptr;
  } else {
    resampler_ = std::make_unique<Resampler>(cfg_.sample_rate, kInternalRate);
  }
}

InputDecoder::~InputDecoder() {
  if (opus_) opus_decoder_destroy(opus_);
}

void InputDecoder::EmitAtRate(const std::vector<int16_t>& mono, int rate, std::vector<int16_t>* out) {
  if (rate == kInternalRate || !resampler_) {
    out->insert(out->end(), mono.begin(), mono.end());
  } else {
    resampler_->Process(mono.data(), mono.size(), out);
  }
}

bool InputDecoder::Feed(const std::string& bytes, std::vector<int16_t>* out, std::string* error) {
  if (bytes.empty()) return true;
  if (first_chunk_) {
    first_chunk_ = false;
    if (bytes.size() >= 4 && bytes.compare(0, 4, "OggS") == 0) ogg_ = true;
  }
  if (cfg_.codec == "opus") {
    if (ogg_) return FeedOgg(bytes, out, error);
    return FeedOpusPacket(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out, error);
  }
  if (cfg_.codec == "g711a" || cfg_.codec == "g711u") {
    std::vector<int16_t> mono(bytes.size());
    bool alaw = cfg_.codec == "g711a";
    for (size_t i = 0; i < bytes.size(); ++i)
      mono[i] = alaw ? AlawToLinear(uint8_t(bytes[i])) : UlawToLinear(uint8_t(bytes[i]));
    EmitAtRate(mono, 8000, out);
    return true;
  }
  return FeedPcm(bytes, out, error);
}

bool InputDecoder::FeedPcm(const std::string& bytes, std::vector<int16_t>* out, std::string* error) {
  std::string data = carry_ + bytes;
  carry_.clear();
  // A WAV stream starts with a RIFF header; skip to the data chunk.
  if (data.size() >= 12 && data.compare(0, 4, "RIFF") == 0 && data.compare(8, 4, "WAVE") == 0) {
    size_t pos = 12;
    bool found = false;
    while (pos + 8 <= data.size()) {
      uint32_t len;
      std::memcpy(&len, data.data() + pos + 4, 4);
      if (data.compare(pos, 4, "data") == 0) {
        pos += 8;
        found = true;
        break;
      }
      // In size_t: in 32 bits a length near 4 GiB wrapped to 0 and the walk never moved.
      pos += size_t(8) + size_t(len) + size_t(len & 1);
    }
    if (!found) {
      *error = "wav header without data chunk";
      return false;
    }
    data.erase(0, pos);
  }
  int bytes_per_sample = cfg_.bit_depth == 8 ? 1 : cfg_.bit_depth == 24 ? 3 : 2;
  size_t frame = size_t(bytes_per_sample) * size_t(cfg_.channel);
  size_t n = data.size() / frame;
  carry_ = data.substr(n * frame);
  std::vector<int16_t> mono(n);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t i = 0; i < n; ++i) {
    int acc = 0;
    for (int c = 0; c < cfg_.channel; ++c) {
      const uint8_t* s = p + (i * size_t(cfg_.channel) + size_t(c)) * size_t(bytes_per_sample);
      int v;
      if (bytes_per_sample == 1) {
        v = (int(s[0]) - 128) << 8;
      } else if (bytes_per_sample == 2) {
        v = int16_t(uint16_t(s[0] | (s[1] << 8)));
      } else {
        v = int16_t(uint16_t(s[1] | (s[2] << 8)));  // keep the top 16 bits
      }
      acc += v;
    }
    mono[i] = Clamp16(acc / cfg_.channel);
  }
  EmitAtRate(mono, cfg_.sample_rate, out);
  return true;
}

bool InputDecoder::FeedOpusPacket(const uint8_t* p, size_t n, std::vector<int16_t>* out, std::string* error) {
  if (!opus_) {
    *error = "opus decoder unavailable";
    return false;
  }
  std::vector<int16_t> pcm(size_t(kInternalRate) * 120 / 1000 * size_t(cfg_.channel));
  int got = opus_decode(opus_, p, opus_int32(n), pcm.data(), int(pcm.size() / size_t(cfg_.channel)), 0);
  if (got < 0) {
    *error = std::string("opus decode failed: ") + opus_strerror(got);
    return false;
  }
  if (cfg_.channel == 2) {
    for (int i = 0; i < got; ++i) out->push_back(Clamp16((pcm[size_t(2 * i)] + pcm[size_t(2 * i + 1)]) / 2));
  } else {
    out->insert(out->end(), pcm.begin(), pcm.begin() + got);
  }
  return true;
}

bool InputDecoder::FeedOgg(const std::string& bytes, std::vector<int16_t>* out, std::string* error) {
  carry_ += bytes;
  size_t pos = 0;
  bool ok = true;
  while (carry_.size() - pos >= 27) {
    if (carry_.compare(pos, 4, "OggS") != 0) {
      *error = "bad ogg page";
      carry_.clear();
      return false;
    }
    int nseg = uint8_t(carry_[pos + 26]);
    if (carry_.size() - pos < size_t(27 + nseg)) break;
    size_t body = 0;
    for (int i = 0; i < nseg; ++i) body += uint8_t(carry_[pos + 27 + size_t(i)]);
    if (carry_.size() - pos < 27 + size_t(nseg) + body) break;
    size_t data = pos + 27 + size_t(nseg);
    for (int i = 0; i < nseg; ++i) {
      int len = uint8_t(carry_[pos + 27 + size_t(i)]);
      ogg_packet_.append(carry_, data, size_t(len));
      data += size_t(len);
      if (len < 255) {
        // Packets 0 and 1 are OpusHead and OpusTags.
        if (ogg_packets_seen_++ >= 2 && !ogg_packet_.empty()) {
          ok = FeedOpusPacket(reinterpret_cast<const uint8_t*>(ogg_packet_.data()), ogg_packet_.size(), out, error) &&
               ok;
        }
        ogg_packet_.clear();
      }
    }
    pos = data;
  }
  carry_.erase(0, pos);
  return ok;
}

// ------------------------------------------------------------ OutputEncoder

double OutputAudioConfig::EffectiveFrameMs() const {
  if (frame_size_ms > 0) return frame_size_ms;
  return codec == "opus" ? 10.0 : 100.0;
}

OutputEncoder::OutputEncoder(const OutputAudioConfig& cfg) : cfg_(cfg) {
  rate_ = cfg_.sample_rate;
  if (cfg_.codec == "g711a" || cfg_.codec == "g711u") rate_ = 8000;
  double ms = cfg_.EffectiveFrameMs();
  if (cfg_.codec == "opus") {
    if (!ValidOpusRate(rate_)) rate_ = 24000;
    static const double kAllowed[] = {2.5, 5, 10, 20, 40, 60};
    if (std::find(std::begin(kAllowed), std::end(kAllowed), ms) == std::end(kAllowed)) ms = 10;
    int err = 0;
    opus_ = opus_encoder_create(rate_, 1, OPUS_APPLICATION_VOIP, &err);
    if (err != OPUS_OK) {
      opus_ = nullptr;
      ok_ = false;
    } else {
      opus_encoder_ctl(opus_, OPUS_SET_BITRATE(cfg_.bitrate > 0 ? cfg_.bitrate : 48000));
      opus_encoder_ctl(opus_, OPUS_SET_VBR(cfg_.use_cbr ? 0 : 1));
      opus_encoder_ctl(opus_, OPUS_SET_COMPLEXITY(3));  // capacity matters more than quality here
    }
  }
  frame_samples_ = std::max(1, int(std::lround(rate_ * ms / 1000.0)));
}

OutputEncoder::~OutputEncoder() {
  if (opus_) opus_encoder_destroy(opus_);
}

void OutputEncoder::Append(const std::vector<int16_t>& pcm, int rate) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  std::vector<int16_t> conv = Resampler::Convert(pcm, rate, rate_);
  buf_.insert(buf_.end(), conv.begin(), conv.end());
}

void OutputEncoder::Clear() {
  buf_.clear();
  pos_ = 0;
}

std::string OutputEncoder::NextFrame() {
  size_t n = std::min(size_t(frame_samples_), buf_.size() - pos_);
  const int16_t* src = buf_.data() + pos_;
  pos_ += n;
  std::string out;
  if (cfg_.codec == "opus" && opus_) {
    std::vector<int16_t> frame(size_t(frame_samples_), 0);
    std::copy(src, src + n, frame.begin());
    unsigned char pkt[1500];
    int len = opus_encode(opus_, frame.data(), frame_samples_, pkt, sizeof pkt);
    if (len > 0) out.assign(reinterpret_cast<char*>(pkt), size_t(len));
  } else if (cfg_.codec == "g711a" || cfg_.codec == "g711u") {
    out.resize(n);
    bool alaw = cfg_.codec == "g711a";
    for (size_t i = 0; i < n; ++i) out[i] = char(alaw ? LinearToAlaw(src[i]) : LinearToUlaw(src[i]));
  } else {
    out.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
      out[2 * i] = char(uint16_t(src[i]) & 0xff);
      out[2 * i + 1] = char(uint16_t(src[i]) >> 8);
    }
  }
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return out;
}

}  // namespace vb::cozesim
