// Jitter buffer, flush fade, prompt mixing and playback events (see
// playback_engine.h).
#include "actors/playback/playback_engine.h"

#include <algorithm>
#include <cmath>

namespace vb::playback {

PlaybackEngine::PlaybackEngine(EngineConfig config) : config_(config) {
  if (config_.offline) config_.target_ms = 0;
}

void PlaybackEngine::Event(v1::PlaybackEvent::Kind kind, const std::string& turn, std::string detail, int64_t latency) {
  events_.push_back({kind, turn, std::move(detail), latency});
}

bool PlaybackEngine::Announced(const std::deque<std::string>& seen, const std::string& turn) {
  return std::find(seen.begin(), seen.end(), turn) != seen.end();
}

void PlaybackEngine::Announce(v1::PlaybackEvent::Kind kind, std::deque<std::string>& seen, const std::string& turn,
                              std::string detail) {
  if (Announced(seen, turn)) {
    ++counters_.events_suppressed;
    return;
  }
  seen.push_back(turn);
  while (seen.size() > config_.remember_announced) seen.pop_front();
  if (kind == v1::PlaybackEvent::STARTED) ++counters_.turns_started;
  else ++counters_.turns_drained;
  Event(kind, turn, std::move(detail));
}

bool PlaybackEngine::IsCancelled(const std::string& turn_id) const {
  return std::find(cancelled_.begin(), cancelled_.end(), turn_id) != cancelled_.end();
}

bool PlaybackEngine::Push(const std::string& turn_id, const int16_t* pcm, size_t n, int64_t origin_ns, bool end_of_turn,
                          int64_t now_ns) {
  ++counters_.frames_in;
  if (IsCancelled(turn_id)) {
    ++counters_.dropped_cancelled;
    return false;
  }
  if (queued_ + n > size_t(config_.max_buffer_ms) * config_.rate / 1000) {
    ++counters_.dropped_overflow;
    return false;
  }
  queue_.push_back({turn_id, std::vector<int16_t>(pcm, pcm + n), 0, origin_ns, end_of_turn});
  queued_ += n;
  if (state_ == State::kIdle) {
    state_ = State::kBuffering;
    since_ns_ = now_ns;
    if (turn_ != turn_id) turn_started_ = false;
    turn_ = turn_id;
  }
  return true;
}

void PlaybackEngine::Flush(const std::string& turn_id, int64_t now_ns, std::span<const int16_t> unplayed) {
  ++counters_.flushes;
  const bool front_hit = !queue_.empty() && (turn_id.empty() || queue_.front().turn_id == turn_id);
  const bool audible_now = (front_hit && state_ == State::kPlaying) || !unplayed.empty();
  const size_t len = size_t(config_.fade_ms) * config_.rate / 1000;
  bool made = false;
  if (!unplayed.empty()) {
    made = true;
    // The device's queue is gone: fade from what the listener hears next.
    fade_.assign(unplayed.begin(), unplayed.begin() + ptrdiff_t(std::min(len, unplayed.size())));
    fade_pos_ = 0;
  } else if (audible_now && fade_.empty()) {
    made = true;
    // The next fade_ms of speech, faded out; everything after it is dropped.
    fade_.clear();
    fade_pos_ = 0;
    for (const Chunk& c : queue_) {
      if (c.turn_id != queue_.front().turn_id) break;
      for (size_t i = c.pos; i < c.pcm.size() && fade_.size() < len; ++i) fade_.push_back(c.pcm[i]);
      if (fade_.size() >= len) break;
    }
  }
  if (made) {
    for (size_t i = 0; i < fade_.size(); ++i) {
      double g = 0.5 + 0.5 * std::cos(M_PI * double(i + 1) / double(len + 1));
      fade_[i] = int16_t(std::lround(fade_[i] * g));
    }
  }
  // Drop the flushed speech now; the fade (if any) plays from its own buffer.
  std::deque<Chunk> kept;
  for (Chunk& c : queue_) {
    if (turn_id.empty() || c.turn_id == turn_id) queued_ -= c.pcm.size() - c.pos;
    else kept.push_back(std::move(c));
  }
  queue_ = std::move(kept);
  const std::string flushed = turn_id.empty() ? turn_ : turn_id;
  if (front_hit || queue_.empty()) {
    state_ = queue_.empty() ? State::kIdle : State::kBuffering;
    since_ns_ = now_ns;
    if (!queue_.empty()) {
      turn_ = queue_.front().turn_id;
      turn_started_ = false;
    }
  }
  if (!fade_.empty() && fade_pos_ < fade_.size()) flushes_.emplace_back(flushed, now_ns);
  else Event(v1::PlaybackEvent::FLUSHED, flushed, audible_now ? "" : "nothing was playing", 0);
}

void PlaybackEngine::Cancel(const std::string& turn_id, int64_t now_ns, std::span<const int16_t> unplayed) {
  auto remember = [this](const std::string& id) {
    if (!IsCancelled(id)) cancelled_.push_back(id);
    while (cancelled_.size() > config_.remember_cancelled) cancelled_.pop_front();
  };
  if (turn_id.empty()) {
    if (!turn_.empty()) remember(turn_);
    for (const Chunk& c : queue_) remember(c.turn_id);
  } else {
    remember(turn_id);
  }
  Flush(turn_id, now_ns, unplayed);
}

void PlaybackEngine::PlayPrompt(const std::vector<int16_t>* pcm) {
  if (!pcm || pcm->empty()) return;
  if (prompts_.size() >= 4) prompts_.erase(prompts_.begin());  // bounded: the oldest gives way
  prompts_.push_back({pcm, 0});
  ++counters_.prompts;
}

bool PlaybackEngine::ReadyToPlay(int64_t now_ns) const {
  if (queue_.empty()) return false;
  if (queued_ >= size_t(config_.target_ms) * config_.rate / 1000) return true;
  for (const Chunk& c : queue_)
    if (c.end_of_turn) return true;
  return now_ns - since_ns_ >= int64_t(config_.target_ms) * 1'000'000;
}

void PlaybackEngine::UpdateState(int64_t now_ns) {
  switch (state_) {
    case State::kIdle: break;
    case State::kBuffering:
      if (ReadyToPlay(now_ns)) state_ = State::kPlaying;
      break;
    case State::kStarved:
      if (ReadyToPlay(now_ns)) {
        state_ = State::kPlaying;
      } else if (queue_.empty() && now_ns - since_ns_ >= int64_t(config_.drain_timeout_ms) * 1'000'000) {
        Announce(v1::PlaybackEvent::DRAINED, drained_, turn_, "no end-of-turn marker");
        state_ = State::kIdle;
      }
      break;
    case State::kPlaying: break;
  }
}

void PlaybackEngine::Render(int16_t* out, size_t n, int64_t now_ns, int64_t play_ns, RenderInfo* info) {
  *info = RenderInfo();
  std::fill(out, out + n, int16_t(0));
  const double ns_per_sample = 1e9 / config_.rate;
  size_t i = 0;

  // 1. The tail of a flush, then silence for the flushed speech.
  while (fade_pos_ < fade_.size() && i < n) {
    out[i++] = fade_[fade_pos_++];
    info->audible = true;
  }
  if (!fade_.empty() && fade_pos_ >= fade_.size()) {
    int64_t silent_at = play_ns + int64_t(double(i) * ns_per_sample);
    for (auto& [turn, at] : flushes_) Event(v1::PlaybackEvent::FLUSHED, turn, "", silent_at - at);
    flushes_.clear();
    fade_.clear();
    fade_pos_ = 0;
  }

  // 2. Speech.
  UpdateState(now_ns);
  while (i < n && state_ == State::kPlaying) {
    if (queue_.empty()) {
      if (config_.offline) {
        state_ = State::kIdle;
      } else {
        ++counters_.underruns;
        Event(v1::PlaybackEvent::UNDERRUN, turn_);
        state_ = State::kStarved;
        since_ns_ = now_ns;
      }
      break;
    }
    Chunk& c = queue_.front();
    if (c.turn_id != turn_) {  // next turn: it prebuffers on its own
      turn_ = c.turn_id;
      turn_started_ = false;
      state_ = State::kBuffering;
      since_ns_ = now_ns;
      UpdateState(now_ns);
      continue;
    }
    if (!turn_started_) {
      turn_started_ = true;
      Announce(v1::PlaybackEvent::STARTED, started_, turn_);
    }
    if (!info->audible || info->origin_ns == 0) {
      info->origin_ns = c.origin_ns;
      info->turn_id = c.turn_id;
    }
    info->audible = true;
    size_t take = std::min(n - i, c.pcm.size() - c.pos);
    std::copy_n(c.pcm.data() + c.pos, take, out + i);
    c.pos += take;
    i += take;
    queued_ -= take;
    if (c.pos == c.pcm.size()) {
      bool end = c.end_of_turn;
      queue_.pop_front();
      if (end) {
        Announce(v1::PlaybackEvent::DRAINED, drained_, turn_);
        state_ = queue_.empty() ? State::kIdle : State::kBuffering;
        since_ns_ = now_ns;
        if (!queue_.empty()) {
          turn_ = queue_.front().turn_id;
          turn_started_ = false;
          UpdateState(now_ns);
        }
      }
    }
  }

  // 3. Prompts, mixed over whatever is there.
  for (auto it = prompts_.begin(); it != prompts_.end();) {
    size_t take = std::min(n, it->pcm->size() - it->pos);
    for (size_t k = 0; k < take; ++k) {
      int32_t v = out[k] + int32_t(std::lround((*it->pcm)[it->pos + k] * config_.prompt_gain));
      out[k] = int16_t(std::clamp(v, -32768, 32767));
    }
    if (take) info->audible = true;
    it->pos += take;
    it = it->pos >= it->pcm->size() ? prompts_.erase(it) : it + 1;
  }
}

}  // namespace vb::playback
