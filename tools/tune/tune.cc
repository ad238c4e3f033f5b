// The offline tuning run (see tune.h).
#include "tools/tune/tune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tools/sniffer/mcap_reader.h"
#include "tools/sniffer/recording.h"
#include "vb/v1/audio.pb.h"
#include "vb/v1/header.pb.h"

namespace vb::tune {
namespace {

constexpr int kRate = 16000;

// "audio.mic/local" → ("audio.mic", "local").
bool SplitTopic(const std::string& topic, std::string* base, std::string* device) {
  size_t slash = topic.find('/');
  if (slash == std::string::npos) return false;
  *base = topic.substr(0, slash);
  *device = topic.substr(slash + 1);
  return true;
}

bool DecodeFrame(std::string_view data, uint64_t log_ns, bool mic, RecordedFrame* f) {
  std::string_view header_bytes, payload_bytes;
  if (!sniff::DecodeRecorded(data, &header_bytes, &payload_bytes)) return false;
  v1::Header h;
  v1::AudioFrame a;
  if (!h.ParseFromArray(header_bytes.data(), int(header_bytes.size())) ||
      !a.ParseFromArray(payload_bytes.data(), int(payload_bytes.size())))
    return false;
  const int ch = int(a.channels());
  if (ch < 1 || ch > 8 || a.sample_rate() == 0 || a.pcm().empty() || a.pcm().size() % (2 * size_t(ch))) return false;
  f->log_ns = log_ns;
  // As vb-afe: the mic's capture time is play_ns, else the header's origin.
  f->stamp_ns = a.play_ns() > 0 ? a.play_ns() : (mic ? h.origin_ns() : 0);
  if (f->stamp_ns <= 0) return false;  // a reference without play_ns is unusable
  f->sample_index = a.sample_index();
  f->channels = ch;
  f->sample_rate = int(a.sample_rate());
  f->reference_channel = mic ? a.reference_channel() : -1;
  f->pcm.resize(a.pcm().size() / 2);
  const auto* p = reinterpret_cast<const unsigned char*>(a.pcm().data());
  for (size_t i = 0; i < f->pcm.size(); ++i) f->pcm[i] = int16_t(uint16_t(p[2 * i]) | uint16_t(p[2 * i + 1]) << 8);
  return true;
}

double PowerDb(double sum_sq, size_t n) {
  if (n == 0 || sum_sq <= 0) return -120;
  return std::max(-120.0, 10 * std::log10(sum_sq / double(n) / (32768.0 * 32768.0)));
}

Levels Percentiles(std::vector<double> v) {
  Levels l;
  l.frames = v.size();
  if (v.empty()) return l;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))]; };
  l.p50 = at(0.5);
  l.p95 = at(0.95);
  return l;
}

}  // namespace

Status ReadRecordedAudio(const std::string& path, const std::string& device, RecordedAudio* out) {
  *out = {};
  sniff::McapReader reader;
  if (Status st = reader.Open(path); !st.ok()) return st;
  std::string dev = device;
  sniff::McapReadReport report;
  Status st = reader.Read(
      [&](const sniff::McapMessage& m) {
        const auto& channel = reader.channels().at(m.channel_id);
        std::string base, d;
        if (!SplitTopic(channel.topic, &base, &d)) return true;
        const bool mic = base == "audio.mic";
        if (!mic && base != "audio.ref" && base != "audio.clean") return true;
        if (dev.empty() && mic) dev = d;
        if (d != dev) return true;
        RecordedFrame f;
        if (base == "audio.clean") {
          if (!DecodeFrame(m.data, m.log_time, true, &f) || f.sample_rate != kRate) {
            ++out->bad_frames;
            return true;
          }
          auto& mono = out->live_clean[f.sample_index];
          mono.resize(f.pcm.size() / size_t(f.channels));
          for (size_t i = 0; i < mono.size(); ++i) mono[i] = f.pcm[i * size_t(f.channels)];
          return true;
        }
        if (!DecodeFrame(m.data, m.log_time, mic, &f)) {
          ++out->bad_frames;
          return true;
        }
        (mic ? out->mic : out->ref).push_back(std::move(f));
        return true;
      },
      &report);
  if (!st.ok()) return st;
  out->device = dev;
  out->problems = report.problems;
  // log_time order; stable: the file's order breaks ties.
  auto by_log = [](const RecordedFrame& a, const RecordedFrame& b) { return a.log_ns < b.log_ns; };
  std::stable_sort(out->mic.begin(), out->mic.end(), by_log);
  std::stable_sort(out->ref.begin(), out->ref.end(), by_log);
  if (out->mic.empty())
    return Status::Invalid(path + ": no audio.mic" + (dev.empty() ? std::string() : "/" + dev) +
                           " frames in the recording (record with `vb sniff record FILE audio.mic audio.ref` "
                           "or all topics)");
  return Status::Ok();
}

