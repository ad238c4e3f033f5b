// Framing, detection, hysteresis, wake spotting and history for one stream.
#include "actors/wakevad/voice_pipeline.h"

#include <time.h>

#include <algorithm>
#include <cstring>

namespace vb::wakevad {
namespace {
uint64_t ThreadNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}
uint64_t MsToSamples(int ms) { return uint64_t(std::max(ms, 0)) * kSampleRate / 1000; }
constexpr int kFrameMs = kFrameSamples * 1000 / kSampleRate;
}  // namespace

VoicePipeline::VoicePipeline() = default;

Status VoicePipeline::Init(const PipelineOptions& options, VadFn on_vad, WakeFn on_wake) {
  opt_ = options;
  on_vad_ = std::move(on_vad);
  on_wake_ = std::move(on_wake);
  Status s = MakeDetector(opt_.detector, opt_.detector_options, &detector_);
  if (!s.ok()) return s;
  tracker_ = std::make_unique<VadTracker>(opt_.vad);
  if (opt_.wake_enabled) {
    spotter_ = std::make_unique<WakeSpotter>();
    s = spotter_->Init(opt_.wake);
    if (!s.ok()) return s;
    if (opt_.wake.verify) {
      verifier_ = std::make_unique<WakeVerifier>();
      s = verifier_->Init(opt_.wake);
      if (!s.ok()) return s;
    }
  }
  // Enough for the longest thing handed out: the wake context with a phrase
  // of a few seconds before it, or the pre-roll with its confirmation run.
  const int keep_ms =
      std::max(opt_.context_ms + opt_.context_lead_ms + 4000, opt_.vad.preroll_ms + opt_.vad.min_speech_ms + 1000);
  history_ = std::make_unique<PcmHistory>(MsToSamples(keep_ms));
  pending_.reserve(kFrameSamples);
  return Status::Ok();
}

void VoicePipeline::Resync(uint64_t first_sample) {
  SettleWake(true);
  recent_.clear();
  spotting_ = false;
  spot_until_ = 0;
  if (tracker_) {
    if (auto d = tracker_->End(pending_start_ + pending_.size()); d && on_vad_)
      on_vad_(VadOutput{*d, detector_->name(), {}, 0});
  }
  detector_->Reset();
  if (spotter_) spotter_->Reset(first_sample);
  history_->Reset(first_sample);
  pending_.clear();
  pending_start_ = first_sample;
}

void VoicePipeline::Feed(uint64_t first_sample, std::span<const int16_t> pcm) {
  if (!detector_) return;
  const uint64_t expected = pending_start_ + pending_.size();
  if (!started_) {
    started_ = true;
    pending_start_ = first_sample;
    history_->Reset(first_sample);
    if (spotter_) spotter_->Reset(first_sample);
  } else if (first_sample != expected) {
    if (first_sample > expected && first_sample - expected <= MsToSamples(opt_.max_gap_ms)) {
      ++counters_.gap_fills;
      static const std::vector<int16_t> kZeros(kFrameSamples, 0);
      uint64_t missing = first_sample - expected;
      while (missing > 0) {
        size_t n = size_t(std::min<uint64_t>(missing, kZeros.size()));
        Feed(first_sample - missing, std::span<const int16_t>(kZeros.data(), n));
        missing -= n;
      }
    } else {
      ++counters_.resyncs;
      Resync(first_sample);
    }
  }
  while (!pcm.empty()) {
    size_t take = std::min(pcm.size(), size_t(kFrameSamples) - pending_.size());
    pending_.insert(pending_.end(), pcm.begin(), pcm.begin() + take);
    pcm = pcm.subspan(take);
    if (pending_.size() == size_t(kFrameSamples)) {
      ProcessFrame(pending_start_, pending_);
      pending_start_ += kFrameSamples;
      pending_.clear();
    }
  }
}

