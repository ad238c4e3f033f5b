// TurnTracer: see trace.h.
#include "tools/sniffer/trace.h"

#include <algorithm>
#include <cstdio>

#include "tools/sniffer/printer.h"
#include "vb/v1/audio.pb.h"
#include "vb/v1/dialog.pb.h"
#include "vb/v1/voice.pb.h"

namespace vb::sniff {
namespace {

constexpr const char* kNames[] = {"wake",        "key",          "speech_start", "speech_end",  "server_speech_end",
                                  "transcript",  "turn_started", "first_text",   "first_audio", "first_sample",
                                  "last_sample", "interrupted",  "end"};
static_assert(std::size(kNames) == size_t(Stage::kCount));

std::string_view Base(std::string_view topic) { return topic.substr(0, topic.find('/')); }

std::string Ms(int64_t ns) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f", double(ns) / 1e6);
  return buf;
}

}  // namespace

const char* StageName(Stage s) { return kNames[int(s)]; }

int64_t TurnTrace::first() const {
  int64_t f = 0;
  for (int64_t v : at)
    if (v && (!f || v < f)) f = v;
  return f;
}

int64_t TurnTrace::ResponseNs() const {
  int64_t end = has(Stage::kSpeechEnd) ? at[int(Stage::kSpeechEnd)] : at[int(Stage::kServerSpeechEnd)];
  if (!end || !has(Stage::kFirstSample)) return -1;
  return at[int(Stage::kFirstSample)] - end;
}

bool TurnTracer::Wants(std::string_view topic) {
  static constexpr std::string_view kTopics[] = {"voice.wake",     "voice.vad",     "dialog.request", "dialog.order",
                                                 "dialog.command", "session.event", "session.audio",  "audio.out",
                                                 "playback.event", "audio.ref"};
  return std::find(std::begin(kTopics), std::end(kTopics), Base(topic)) != std::end(kTopics);
}

TurnTrace* TurnTracer::Find(const std::string& id) {
  if (id.empty()) return nullptr;
  for (auto& t : open_)
    if (t.turn_id == id) return &t;
  return nullptr;
}

void TurnTracer::Set(TurnTrace* t, Stage s, int64_t ns, bool first_wins) {
  if (!t || ns <= 0) return;
  // "First" stages keep the earliest stamp: messages of different
  // publishers and planes may be read out of their publishing order.
  int64_t& v = t->at[int(s)];
  if (!v || !first_wins || ns < v) v = ns;
}

void TurnTracer::Report(size_t i) {
  TurnTrace t = std::move(open_[i]);
  open_.erase(open_.begin() + long(i));
  if (t.turn_id == playing_) playing_.clear();
  ++reported_;
  if (done_) done_(t);
}

