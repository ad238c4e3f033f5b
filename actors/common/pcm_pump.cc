// Pacing, watchdog and device recovery of a PcmSource/PcmSink (see pcm_pump.h).
#include "actors/common/pcm_pump.h"

#include <algorithm>

namespace vb::audio {
namespace {
constexpr int64_t kMsNs = 1'000'000;
}

PcmPump::PcmPump(PumpLoop& loop, PumpConfig config, std::unique_ptr<PcmSource> source, Samples samples, Ended ended,
                 Hooks hooks)
    : loop_(loop),
      config_(std::move(config)),
      source_(std::move(source)),
      samples_(std::move(samples)),
      ended_fn_(std::move(ended)),
      hooks_(std::move(hooks)),
      backoff_(std::chrono::milliseconds(config_.reopen_min_ms), std::chrono::milliseconds(config_.reopen_max_ms)) {}

PcmPump::PcmPump(PumpLoop& loop, PumpConfig config, std::unique_ptr<PcmSink> sink, Render render, Played played,
                 Hooks hooks)
    : loop_(loop),
      config_(std::move(config)),
      sink_(std::move(sink)),
      render_(std::move(render)),
      played_(std::move(played)),
      hooks_(std::move(hooks)),
      backoff_(std::chrono::milliseconds(config_.reopen_min_ms), std::chrono::milliseconds(config_.reopen_max_ms)) {}

PcmPump::~PcmPump() { Stop(); }

bool PcmPump::is_open() const { return source_ ? source_->is_open() : sink_->is_open(); }
bool PcmPump::clocked() const { return source_ ? source_->clocked() : sink_->clocked(); }
PcmFormat PcmPump::format() const { return source_ ? source_->format() : sink_->format(); }
uint64_t PcmPump::xruns_total() const { return source_ ? source_->xruns() : sink_->xruns(); }

void PcmPump::Figures(std::map<std::string, int64_t>* out) const {
  auto& f = *out;
  f["xruns_total"] = int64_t(xruns_total());
  f["device_open"] = is_open() ? 1 : 0;
  for (const auto& [key, v] : {std::pair{"xruns", counters_.xruns},
                               {"device_lost", counters_.device_lost},
                               {"device_back", counters_.device_back},
                               {"idle_wakeups_parked", counters_.idle_wakeups_parked},
                               {"device_queue_drops", counters_.queue_drops},
                               {"device_rewinds", counters_.rewinds},
                               {"device_parks", counters_.parks}})
    if (v) f[key] = int64_t(v);
}

void PcmPump::Close() {
  if (source_) source_->Close();
  else sink_->Close();
}

void PcmPump::Start(double speed) {
  started_ = true;
  stopped_ = false;
  if (!clocked()) return StartPacing(speed);
  TryOpen();
  if (!stopped_) watchdog_ = loop_.Every(int64_t(config_.watchdog_ms) * kMsNs, [this] { Watchdog(); });
}

void PcmPump::Stop() {
  if (stopped_) return;
  stopped_ = true;
  parked_ = false;
  StopPacing();
  Unwatch();
  for (PumpLoop::Id* t : {&watchdog_, &retry_}) {
    if (*t) loop_.Cancel(*t);
    *t = 0;
  }
  if (source_ || sink_) Close();
}

// ---- Device life ---------------------------------------------------------

void PcmPump::MarkLost(const std::string& line, const std::string& why) {
  lost_ = true;
  lost_since_ns_ = loop_.NowNs();
  ++counters_.device_lost;
  VB_LOG(kWarn) << line << "; reopening with back-off up to " << config_.reopen_max_ms << " ms";
  if (hooks_.lost) hooks_.lost(why);
  // A sink keeps rendering into nothing, so what plays still ends on time.
  if (sink_) StartPacing(1.0);
}

void PcmPump::Lost(const Status& why) {
  parked_ = false;
  Unwatch();
  Close();
  if (hooks_.discontinuity) hooks_.discontinuity();
  if (lost_ || stopped_) return;
  MarkLost(config_.what + " lost: " + why.message(), why.message());
  backoff_.Reset();
  if (!retry_) retry_ = loop_.After(int64_t(backoff_.next().count()) * kMsNs, [this] { TryOpen(); });
}

void PcmPump::TryOpen() {
  retry_ = 0;
  if (stopped_) return;
  Status st = source_ ? source_->Open() : sink_->Open();
  if (!st.ok()) {
    if (!lost_) MarkLost(config_.what + " unavailable: " + st.message(), st.message());
    retry_ = loop_.After(int64_t(backoff_.Failed(std::chrono::milliseconds(0)).count()) * kMsNs, [this] { TryOpen(); });
    return;
  }
  if (lost_) {
    const int64_t ms = (loop_.NowNs() - lost_since_ns_) / kMsNs;
    VB_LOG(kInfo) << config_.what << " back after " << ms << " ms";
    ++counters_.device_back;
    lost_ = false;
    if (hooks_.back) hooks_.back(ms);
  }
  backoff_.Reset();
  OnOpened();
}

void PcmPump::OnOpened() {
  if (hooks_.opened) {
    if (Status st = hooks_.opened(); !st.ok()) {
      // The device cannot serve this configuration: nothing to retry.
      VB_LOG(kError) << config_.what << ": " << st.message();
      Stop();
      if (hooks_.fatal) hooks_.fatal(st);
      return;
    }
  }
  if (sink_) StopPacing();
  if (hooks_.discontinuity) hooks_.discontinuity();
  parked_ = false;
  history_.clear();
  pending_.clear();
  pending_off_ = 0;
  last_progress_ns_ = loop_.NowNs();
  got_data_ = false;
  idle_wakeups_ = 0;
  xruns_seen_ = xruns_total();
  WatchDevice();
  if (sink_) ServeSink();
}

void PcmPump::WatchDevice() {
  std::vector<pollfd> fds = source_ ? source_->PollFds() : sink_->PollFds();
  if (!fds.empty()) {
    group_ = loop_.Watch(std::move(fds), [this](std::span<const pollfd> f) { OnReady(f); });
  } else if (!device_timer_) {
    device_timer_ = loop_.Every(int64_t(config_.device_period_ms) * kMsNs, [this] { Service(); });
  }
}

void PcmPump::Unwatch() {
  if (group_) loop_.Unwatch(group_);
  group_ = 0;
  if (device_timer_) loop_.Cancel(device_timer_);
  device_timer_ = 0;
}

void PcmPump::OnReady(std::span<const pollfd> fds) {
  if (sink_) {
    if (sink_->Ready(fds)) ServeSink();
    return;
  }
  const uint64_t before = counters_.frames;
  if (source_->Ready(fds)) DrainSource();
  if (!config_.park_idle || !source_->is_open() || counters_.frames != before) {
    idle_wakeups_ = 0;
    return;
  }
  // Some plugins (pulse while its stream starts) keep a descriptor readable
  // with nothing to read: leave the poll for one period instead of spinning.
  if (++idle_wakeups_ >= 3 && group_) {
    ++counters_.idle_wakeups_parked;
    loop_.Unwatch(group_);
    group_ = 0;
    loop_.After(int64_t(config_.device_period_ms) * kMsNs, [this] {
      idle_wakeups_ = 0;
      if (!stopped_ && source_->is_open() && !group_ && !device_timer_) WatchDevice();
    });
  }
}

void PcmPump::Service() {
  if (stopped_ || parked_ || !is_open() || !clocked()) return;
  if (source_) DrainSource();
  else ServeSink();
}

void PcmPump::Watchdog() {
  if (!is_open() || lost_) return;
  if (parked_) {
    // Stopped on purpose: only ask whether it is still there.
    size_t avail = 0;
    int64_t delay = 0;
    if (Status st = sink_->Avail(&avail, &delay); !st.ok()) return Lost(st);
    last_progress_ns_ = loop_.NowNs();
    return;
  }
  // Some plugins (pulse) signal nothing when their server dies: probe.
  Service();
  const int64_t idle = loop_.NowNs() - last_progress_ns_;
  if (is_open() && idle > (got_data_ ? config_.stall_ns : config_.first_data_ns)) {
    ++counters_.stalls;
    Lost(Status::Unavailable((source_ ? "no samples for " : "device took nothing for ") + std::to_string(idle / kMsNs) +
                             " ms"));
  }
}

void PcmPump::CheckXruns() {
  const uint64_t total = xruns_total();
  if (total == xruns_seen_) return;
  counters_.xruns += total - xruns_seen_;
  xruns_seen_ = total;
  if (hooks_.discontinuity) hooks_.discontinuity();
  uint64_t suppressed = 0;
  if (xrun_log_.Allow(loop_.NowNs(), &suppressed)) {
    VB_LOG(kWarn) << config_.xrun_line << " (" << total << " in total): " << config_.xrun_effect;
  }
}

// ---- Clocked source: read what the device has ------------------------------

void PcmPump::DrainSource() {
  if (!source_->is_open()) return;
  const auto fmt = source_->format();
  buf_.resize(size_t(fmt.sample_rate) / 50 * fmt.channels);  // up to 20 ms per read
  const size_t max_frames = buf_.size() / fmt.channels;
  for (int i = 0; i < 64; ++i) {
    size_t got = 0;
    int64_t delay = 0;
    Status st = source_->Read(buf_.data(), max_frames, &got, &delay);
    if (!st.ok()) return Lost(st);
    CheckXruns();
    if (got == 0) break;
    last_progress_ns_ = loop_.NowNs();
    got_data_ = true;
    counters_.frames += got;
    samples_(buf_.data(), got, last_progress_ns_, delay, source_->synthetic());
  }
}

// ---- Clocked sink: fill what the device takes ------------------------------

// Writes what a short write left of the last block; true when none is left.
bool PcmPump::WritePending() {
  const uint32_t ch = std::max<uint32_t>(sink_->format().channels, 1);
  while (pending_off_ < pending_.size()) {
    const size_t frames = pending_.size() - pending_off_;
    const int16_t* out = pending_.data() + pending_off_;
    if (ch > 1) {
      wide_.resize(frames * ch);
      for (size_t k = 0; k < frames; ++k)
        for (uint32_t c = 0; c < ch; ++c) wide_[k * ch + c] = out[k];
      out = wide_.data();
    }
    size_t written = 0;
    if (Status st = sink_->Write(out, frames, &written, nullptr); !st.ok()) {
      Lost(st);
      return false;
    }
    if (written == 0) return false;
    counters_.frames += written;
    last_progress_ns_ = loop_.NowNs();
    if (config_.history_frames) {
      history_.insert(history_.end(), pending_.begin() + ptrdiff_t(pending_off_),
                      pending_.begin() + ptrdiff_t(pending_off_ + written));
      if (history_.size() > config_.history_frames)
        history_.erase(history_.begin(), history_.end() - ptrdiff_t(config_.history_frames));
    }
    const int64_t play_ns = pending_play_ns_ + int64_t(double(pending_off_) * 1e9 / sink_->format().sample_rate);
    played_(pending_.data() + pending_off_, written, play_ns);
    pending_off_ += written;
  }
  pending_.clear();
  pending_off_ = 0;
  return true;
}

void PcmPump::ServeSink() {
  if (!sink_->is_open()) return;
  const auto fmt = sink_->format();
  // Blocks of the render period, or of the device's own where it is shorter
  // (pulse picks 133 frames for 10 ms): woken with less free than a block,
  // nothing would be written and the descriptors would wake the loop again
  // at once, spinning until a whole block fits.
  size_t period = size_t(fmt.sample_rate) * config_.period_ms / 1000;
  if (const size_t wake = sink_->wake_frames(); wake > 0 && wake < period) period = wake;
  // The device is asked once per wake-up: after a whole block went in, it
  // has that much less room and that much more queued (through a plugin
  // each question costs a lock and a round to the sound server; what it
  // frees meanwhile is served at the next wake-up).
  size_t avail = 0;
  int64_t delay = 0;
  bool asked = false;
  for (int i = 0; i < 16; ++i) {
    const size_t before = pending_.size() - pending_off_;
    if (!WritePending()) break;
    if (asked) {
      avail = avail > before ? avail - before : 0;
      delay += int64_t(before);
    } else {
      if (Status st = sink_->Avail(&avail, &delay); !st.ok()) return Lost(st);
      asked = true;
    }
    if (avail < period) break;
    // The block leaves the speaker once what the device holds has played.
    const int64_t now = loop_.NowNs();
    pending_.resize(period);
    pending_off_ = 0;
    pending_play_ns_ = now + delay * 1'000'000'000 / fmt.sample_rate;
    render_(pending_.data(), period, now, pending_play_ns_);
  }
  if (sink_->is_open()) CheckXruns();
}

bool PcmPump::DropDeviceQueue(std::vector<int16_t>* unplayed) {
  unplayed->clear();
  if (!sink_ || lost_ || !sink_->is_open() || !sink_->clocked()) return false;
  size_t avail = 0;
  int64_t delay = 0;
  if (!sink_->Avail(&avail, &delay).ok() || delay <= 0) return false;
  const size_t n = std::min(size_t(delay), history_.size());
  unplayed->assign(history_.end() - ptrdiff_t(n), history_.end());
  if (std::all_of(unplayed->begin(), unplayed->end(), [](int16_t v) { return v == 0; })) {
    unplayed->clear();
    return false;
  }
  pending_.clear();  // a short write's rest would come after the fade
  pending_off_ = 0;
  if (Status st = sink_->Drop(); !st.ok()) {
    unplayed->clear();
    if (!sink_->is_open()) Lost(st);
    return false;
  }
  ++counters_.queue_drops;
  history_.clear();
  if (hooks_.discontinuity) hooks_.discontinuity();
  return true;
}

bool PcmPump::RewindDeviceQueue(std::vector<int16_t>* unplayed, size_t max_frames) {
  unplayed->clear();
  if (!sink_ || lost_ || parked_ || !sink_->is_open() || !sink_->rewindable()) return false;
  size_t n = 0;
  if (Status st = sink_->Rewind(std::min(max_frames, history_.size()), &n); !st.ok()) {
    Lost(st);  // a rewritable sink fails only when it is gone
    return false;
  }
  if (n == 0) return false;
  unplayed->assign(history_.end() - ptrdiff_t(n), history_.end());
  history_.resize(history_.size() - n);
  pending_.clear();  // a short write's rest would come after the fade
  pending_off_ = 0;
  ++counters_.rewinds;
  // What was reported of them did not play: what replaces them is reported
  // from where they were (audio.ref goes back in time; vb-afe overwrites).
  if (hooks_.discontinuity) hooks_.discontinuity();
  return true;
}

void PcmPump::Park() {
  if (!sink_ || parked_ || lost_ || stopped_ || !sink_->is_open() || !sink_->clocked()) return;
  Unwatch();
  pending_.clear();
  pending_off_ = 0;
  if (Status st = sink_->Drop(); !st.ok()) {
    if (!sink_->is_open()) return Lost(st);
    WatchDevice();  // it cannot stop: keep serving it
    return;
  }
  parked_ = true;
  ++counters_.parks;
  history_.clear();
  if (hooks_.discontinuity) hooks_.discontinuity();
}

void PcmPump::Resume() {
  if (!parked_) return;
  parked_ = false;
  if (stopped_ || lost_ || !sink_->is_open()) return;
  last_progress_ns_ = loop_.NowNs();
  xruns_seen_ = xruns_total();
  WatchDevice();
  ServeSink();
}

// ---- Timer pacing: files, silence, and a lost sink ---------------------------

void PcmPump::StartPacing(double speed) {
  if (pace_timer_) return;
  speed_ = speed;
  pace_start_ns_ = loop_.NowNs();
  paced_frames_ = 0;
  if (speed <= 0) {
    if (source_) loop_.Post([this] { Burst(); });
    return;  // a sink waits for RenderNow()
  }
  const int64_t period = std::max<int64_t>(int64_t(double(config_.period_ms) * 1e6 / speed), kMsNs);
  pace_timer_ = loop_.Every(period, [this] { PacedTick(); });
}

void PcmPump::StopPacing() {
  if (pace_timer_) loop_.Cancel(pace_timer_);
  pace_timer_ = 0;
}

void PcmPump::PacedTick() {
  if (stopped_ || ended_) return;
  // Frames due since the start (a late or skipped tick catches up, at most 1 s).
  const int64_t now = loop_.NowNs();
  const uint32_t rate = format().sample_rate;
  const uint64_t due = uint64_t(double(now - pace_start_ns_) * speed_ * rate / 1e9);
  if (due <= paced_frames_) return;
  if (sink_) {
    const size_t period = size_t(rate) * config_.period_ms / 1000;
    // Whole periods; written now: the first block is heard now.
    const size_t n = size_t(std::min<uint64_t>(due - paced_frames_, rate)) / period * period;
    for (size_t at = 0; at < n; at += period) RenderBlock(period, now, now + int64_t(double(at) * 1e9 / rate));
    paced_frames_ += n;
    return;
  }
  const size_t n = size_t(std::min<uint64_t>(due - paced_frames_, rate));
  paced_frames_ = due;
  // A file's clock is the pacing clock itself: stamps stay exactly one
  // frame apart whatever the timer's jitter.
  const int64_t clock_ns = pace_start_ns_ + int64_t(double(due) * 1e9 / (double(rate) * speed_));
  const int64_t stamp = std::min(now, clock_ns);
  const auto fmt = source_->format();
  buf_.resize(n * fmt.channels);
  size_t got = 0;
  source_->Read(buf_.data(), n, &got, nullptr);
  counters_.frames += got;
  samples_(buf_.data(), got, stamp, 0, source_->synthetic());
  if (got < n && source_->at_end()) SourceEnded(n - got, stamp);
}

void PcmPump::Burst() {
  if (stopped_ || ended_ || loop_.stopped()) return;
  const auto fmt = source_->format();
  const size_t n = size_t(fmt.sample_rate) * config_.period_ms / 1000;
  buf_.resize(n * fmt.channels);
  for (int i = 0; i < 5; ++i) {
    size_t got = 0;
    source_->Read(buf_.data(), n, &got, nullptr);
    counters_.frames += got;
    samples_(buf_.data(), got, loop_.NowNs(), 0, source_->synthetic());
    if (got < n && source_->at_end()) return SourceEnded(0, 0);
    if (ended_ || stopped_) return;
  }
  loop_.Post([this] { Burst(); });
}

void PcmPump::SourceEnded(size_t missing, int64_t stamp_ns) {
  std::unique_ptr<PcmSource> next = ended_fn_ ? ended_fn_() : nullptr;
  if (!next || stopped_) {
    ended_ = true;
    StopPacing();
    return;
  }
  source_ = std::move(next);
  source_->Open();
  // From here in real time; what follows fills the rest of this tick (no gap).
  if (speed_ != 1.0) StopPacing();
  if (!pace_timer_) StartPacing(1.0);
  if (missing > 0) {
    const auto fmt = source_->format();
    buf_.resize(missing * fmt.channels);
    size_t got = 0;
    source_->Read(buf_.data(), missing, &got, nullptr);
    samples_(buf_.data(), got, stamp_ns, 0, source_->synthetic());
  }
}

void PcmPump::RenderBlock(size_t n, int64_t now, int64_t play_ns) {
  buf_.resize(n);
  const bool write = render_(buf_.data(), n, now, play_ns);
  if (lost_) return;  // rendered into nothing
  if (write) {
    size_t written = 0;
    if (Status st = sink_->Write(buf_.data(), n, &written, nullptr); !st.ok()) {
      ++counters_.write_errors;
      if (hooks_.error) hooks_.error(st.message());
    }
    counters_.frames += written;
  }
  played_(buf_.data(), n, play_ns);
}

void PcmPump::RenderNow(size_t n) {
  const int64_t now = loop_.NowNs();
  RenderBlock(n, now, now);
}

}  // namespace vb::audio