void VoicePipeline::ProcessFrame(uint64_t first_sample, std::span<const int16_t> frame) {
  ++counters_.frames;
  history_->Append(frame);

  uint64_t t0 = ThreadNs();
  float p = detector_->Process(frame);
  if (recent_.size() >= 100) recent_.erase(recent_.begin(), recent_.begin() + 50);
  recent_.push_back({first_sample, p >= opt_.vad.threshold});
  auto decision = tracker_->Push(first_sample, int(frame.size()), p);
  uint64_t t1 = ThreadNs();
  counters_.vad_ns += t1 - t0;
  if (decision && on_vad_) {
    VadOutput out{*decision, detector_->name(), {}, 0};
    if (decision->start) {
      uint64_t from =
          decision->sample_index - std::min<uint64_t>(decision->sample_index, MsToSamples(opt_.vad.preroll_ms));
      out.preroll_start = history_->CopySince(from, &out.preroll_pcm);
    }
    on_vad_(out);
  }

  if (!spotter_) return;
  t0 = ThreadNs();
  std::optional<WakeDetection> wake;
  const uint64_t frame_end = first_sample + frame.size();
  if (opt_.spot_all) {
    wake = spotter_->Process(first_sample, frame, tracker_->in_speech());
    ++counters_.spot_frames;
  } else {
    if (p >= opt_.spot_threshold) spot_until_ = frame_end + MsToSamples(opt_.spot_hangover_ms);
    if (frame_end <= spot_until_ || held_wake_) {
      if (!spotting_) {
        // Speech begins: decode from a little before it (the history holds
        // this frame already), as a new utterance of the spotter.
        std::string lead;
        const uint64_t from = history_->CopySince(
            frame_end - std::min<uint64_t>(frame_end, MsToSamples(opt_.spot_lead_ms) + frame.size()), &lead);
        const auto* pcm = reinterpret_cast<const int16_t*>(lead.data());
        const size_t n = lead.size() / 2;
        // Whole frames ending with this one (the history may hold less lead).
        for (size_t off = n % kFrameSamples; off + kFrameSamples <= n && !wake; off += kFrameSamples) {
          wake =
              spotter_->Process(from + off, std::span<const int16_t>(pcm + off, kFrameSamples), tracker_->in_speech());
          ++counters_.spot_frames;
        }
        spotting_ = true;
      } else {
        wake = spotter_->Process(first_sample, frame, tracker_->in_speech());
        ++counters_.spot_frames;
      }
    } else {
      spotting_ = false;
    }
  }
  counters_.wake_ns += ThreadNs() - t0;
  if (wake && on_wake_) {
    SettleWake(true);  // a refractory period shorter than the settle time
    held_wake_ = WakeOutput{*wake, true, {}, 0};
  }
  SettleWake(false);
}

// The verifier re-decodes [start - pad, end + pad]: it runs once the phrase
// end is known, since the spotter fires before the last word is over.
bool VoicePipeline::Verify(WakeDetection* d) {
  const uint64_t t0 = ThreadNs();
  const uint64_t pad = MsToSamples(opt_.wake.verify_pad_ms);
  std::string bytes;
  uint64_t from = d->start_sample - std::min(d->start_sample, pad);
  history_->CopySince(from, &bytes);
  const size_t want =
      size_t(std::min<uint64_t>(d->end_sample + pad, history_->end_index()) - std::min(from, d->end_sample + pad));
  std::vector<int16_t> pcm(std::min(bytes.size() / 2, want));
  std::memcpy(pcm.data(), bytes.data(), pcm.size() * 2);
  d->verify_score = verifier_->Score(pcm, d->end_sample - d->start_sample);
  const bool verified = d->verify_score >= opt_.wake.verify_margin;  // NaN: rejected
  if (!verified) ++counters_.wakes_rejected;
  counters_.wake_ns += ThreadNs() - t0;
  return verified;
}

void VoicePipeline::SettleWake(bool force) {
  if (!held_wake_) return;
  WakeOutput& out = *held_wake_;
  WakeDetection& d = out.detection;
  const uint64_t now = history_->end_index();
  if (opt_.wake_end_settle_ms > 0 && !force) {
    // The first run of quiet frames at or after the estimated end.
    const int need = std::max(1, (opt_.wake_end_quiet_ms + kFrameMs - 1) / kFrameMs);
    int run = 0;
    uint64_t run_start = 0;
    std::optional<uint64_t> end;
    for (const auto& f : recent_) {
      if (f.first_sample + kFrameSamples <= d.end_sample) continue;
      if (f.speech) {
        run = 0;
        continue;
      }
      if (run++ == 0) run_start = f.first_sample;
      if (run >= need) {
        end = std::max(run_start, d.end_sample);
        break;
      }
    }
    if (end) {
      if (*end > d.end_sample) ++counters_.wake_ends_moved;
      d.end_sample = *end;
      if (verifier_ && now < d.end_sample + MsToSamples(opt_.wake.verify_pad_ms) &&
          now < d.detected_at + MsToSamples(opt_.wake_end_settle_ms))
        return;  // the verifier's pad after the phrase is still to come
    } else if (now < d.detected_at + MsToSamples(opt_.wake_end_settle_ms)) {
      return;  // still speaking: wait
    } else {
      ++counters_.wake_ends_unsettled;
    }
  }
  if (verifier_) out.verified = Verify(&d);
  if (!out.verified && !opt_.report_rejected) {
    held_wake_.reset();
    return;
  }
  uint64_t from = std::min(now - std::min(now, MsToSamples(opt_.context_ms)),
                           d.start_sample - std::min(d.start_sample, MsToSamples(opt_.context_lead_ms)));
  out.context_start = history_->CopySince(from, &out.context_pcm);
  WakeOutput ready = std::move(out);
  held_wake_.reset();
  on_wake_(ready);
}

void VoicePipeline::Finish() {
  SettleWake(true);
  if (!tracker_) return;
  if (auto d = tracker_->End(pending_start_ + pending_.size()); d && on_vad_)
    on_vad_(VadOutput{*d, detector_->name(), {}, 0});
}

}  // namespace vb::wakevad
