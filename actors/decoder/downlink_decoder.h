// DownlinkDecoder: the agent's downlink audio (one encoded packet at a time:
// raw Opus 8–48 kHz with 2.5–60 ms frames, PCM s16le chunks, G.711) → PCM
// frames of fixed length at the playback rate, mono, per turn.
//
// - Loss: a gap in packet_index is concealed by Opus PLC (and the packet
//   after the gap supplies in-band FEC when it carries it), up to
//   max_conceal_ms; duplicates and packets older than the last are dropped.
// - Turns: packets of a cancelled turn are dropped, with whatever of that
//   turn was still pending. A packet of a new turn ends the previous one.
// - The end of a turn's audio (end_of_turn_audio, or EndTurn()) emits the
//   last partial frame padded with silence and marked end_of_turn.
// - origin_ns: each frame carries the origin of the packet that supplied its
//   first sample.
//
// Knows nothing of the bus. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "actors/common/resampler.h"
#include "bus/status.h"
#include "vb/v1/audio.pb.h"

struct OpusDecoder;

namespace vb::decoder {

struct DecoderConfig {
  uint32_t output_rate = 16000;  // Hz, mono
  uint32_t frame_ms = 20;
  uint32_t max_conceal_ms = 120;   // longest gap filled by PLC; longer gaps are skipped
  size_t remember_cancelled = 64;  // cancelled turn ids kept to drop their late packets
};

struct DecodedFrame {
  std::vector<int16_t> pcm;   // output_rate, mono, frame_ms long
  uint64_t sample_index = 0;  // within the turn
  int64_t origin_ns = 0;
  bool end_of_turn = false;
};

struct DecoderCounters {
  uint64_t packets = 0;
  uint64_t frames_out = 0;
  uint64_t concealed_packets = 0;  // lost packets filled by PLC or FEC
  uint64_t fec_decodes = 0;        // of those, decoded with in-band FEC (PLC if the packet has none)
  uint64_t skipped_gaps = 0;       // gaps longer than max_conceal_ms
  uint64_t dropped_cancelled = 0;
  uint64_t dropped_late = 0;  // duplicate or out-of-order packet_index
  uint64_t malformed = 0;     // undecodable packet or unknown codec
  uint64_t turns = 0;
};

class DownlinkDecoder {
 public:
  using Emit = std::function<void(const std::string& turn_id, const DecodedFrame& frame)>;

  DownlinkDecoder() = default;
  ~DownlinkDecoder();
  DownlinkDecoder(const DownlinkDecoder&) = delete;
  DownlinkDecoder& operator=(const DownlinkDecoder&) = delete;

  Status Init(const DecoderConfig& config, Emit emit);
  // One packet of turn `turn_id`. Bad packets are counted and dropped;
  // the returned Status says why (for a rate-limited log line).
  Status OnPacket(const v1::EncodedAudio& packet, const std::string& turn_id, int64_t origin_ns);
  // Drops turn_id's pending and future audio ("" = the current turn).
  void CancelTurn(const std::string& turn_id);
  // The agent finished sending turn_id's audio: emit what is pending.
  void EndTurn(const std::string& turn_id);

  bool IsCancelled(const std::string& turn_id) const;
  const std::string& current_turn() const { return turn_; }
  const DecoderCounters& counters() const { return counters_; }
  size_t frame_samples() const { return frame_samples_; }

 private:
  void StartTurn(const std::string& turn_id);
  void FinishTurn();
  Status DecodeOpus(const v1::EncodedAudio& p, int64_t origin_ns);
  Status DecodePcm(const v1::EncodedAudio& p, int64_t origin_ns);
  Status EnsureOpus();
  // Appends decoded mono samples at `rate` to the framer.
  void Push(const int16_t* pcm, size_t n, uint32_t rate, int64_t origin_ns);
  void EmitFrames(bool flush_partial);

  DecoderConfig config_;
  Emit emit_;
  size_t frame_samples_ = 320;

  std::string turn_;
  bool in_turn_ = false;
  bool has_last_index_ = false;
  uint64_t last_index_ = 0;
  int last_packet_samples_ = 0;  // at the Opus decoder's rate
  OpusDecoder* opus_ = nullptr;
  uint32_t opus_rate_ = 0;      // the Opus decoder's rate (output rate if Opus can, else 48000)
  audio::Resampler resampler_;  // decoded rate → output rate
  std::vector<int16_t> scratch_, resampled_;
  std::vector<int16_t> pending_;
  // (offset in pending_, origin_ns) where each packet's samples begin.
  std::deque<std::pair<int64_t, int64_t>> origins_;
  uint64_t turn_samples_out_ = 0;
  std::deque<std::string> cancelled_;
  DecoderCounters counters_;
};

}  // namespace vb::decoder
