// Offline tuning of the front end and the wake word/VAD on a recording:
// the audio.mic and audio.ref of an MCAP recording (`vb sniff record`) run
// through FrontEnd (vb-afe's bus-free core) and its output through
// VoicePipeline (vb-wakevad's), in one process, driven by the recording's
// own times instead of a live bus — so the same recording and the same
// config always give bit-identical audio.clean and the same events.
//
// The one rule that replaces the live actor's wall-clock wait for the
// reference: before a mic frame is processed, every audio.ref frame the
// recorder received (log_time) no later than that mic frame's log_time +
// afe.ref_wait_ms is pushed — the reference the live actor had at the
// latest when its wait for that frame ended. Frames are taken in log_time
// order (file order breaks ties).
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/afe/front_end.h"
#include "actors/wakevad/voice_pipeline.h"
#include "bus/status.h"

namespace vb::tune {

// What the actors would run with: vb-afe's and vb-wakevad's config.
struct TuneConfig {
  afe::FrontEndConfig afe;
  int ref_wait_ms = 40;
  wakevad::PipelineOptions wakevad;
};

// The mic and reference frames of one device, from a recording.
struct RecordedFrame {
  uint64_t log_ns = 0;   // when the recorder received it
  int64_t stamp_ns = 0;  // capture (mic) or play (ref) time, bus clock
  uint64_t sample_index = 0;
  int channels = 1, sample_rate = 16000, reference_channel = -1;
  std::vector<int16_t> pcm;  // interleaved
};
struct RecordedAudio {
  std::string device;
  std::vector<RecordedFrame> mic, ref;  // each in log_time order
  // What the live vb-afe published (audio.clean/<device>, first channel), by
  // sample_index (= its mic frame's): empty if not recorded.
  std::map<uint64_t, std::vector<int16_t>> live_clean;
  uint64_t bad_frames = 0;  // undecodable or inconsistent, skipped
  std::string problems;     // the reader's, for humans
};

// Reads audio.mic/<device> and audio.ref/<device>; device empty = the first
// device with an audio.mic channel. Fails if the file is unreadable or has
// no mic audio for the device.
Status ReadRecordedAudio(const std::string& path, const std::string& device, RecordedAudio* out);

struct VadSegment {
  double start_s = 0, end_s = -1;  // from the first mic sample; end -1: open at the end
};
struct WakeHit {
  double time_s = 0;  // phrase end
  double score = 0, verify_score = 0;
};
struct Levels {
  double p50 = -120, p95 = -120;  // dBFS of 20 ms frames' RMS
  uint64_t frames = 0;
};
struct TuneResult {
  std::string backend;
  bool live = false;          // figures of the recorded audio.clean (CleanSource::kLive)
  uint64_t live_missing = 0;  // kLive: mic frames with no recorded audio.clean
  uint64_t mic_frames = 0, ref_frames = 0, bad_frames = 0;
  uint64_t clean_samples = 0;
  std::string clean_hash;  // FNV-1a 64 of audio.clean's s16le bytes, hex
  // Mic frames during which the reference playing is above afe.gate_far_dbfs.
  uint64_t ref_frames_playing = 0;
  double erle_db = 0;  // mic power / clean power over those frames (NaN: the mic was silent)
  Levels clean_speaking, clean_agent_playing;
  uint64_t gated_blocks = 0, late_ref_gated_blocks = 0, delay_changes = 0;
  double bulk_delay_ms = 0;
  std::vector<VadSegment> vad;
  std::vector<WakeHit> wakes;
  std::vector<int16_t> clean;  // the whole audio.clean, mono 16 kHz
};

// Runs the front end and the voice pipeline over `audio` with `config`.
// kLive: the voice pipeline hears the recorded audio.clean instead (what the
// live front end made), mic frames without one are skipped; the front end's
// own counters (gated blocks, bulk delay) are then not reported.
enum class CleanSource { kFrontEnd, kLive };
Status RunTune(const RecordedAudio& audio, const TuneConfig& config, TuneResult* out,
               CleanSource source = CleanSource::kFrontEnd);

// FNV-1a 64 of the samples as s16le, 16 hex digits.
std::string HashPcm(const std::vector<int16_t>& pcm);

}  // namespace vb::tune