void TurnTracer::Add(std::string_view topic, const v1::Header& h, std::string_view bytes) {
  const std::string_view base = Base(topic);
  const int64_t ns = h.mono_ns();
  auto parse = [&](google::protobuf::Message* m) {
    if (m->ParseFromArray(bytes.data(), int(bytes.size()))) return true;
    ++malformed_;
    return false;
  };
  if (base == "voice.wake") {
    pending_ = TurnTrace{};  // a new utterance: what was heard before is not this turn's
    Set(&pending_, Stage::kWake, ns);
  } else if (base == "voice.vad") {
    v1::VadEvent e;
    if (!parse(&e)) return;
    if (e.kind() == v1::VadEvent::SPEECH_START) {
      pending_.at[int(Stage::kSpeechEnd)] = 0;
      Set(&pending_, Stage::kSpeechStart, ns, false);
    } else if (e.kind() == v1::VadEvent::SPEECH_END) {
      Set(&pending_, Stage::kSpeechEnd, ns, false);
    }
  } else if (base == "dialog.request" || base == "dialog.order" || base == "dialog.command") {
    // A request (push-to-talk, interrupt asked for), control's order (an
    // interrupt it decided on or hands on), or either in a recording made
    // before the two topics (dialog.command). The fields read here have the
    // same numbers in DialogRequest and DialogCommand: one parse for all.
    v1::DialogCommand c;
    if (!parse(&c)) return;
    if (c.has_push_to_talk()) {
      if (c.push_to_talk().down()) {
        pending_ = TurnTrace{};
        Set(&pending_, Stage::kKey, ns);
      } else {
        Set(&pending_, Stage::kSpeechEnd, ns, false);
      }
    } else if (c.has_interrupt()) {
      TurnTrace* t = Find(c.interrupt().turn_id().empty() ? playing_ : c.interrupt().turn_id());
      if (!t && !open_.empty()) t = &open_.back();
      Set(t, Stage::kInterrupted, ns);
    }
  } else if (base == "session.event") {
    v1::SessionEvent e;
    if (!parse(&e)) return;
    TurnTrace* t = Find(h.turn_id());
    if (e.has_turn_started()) {
      std::string id = e.turn_started().turn_id().empty() ? h.turn_id() : e.turn_started().turn_id();
      if (Find(id)) return;
      // A turn that never played anything is over once the next one starts.
      for (size_t i = 0; i < open_.size();)
        if (open_[i].has(Stage::kEnd) || open_[i].has(Stage::kInterrupted)) Report(i);
        else ++i;
      TurnTrace n = std::move(pending_);
      pending_ = TurnTrace{};
      n.turn_id = id;
      Set(&n, Stage::kTurnStarted, ns);
      open_.push_back(std::move(n));
    } else if (e.has_user_speech()) {
      if (!e.user_speech().started()) Set(t ? t : &pending_, Stage::kServerSpeechEnd, ns, t != nullptr);
    } else if (e.has_user_transcript()) {
      if (e.user_transcript().final()) Set(t ? t : &pending_, Stage::kTranscript, ns);
    } else if (e.has_agent_text()) {
      Set(t, Stage::kFirstText, ns);
    } else if (e.has_turn_ended()) {
      if (!t || e.turn_ended().outcome() == v1::TurnEnded::REQUIRES_ACTION) return;
      Set(t, Stage::kEnd, ns);
      switch (e.turn_ended().outcome()) {
        case v1::TurnEnded::COMPLETED: t->outcome = "completed"; break;
        case v1::TurnEnded::CANCELLED: t->outcome = "cancelled"; break;
        case v1::TurnEnded::FAILED: t->outcome = "failed"; break;
        default: t->outcome = "ended";
      }
      // Nothing to play (a text-only reply) or already played: done.
      if (!t->has(Stage::kFirstAudio) || t->has(Stage::kLastSample)) Report(size_t(t - open_.data()));
    }
  } else if (base == "session.audio" || base == "audio.out") {
    TurnTrace* t = Find(h.turn_id());
    if (!t) return;
    if (base == "session.audio") {
      v1::EncodedAudio a;
      if (!parse(&a)) return;
      if (!t->has(Stage::kFirstAudio) && a.packet_index() > 0) t->audio_lost = true;
      if (a.packet_index() == 0) t->audio_lost = false;
    }
    Set(t, Stage::kFirstAudio, ns);
    if (base == "audio.out" && playing_.empty() && !t->has(Stage::kLastSample)) {
      playing_ = t->turn_id;
      last_audible_end_ = 0;
    }
  } else if (base == "audio.ref") {
    TurnTrace* t = Find(playing_);
    if (!t) return;
    v1::AudioFrame f;
    if (!parse(&f)) return;
    if (f.synthetic_silence() || f.sample_rate() == 0 || f.channels() == 0) return;
    // play_ns is the frame's first sample; the reply may begin (or end)
    // inside the frame: stamp its first (last) sample that is not zero.
    const std::string& pcm = f.pcm();
    const size_t n = pcm.size() / 2;
    auto nonzero = [&](size_t i) { return pcm[2 * i] != 0 || pcm[2 * i + 1] != 0; };
    size_t first = 0, last = n;
    while (first < n && !nonzero(first)) ++first;
    if (first == n) return;  // digital silence
    while (last > first && !nonzero(last - 1)) --last;
    auto at = [&](size_t i) { return f.play_ns() + int64_t(i / f.channels()) * 1'000'000'000 / f.sample_rate(); };
    Set(t, Stage::kFirstSample, at(first));
    last_audible_end_ = at(last + f.channels() - 1);
  } else if (base == "playback.event") {
    v1::PlaybackEvent e;
    if (!parse(&e)) return;
    TurnTrace* t = Find(e.turn_id().empty() ? h.turn_id() : e.turn_id());
    if (!t) return;
    if (e.kind() == v1::PlaybackEvent::STARTED) {
      playing_ = t->turn_id;
    } else if (e.kind() == v1::PlaybackEvent::DRAINED || e.kind() == v1::PlaybackEvent::FLUSHED) {
      if (e.kind() == v1::PlaybackEvent::FLUSHED) Set(t, Stage::kInterrupted, ns);
      Set(t, Stage::kLastSample, playing_ == t->turn_id && last_audible_end_ ? last_audible_end_ : ns);
      if (playing_ == t->turn_id) playing_.clear();
      if (t->has(Stage::kEnd)) Report(size_t(t - open_.data()));
    }
  }
}

void TurnTracer::Finish() {
  while (!open_.empty()) Report(0);
}

std::string FormatTrace(const TurnTrace& t) {
  const int64_t t0 = t.first();
  int64_t span = 1;
  for (int64_t v : t.at)
    if (v) span = std::max(span, v - t0);
  std::string out = "turn " + (t.turn_id.empty() ? std::string("(none)") : t.turn_id);
  if (!t.outcome.empty()) out += " (" + t.outcome + ")";
  if (t.audio_lost) out += " [its first audio packet was not heard: first_audio and the speaker's stages may be late]";
  out += "\n";
  constexpr int kWidth = 40;
  std::vector<std::pair<int64_t, int>> order;
  for (int i = 0; i < int(Stage::kCount); ++i)
    if (t.at[i]) order.push_back({t.at[i], i});
  std::stable_sort(order.begin(), order.end());
  for (auto [at, i] : order) {
    char line[160];
    int col = int((at - t0) * kWidth / span);
    snprintf(line, sizeof line, "  %-18s %9s ms  %s%s\n", kNames[i], Ms(at - t0).c_str(),
             std::string(size_t(col), ' ').c_str(), "|");
    out += line;
  }
  int64_t r = t.ResponseNs();
  if (r < 0) {
    out += "  response: unknown (no speech end or no reply sample at the speaker)\n";
    return out;
  }
  out += "  response (speech end -> first reply sample): " + Ms(r) + " ms\n";
  // Each stage's share: from the previous stage on the path to the speaker.
  const Stage path[] = {Stage::kServerSpeechEnd, Stage::kTranscript, Stage::kTurnStarted,
                        Stage::kFirstText,       Stage::kFirstAudio, Stage::kFirstSample};
  int64_t prev = t.has(Stage::kSpeechEnd) ? t.at[int(Stage::kSpeechEnd)] : t.at[int(Stage::kServerSpeechEnd)];
  out += "  shares:";
  for (Stage s : path) {
    if (!t.has(s) || t.at[int(s)] < prev) continue;
    int64_t d = t.at[int(s)] - prev;
    char buf[96];
    snprintf(buf, sizeof buf, " %s +%s ms (%.0f%%)", kNames[int(s)], Ms(d).c_str(),
             r > 0 ? 100.0 * double(d) / double(r) : 0.0);
    out += buf;
    prev = t.at[int(s)];
  }
  out += "\n";
  return out;
}

std::string TraceJson(const TurnTrace& t) {
  const int64_t t0 = t.first();
  std::string out = "{\"turn_id\":";
  AppendJsonString(t.turn_id, &out);
  out += ",\"outcome\":\"" + t.outcome + "\",\"audio_lost\":" + (t.audio_lost ? "true" : "false") + ",\"response_ms\":";
  int64_t r = t.ResponseNs();
  out += r < 0 ? std::string("null") : Ms(r);
  out += ",\"stages\":{";
  bool first = true;
  for (int i = 0; i < int(Stage::kCount); ++i) {
    if (!t.at[i]) continue;
    if (!first) out += ",";
    first = false;
    out += std::string("\"") + kNames[i] + "\":" + Ms(t.at[i] - t0);
  }
  out += "}}\n";
  return out;
}

}  // namespace vb::sniff
