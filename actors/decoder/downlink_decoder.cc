// Downlink decoding, concealment and framing (see downlink_decoder.h).
#include "actors/decoder/downlink_decoder.h"

#include <opus/opus.h>

#include <algorithm>
#include <cmath>

namespace vb::decoder {
namespace {

bool OpusRate(uint32_t r) { return r == 8000 || r == 12000 || r == 16000 || r == 24000 || r == 48000; }

int16_t ALawToLinear(uint8_t a) {
  a ^= 0x55;
  int t = (a & 0x0F) << 4;
  int seg = (a & 0x70) >> 4;
  if (seg == 0) t += 8;
  else if (seg == 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return int16_t((a & 0x80) ? t : -t);
}

int16_t ULawToLinear(uint8_t u) {
  u = ~u;
  int t = ((u & 0x0F) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return int16_t((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

}  // namespace

DownlinkDecoder::~DownlinkDecoder() {
  if (opus_) opus_decoder_destroy(opus_);
}

Status DownlinkDecoder::Init(const DecoderConfig& config, Emit emit) {
  if (config.output_rate < 8000 || config.output_rate > 48000) return Status::Invalid("output_rate must be 8000…48000");
  if (config.frame_ms == 0) return Status::Invalid("frame_ms must be positive");
  config_ = config;
  emit_ = std::move(emit);
  frame_samples_ = size_t(config.output_rate) * config.frame_ms / 1000;
  opus_rate_ = OpusRate(config.output_rate) ? config.output_rate : 48000;
  return Status::Ok();
}

bool DownlinkDecoder::IsCancelled(const std::string& turn_id) const {
  return std::find(cancelled_.begin(), cancelled_.end(), turn_id) != cancelled_.end();
}

void DownlinkDecoder::CancelTurn(const std::string& turn_id) {
  std::string id = turn_id.empty() ? turn_ : turn_id;
  if (turn_id.empty() && !in_turn_) return;
  if (!IsCancelled(id)) {
    cancelled_.push_back(id);
    while (cancelled_.size() > config_.remember_cancelled) cancelled_.pop_front();
  }
  if (in_turn_ && id == turn_) {
    pending_.clear();
    origins_.clear();
    in_turn_ = false;
  }
}

void DownlinkDecoder::EndTurn(const std::string& turn_id) {
  if (in_turn_ && (turn_id.empty() || turn_id == turn_)) FinishTurn();
}

void DownlinkDecoder::StartTurn(const std::string& turn_id) {
  // Copied first: FinishTurn() emits, and an emitter that publishes may
  // reuse the storage turn_id refers to (issue 12: the bus header did).
  std::string id = turn_id;
  if (in_turn_) FinishTurn();
  turn_ = std::move(id);
  in_turn_ = true;
  has_last_index_ = false;
  last_packet_samples_ = 0;
  turn_samples_out_ = 0;
  pending_.clear();
  origins_.clear();
  resampler_ = audio::Resampler();
  // A fresh Opus state: the new turn is a new stream.
  if (opus_) opus_decoder_ctl(opus_, OPUS_RESET_STATE);
  ++counters_.turns;
}

void DownlinkDecoder::FinishTurn() {
  EmitFrames(/*flush_partial=*/true);
  in_turn_ = false;
}

Status DownlinkDecoder::OnPacket(const v1::EncodedAudio& p, const std::string& turn_id, int64_t origin_ns) {
  if (IsCancelled(turn_id)) {
    ++counters_.dropped_cancelled;
    return Status::Ok();
  }
  if (!in_turn_ || turn_id != turn_) {
    // A finished turn does not restart from a stray late packet.
    if (!in_turn_ && turn_id == turn_ && has_last_index_ && p.packet_index() <= last_index_) {
      ++counters_.dropped_late;
      return Status::Ok();
    }
    StartTurn(turn_id);
  }
  if (has_last_index_ && p.packet_index() <= last_index_) {
    ++counters_.dropped_late;
    return Status::Ok();
  }
  ++counters_.packets;
  Status st;
  switch (p.codec()) {
    case v1::CODEC_OPUS: st = DecodeOpus(p, origin_ns); break;
    case v1::CODEC_PCM_S16LE:
    case v1::CODEC_G711A:
    case v1::CODEC_G711U: st = DecodePcm(p, origin_ns); break;
    default: st = Status::Invalid("unknown codec " + std::to_string(int(p.codec())));
  }
  if (!st.ok()) ++counters_.malformed;
  has_last_index_ = true;
  last_index_ = p.packet_index();
  EmitFrames(false);
  if (p.end_of_turn_audio()) FinishTurn();
  return st;
}

Status DownlinkDecoder::EnsureOpus() {
  if (opus_) return Status::Ok();
  int err = 0;
  opus_ = opus_decoder_create(int32_t(opus_rate_), 1, &err);
  if (!opus_ || err != OPUS_OK) {
    opus_ = nullptr;
    return Status::Internal(std::string("opus_decoder_create: ") + opus_strerror(err));
  }
  return Status::Ok();
}

Status DownlinkDecoder::DecodeOpus(const v1::EncodedAudio& p, int64_t origin_ns) {
  if (Status st = EnsureOpus(); !st.ok()) return st;
  const auto* data = reinterpret_cast<const unsigned char*>(p.data().data());
  const int len = int(p.data().size());
  if (len == 0) return Status::Invalid("empty Opus packet");
  const int max_samples = int(opus_rate_) * 120 / 1000;
  int samples = opus_decoder_get_nb_samples(opus_, data, len);
  if (samples <= 0 || samples > max_samples) return Status::Invalid("malformed Opus packet (TOC)");
  scratch_.resize(size_t(max_samples));

  if (has_last_index_ && p.packet_index() > last_index_ + 1) {
    uint64_t missing = p.packet_index() - last_index_ - 1;
    int per = last_packet_samples_ > 0 ? last_packet_samples_ : samples;
    uint64_t cap = uint64_t(opus_rate_) * config_.max_conceal_ms / 1000 / uint64_t(per);
    if (missing > cap) {
      ++counters_.skipped_gaps;
      opus_decoder_ctl(opus_, OPUS_RESET_STATE);
    } else {
      for (uint64_t i = 0; i < missing; ++i) {
        bool fec = i + 1 == missing;  // the packet after the gap may carry its predecessor
        int n = fec ? opus_decode(opus_, data, len, scratch_.data(), per, 1)
                    : opus_decode(opus_, nullptr, 0, scratch_.data(), per, 0);
        if (n <= 0) break;
        ++counters_.concealed_packets;
        if (fec) ++counters_.fec_decodes;
        Push(scratch_.data(), size_t(n), opus_rate_, origin_ns);
      }
    }
  }
  int n = opus_decode(opus_, data, len, scratch_.data(), max_samples, 0);
  if (n < 0) return Status::Invalid(std::string("opus_decode: ") + opus_strerror(n));
  last_packet_samples_ = n;
  Push(scratch_.data(), size_t(n), opus_rate_, origin_ns);
  return Status::Ok();
}

Status DownlinkDecoder::DecodePcm(const v1::EncodedAudio& p, int64_t origin_ns) {
  const std::string& d = p.data();
  uint32_t channels = p.channels() ? p.channels() : 1;
  std::vector<int16_t> interleaved;
  if (p.codec() == v1::CODEC_PCM_S16LE) {
    if (d.size() % (2 * channels)) return Status::Invalid("PCM chunk is not whole s16 frames");
    interleaved.resize(d.size() / 2);
    std::copy_n(d.data(), d.size(), reinterpret_cast<char*>(interleaved.data()));
  } else {
    interleaved.resize(d.size());
    for (size_t i = 0; i < d.size(); ++i)
      interleaved[i] = p.codec() == v1::CODEC_G711A ? ALawToLinear(uint8_t(d[i])) : ULawToLinear(uint8_t(d[i]));
    if (interleaved.size() % channels) return Status::Invalid("G.711 chunk is not whole frames");
  }
  uint32_t rate = p.sample_rate() ? p.sample_rate() : (p.codec() == v1::CODEC_PCM_S16LE ? 16000 : 8000);
  if (rate < 4000 || rate > 192000 || channels > 8) return Status::Invalid("unsupported PCM rate/channels");
  size_t frames = interleaved.size() / channels;
  if (channels == 1) {
    Push(interleaved.data(), frames, rate, origin_ns);
  } else {
    std::vector<int16_t> mono;
    audio::MixToMono(interleaved.data(), frames, channels, 0, channels, &mono);
    Push(mono.data(), frames, rate, origin_ns);
  }
  return Status::Ok();
}

void DownlinkDecoder::Push(const int16_t* pcm, size_t n, uint32_t rate, int64_t origin_ns) {
  if (n == 0) return;
  origins_.emplace_back(int64_t(pending_.size()), origin_ns);
  if (rate == config_.output_rate) {
    pending_.insert(pending_.end(), pcm, pcm + n);
    return;
  }
  if (resampler_.in_rate() != rate || resampler_.out_rate() != config_.output_rate)
    resampler_.Init(rate, config_.output_rate, 1);
  resampler_.Process(pcm, n, &pending_);
}

void DownlinkDecoder::EmitFrames(bool flush_partial) {
  if (!in_turn_) return;
  DecodedFrame f;
  auto emit_one = [&](bool last) {
    size_t take = std::min(pending_.size(), frame_samples_);
    f.pcm.assign(pending_.begin(), pending_.begin() + ptrdiff_t(take));
    f.pcm.resize(frame_samples_, 0);
    f.origin_ns = origins_.empty() ? 0 : origins_.front().second;
    f.sample_index = turn_samples_out_;
    f.end_of_turn = last;
    pending_.erase(pending_.begin(), pending_.begin() + ptrdiff_t(take));
    for (auto& o : origins_) o.first -= int64_t(take);
    while (origins_.size() > 1 && origins_[1].first <= 0) origins_.pop_front();
    if (!origins_.empty() && origins_.front().first < 0) origins_.front().first = 0;
    if (pending_.empty()) origins_.clear();
    turn_samples_out_ += frame_samples_;
    ++counters_.frames_out;
    emit_(turn_, f);
  };
  while (pending_.size() >= frame_samples_) emit_one(flush_partial && pending_.size() == frame_samples_);
  if (flush_partial && (!pending_.empty() || f.pcm.empty())) emit_one(true);
}

}  // namespace vb::decoder
