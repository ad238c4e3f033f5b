// Arbitration by signal (see arbiter.h).
#include "actors/control/arbiter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace vb::control {
namespace {

constexpr size_t kBlock = 160;  // 10 ms at 16 kHz

double Db(double mean_square) { return mean_square > 0 ? 10.0 * std::log10(mean_square / (32768.0 * 32768.0)) : -120; }

}  // namespace

Signal MeasureSignal(const std::string& pcm, uint64_t pcm_start, uint64_t speech_begin, uint64_t speech_end) {
  Signal s;
  const size_t n = pcm.size() / 2;
  if (n < kBlock) return s;
  std::vector<double> blocks;  // mean square per 10 ms block
  double speech_sum = 0;
  size_t speech_n = 0;
  for (size_t b = 0; b + kBlock <= n; b += kBlock) {
    double sum = 0;
    for (size_t i = b; i < b + kBlock; ++i) {
      int16_t v;
      std::memcpy(&v, pcm.data() + 2 * i, 2);
      const double x = v;
      sum += x * x;
      const uint64_t at = pcm_start + i;
      if (at >= speech_begin && at < speech_end) speech_sum += x * x, ++speech_n;
    }
    blocks.push_back(sum / kBlock);
  }
  std::sort(blocks.begin(), blocks.end());
  const size_t quiet = std::max<size_t>(1, blocks.size() / 10);
  double floor = 0;
  for (size_t i = 0; i < quiet; ++i) floor += blocks[i];
  s.floor_db = std::max(-100.0, Db(floor / double(quiet)));
  s.level_db = speech_n ? Db(speech_sum / double(speech_n)) : Db(blocks.back());
  return s;
}

Signal MeasureWake(const v1::WakeEvent& w) {
  const uint64_t begin = w.start_sample(), end = w.end_sample() > w.start_sample() ? w.end_sample() : UINT64_MAX;
  return MeasureSignal(w.context_pcm(), w.context_start_sample(), begin, end);
}

Signal MeasureVad(const v1::VadEvent& v) {
  return MeasureSignal(v.preroll_pcm(), v.preroll_start_sample(), v.sample_index(), UINT64_MAX);
}

std::optional<Decision> Arbiter::Offer(Report r, Clock::time_point now) {
  if (open_.empty() && late_until_ && now < *late_until_ && r.device != last_chosen_) {
    ++late_;  // the same utterance, heard later by another device: it stood down already
    return std::nullopt;
  }
  for (auto& o : open_)
    if (o.device == r.device) {  // a device reporting twice in a window: its best report counts
      if (r.signal.snr_db() > o.signal.snr_db()) o = r;
      return std::nullopt;
    }
  if (open_.empty()) deadline_ = now + options_.window;
  open_.push_back(std::move(r));
  if (open_.size() >= options_.devices) return Decide(now);
  return std::nullopt;
}

std::optional<Decision> Arbiter::Tick(Clock::time_point now) {
  if (open_.empty() || !deadline_ || now < *deadline_) return std::nullopt;
  return Decide(now);
}

std::optional<Arbiter::Clock::time_point> Arbiter::NextDeadline() const {
  if (open_.empty()) return std::nullopt;
  return deadline_;
}

Decision Arbiter::Decide(Clock::time_point now) {
  const double tie = options_.tie_db;
  // Better: clearly higher SNR; within the tie, higher wake score, then louder.
  auto better = [tie](const Report& a, const Report& b) {
    const double d = a.signal.snr_db() - b.signal.snr_db();
    if (std::fabs(d) > tie) return d > 0;
    if (a.wake && b.wake && a.score != b.score) return a.score > b.score;
    return a.signal.level_db > b.signal.level_db;
  };
  size_t best = 0;
  for (size_t i = 1; i < open_.size(); ++i)
    if (better(open_[i], open_[best])) best = i;
  Decision d;
  d.chosen = open_[best];
  d.waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - open_.front().at);
  char buf[160];
  snprintf(buf, sizeof buf, "%s: %.1f dB above its noise floor%s", d.chosen.device.c_str(), d.chosen.signal.snr_db(),
           open_.size() > 1 ? "" : " (alone)");
  d.why = buf;
  for (size_t i = 0; i < open_.size(); ++i) {
    if (i == best) continue;
    snprintf(buf, sizeof buf, "; %s %.1f dB", open_[i].device.c_str(), open_[i].signal.snr_db());
    d.why += buf;
    d.stood_down.push_back(open_[i]);
  }
  last_chosen_ = d.chosen.device;
  late_until_ = now + options_.window;
  open_.clear();
  deadline_.reset();
  ++decisions_;
  return d;
}

}  // namespace vb::control