std::string HashPcm(const std::vector<int16_t>& pcm) {
  uint64_t h = 1469598103934665603ull;
  for (int16_t s : pcm) {
    const uint16_t u = uint16_t(s);
    for (unsigned char b : {static_cast<unsigned char>(u & 0xff), static_cast<unsigned char>(u >> 8)}) {
      h ^= b;
      h *= 1099511628211ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Status RunTune(const RecordedAudio& audio, const TuneConfig& config, TuneResult* out, CleanSource source) {
  *out = {};
  std::unique_ptr<afe::FrontEnd> fe;
  if (Status st = afe::FrontEnd::Create(config.afe, &fe); !st.ok()) return st;
  out->live = source == CleanSource::kLive;
  out->backend = out->live ? "live vb-afe" : fe->backend();
  const uint64_t first_sample = audio.mic.front().sample_index;
  std::vector<VadSegment>& vad = out->vad;
  wakevad::VoicePipeline pipeline;
  Status st = pipeline.Init(
      config.wakevad,
      [&](const wakevad::VadOutput& o) {
        const double t = double(int64_t(o.decision.sample_index - first_sample)) / kRate;
        if (o.decision.start) {
          vad.push_back({t, -1});
        } else if (!vad.empty() && vad.back().end_s < 0) {
          vad.back().end_s = t;
        }
      },
      [&](const wakevad::WakeOutput& o) {
        out->wakes.push_back({double(int64_t(o.detection.end_sample - first_sample)) / kRate, o.detection.score,
                              o.detection.verify_score});
      });
  if (!st.ok()) return Status::Config("wakevad: " + st.message());

  const uint64_t wait_ns = uint64_t(std::max(0, config.ref_wait_ms)) * 1'000'000;
  size_t next_ref = 0;
  // The level of each reference frame given to the front end, by play time:
  // a mic frame is "while the agent plays" when the reference playing during
  // it is above afe.gate_far_dbfs (the front end's own "speaker audible").
  struct RefLevel {
    int64_t start_ns, end_ns;
    double dbfs;
  };
  std::vector<RefLevel> ref_levels;
  std::vector<int16_t> clean;
  std::vector<double> speaking_db, playing_db;
  double mic_sq_playing = 0, clean_sq_playing = 0;
  for (const RecordedFrame& m : audio.mic) {
    // The reference the live actor had, at the latest, when its wait ended.
    for (; next_ref < audio.ref.size() && audio.ref[next_ref].log_ns <= m.log_ns + wait_ns; ++next_ref) {
      const RecordedFrame& r = audio.ref[next_ref];
      afe::PcmView rv{r.pcm.data(), r.pcm.size() / size_t(r.channels), r.channels, r.sample_rate};
      if (!fe->PushReference(rv, r.stamp_ns).ok()) {
        ++out->bad_frames;
        continue;
      }
      ++out->ref_frames;
      double sq = 0;
      for (int16_t x : r.pcm) sq += double(x) * x;
      ref_levels.push_back(
          {r.stamp_ns, r.stamp_ns + int64_t(rv.frames) * 1'000'000'000 / r.sample_rate, PowerDb(sq, r.pcm.size())});
    }
    afe::PcmView mv{m.pcm.data(), m.pcm.size() / size_t(m.channels), m.channels, m.sample_rate};
    if (!fe->ProcessMic(mv, m.reference_channel, m.stamp_ns, &clean).ok()) {
      ++out->bad_frames;
      continue;
    }
    if (out->live) {
      auto it = audio.live_clean.find(m.sample_index);
      if (it == audio.live_clean.end() || it->second.size() != clean.size()) {
        ++out->live_missing;
        continue;
      }
      clean = it->second;
    }
    ++out->mic_frames;
    const int64_t mic_end_ns = m.stamp_ns + int64_t(mv.frames) * 1'000'000'000 / kRate;
    bool playing = false;
    for (auto it = ref_levels.rbegin(); it != ref_levels.rend() && !playing; ++it) {
      if (it->end_ns + 1'000'000'000 < m.stamp_ns) break;  // pushed in play order, give or take a second
      playing = it->start_ns < mic_end_ns && it->end_ns > m.stamp_ns && it->dbfs > config.afe.gate_far_dbfs;
    }
    // The mic channel as vb-afe takes it: channel 0, or the first that is not the reference.
    const int mic_ch = m.reference_channel == 0 && m.channels > 1 ? 1 : 0;
    double mic_sq = 0, clean_sq = 0;
    for (size_t i = 0; i < clean.size(); ++i) {
      const double x = m.pcm[i * size_t(m.channels) + size_t(mic_ch)], y = clean[i];
      mic_sq += x * x;
      clean_sq += y * y;
    }
    out->clean.insert(out->clean.end(), clean.begin(), clean.end());
    pipeline.Feed(m.sample_index, clean);
    const double level = PowerDb(clean_sq, clean.size());
    if (playing) {
      ++out->ref_frames_playing;
      mic_sq_playing += mic_sq;
      clean_sq_playing += clean_sq;
      playing_db.push_back(level);
    }
    if (pipeline.in_speech()) speaking_db.push_back(level);
  }
  pipeline.Finish();
  out->bad_frames += audio.bad_frames;
  out->clean_samples = out->clean.size();
  out->clean_hash = HashPcm(out->clean);
  out->erle_db = mic_sq_playing <= 0    ? std::nan("")  // no echo on the mic: nothing to measure
                 : clean_sq_playing > 0 ? 10 * std::log10(mic_sq_playing / clean_sq_playing)
                                        : 120;
  out->clean_speaking = Percentiles(std::move(speaking_db));
  out->clean_agent_playing = Percentiles(std::move(playing_db));
  if (!out->live) {
    out->gated_blocks = fe->counters().gated_blocks;
    out->late_ref_gated_blocks = fe->counters().late_ref_gated_blocks;
    out->delay_changes = fe->counters().delay_changes;
    out->bulk_delay_ms = fe->bulk_delay_ms();
  }
  return Status::Ok();
}

}  // namespace vb::tune
