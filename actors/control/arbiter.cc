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
  // Speech band only: a 2nd-order Butterworth high-pass at 250 Hz (RBJ).
  // Rumble (traffic, fans, brown noise) is loud below it and says nothing
  // about how well a device hears a voice; left in, a room with rumble
  // reads a different floor than one with hiss of the same level.
  const double w0 = 2 * M_PI * 250.0 / 16000.0, alpha = std::sin(w0) / (2 * M_SQRT1_2), c = std::cos(w0);
  const double a0 = 1 + alpha, b0 = (1 + c) / 2 / a0, b1 = -(1 + c) / a0, b2 = b0, a1 = -2 * c / a0,
               a2 = (1 - alpha) / a0;
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  std::vector<double> blocks;  // mean square per 10 ms block
  for (size_t b = 0; b + kBlock <= n; b += kBlock) {
    double sum = 0;
    for (size_t i = b; i < b + kBlock; ++i) {
      int16_t v;
      std::memcpy(&v, pcm.data() + 2 * i, 2);
      const double x = v, y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
      x2 = x1, x1 = x, y2 = y1, y1 = y;
      sum += y * y;
    }
    blocks.push_back(sum / kBlock);
  }
  blocks[0] = blocks.size() > 1 ? blocks[1] : blocks[0];  // the filter settling
  // The onset, not the whole phrase: the AFE's gain control turns loud
  // speech down within a few hundred ms (and noise up in pauses), so later
  // in a phrase a close voice and a far one read alike. At the onset the
  // gain is still the one the noise just before it had: the voice's first
  // 300 ms (from 100 ms before the detector's estimate of its start, which
  // is coarse) against the 400 ms of noise before that.
  const int64_t nb = int64_t(blocks.size());
  const int64_t sb =
      std::clamp<int64_t>(speech_begin > pcm_start ? int64_t((speech_begin - pcm_start) / kBlock) : 0, 0, nb);
  auto span = [&](int64_t from, int64_t to) {
    std::vector<double> v(blocks.begin() + std::clamp<int64_t>(from, 0, nb),
                          blocks.begin() + std::clamp<int64_t>(to, 0, nb));
    std::sort(v.begin(), v.end());
    return v;
  };
  auto mean = [](const std::vector<double>& v, size_t from, size_t to) {
    double m = 0;
    for (size_t i = from; i < to; ++i) m += v[i];
    return to > from ? m / double(to - from) : 0.0;
  };
  std::vector<double> before = span(sb - 50, sb - 10), onset = span(sb - 10, sb + 30);
  double floor;
  if (before.size() >= 10) {
    floor = mean(before, 0, before.size() / 2);  // its quieter half: the estimate of the start may be early
  } else {
    std::vector<double> all = span(0, nb);
    floor = mean(all, 0, std::max<size_t>(1, all.size() / 10));
  }
  if (onset.empty()) onset = span(0, nb);
  const double voice = mean(onset, onset.size() - std::min<size_t>(5, onset.size()), onset.size());  // its 5 loudest
  s.floor_db = std::max(-100.0, Db(floor));
  s.level_db = Db(std::max(voice - floor, voice * 0.01));
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
