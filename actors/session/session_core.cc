// SessionCore and UplinkEncoder (see session_core.h).
#include "actors/session/session_core.h"

#include <opus/opus.h>

#include <time.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdio>

namespace vb::session {

// ---------------------------------------------------------- UplinkEncoder

UplinkEncoder::~UplinkEncoder() {
  if (opus_) opus_encoder_destroy(opus_);
}

bool UplinkEncoder::Init(const std::string& codec, int sample_rate, int opus_bitrate, std::string* error) {
  codec_ = codec;
  sample_rate_ = sample_rate;
  frame_bytes_ = sample_rate / 50 * 2;  // 20 ms mono s16
  if (codec != "opus") return codec == "pcm" || (*error = "unknown input codec " + codec, false);
  int err = 0;
  opus_ = opus_encoder_create(sample_rate, 1, OPUS_APPLICATION_VOIP, &err);
  if (err != OPUS_OK || !opus_) {
    opus_ = nullptr;
    *error = std::string("opus encoder: ") + opus_strerror(err);
    return false;
  }
  opus_encoder_ctl(opus_, OPUS_SET_BITRATE(opus_bitrate));
  opus_int32 lookahead = 0;
  opus_encoder_ctl(opus_, OPUS_GET_LOOKAHEAD(&lookahead));
  pre_skip_ = int(lookahead) * (48000 / sample_rate);
  return true;
}

namespace {
// Ogg's CRC-32: polynomial 0x04c11db7, no reflection, initial value 0.
uint32_t OggCrc(std::string_view data) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t r = i << 24;
      for (int k = 0; k < 8; ++k) r = r & 0x80000000u ? (r << 1) ^ 0x04c11db7u : r << 1;
      t[i] = r;
    }
    return t;
  }();
  uint32_t crc = 0;
  for (unsigned char c : data) crc = (crc << 8) ^ kTable[((crc >> 24) ^ c) & 0xff];
  return crc;
}
void PutLe(std::string* s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s->push_back(char((v >> (8 * i)) & 0xff));
}
}  // namespace

std::string UplinkEncoder::OggPage(std::string_view packet, uint8_t flags, uint64_t granule) {
  std::string page = "OggS";
  page.push_back('\0');  // version
  page.push_back(char(flags));
  PutLe(&page, granule, 8);
  PutLe(&page, serial_, 4);
  PutLe(&page, page_seq_++, 4);
  PutLe(&page, 0, 4);  // CRC, filled below
  // Lacing: 255-byte segments, then the remainder (0 if it divides evenly).
  const size_t segments = packet.size() / 255 + 1;
  page.push_back(char(segments));
  for (size_t i = 0; i + 1 < segments; ++i) page.push_back(char(255));
  page.push_back(char(packet.size() % 255));
  page.append(packet);
  const uint32_t crc = OggCrc(page);
  for (int i = 0; i < 4; ++i) page[22 + size_t(i)] = char((crc >> (8 * i)) & 0xff);
  return page;
}

void UplinkEncoder::Encode(std::string_view pcm, std::vector<std::string>* out) {
  if (!opus_) {
    if (!pcm.empty()) out->emplace_back(pcm);
    return;
  }
  pending_.append(pcm);
  size_t pos = 0;
  unsigned char packet[1500];
  while (pending_.size() - pos >= size_t(frame_bytes_)) {
    const auto* samples = reinterpret_cast<const opus_int16*>(pending_.data() + pos);
    int n = opus_encode(opus_, samples, frame_bytes_ / 2, packet, sizeof packet);
    pos += size_t(frame_bytes_);
    if (n <= 0) continue;
    std::string payload;
    if (!headers_sent_) {
      headers_sent_ = true;
      std::string head = "OpusHead";
      head.push_back(1);  // version
      head.push_back(1);  // channels
      PutLe(&head, uint64_t(pre_skip_), 2);
      PutLe(&head, uint64_t(sample_rate_), 4);
      PutLe(&head, 0, 2);  // output gain
      head.push_back(0);   // channel mapping family
      std::string tags = "OpusTags";
      const std::string vendor = "voicebus";
      PutLe(&tags, vendor.size(), 4);
      tags += vendor;
      PutLe(&tags, 0, 4);  // no user comments
      payload = OggPage(head, 0x02, 0) + OggPage(tags, 0, 0);
    }
    granule_ += 960;  // 20 ms at 48 kHz, whatever the input rate
    payload += OggPage(std::string_view(reinterpret_cast<const char*>(packet), size_t(n)), 0, granule_);
    out->push_back(std::move(payload));
  }
  pending_.erase(0, pos);
}

void UplinkEncoder::Reset() {
  pending_.clear();
  if (opus_) opus_encoder_ctl(opus_, OPUS_RESET_STATE);
}

void UplinkEncoder::NewStream() {
  Reset();
  if (headers_sent_) ++serial_;
  headers_sent_ = false;
  page_seq_ = 0;
  granule_ = 0;
}

// ------------------------------------------------------------ SessionCore

namespace {
int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// SessionError.code when audio missed across a restart could not be fetched
// again (as HTTP's 410 Gone); told only from this length on.
constexpr int kMissedAudioCode = 410;
constexpr int64_t kMissedAudioTellMs = 300;
}  // namespace

SessionCore::SessionCore(CoreOptions options, SessionPort* port)
    : options_(std::move(options)), port_(port), mode_(options_.mode), device_(options_.device) {
  if (mode_ == v1::MODE_UNSPECIFIED) mode_ = v1::MODE_CONTINUOUS;
  const auto& s = options_.settings;
  downlink_.SetOutputFormat(s.output_codec, s.output_sample_rate, s.frame_size_ms);
}

bool SessionCore::Init(std::string* error) {
  const auto& s = options_.settings;
  return encoder_.Init(s.input_codec, s.input_sample_rate, s.input_opus_bitrate, error);
}

void SessionCore::SetConversation(const std::string& conversation_id) {
  if (conversation_id == conversation_id_) return;
  conversation_id_ = conversation_id;
  port_->ConversationChanged(conversation_id_);
}

bool SessionCore::streaming() const { return mode_ == v1::MODE_CONTINUOUS || listening_; }

uint32_t SessionCore::buffered_ms() const {
  int bytes_per_ms = options_.settings.input_sample_rate / 1000 * 2;
  return bytes_per_ms > 0 ? uint32_t(held_bytes_ / size_t(bytes_per_ms)) : 0;
}

v1::SessionEvent SessionCore::Status() const {
  v1::SessionEvent e;
  auto& st = *e.mutable_status();
  st.set_connected(connected_);
  st.set_conversation_id(conversation_id_);
  st.set_service(options_.service);
  st.set_reconnects(uint32_t(counters_.reconnects));
  st.set_buffered_audio_ms(buffered_ms());
  st.set_turn_id(downlink_.running_chat());
  st.set_queued_texts(uint32_t(texts_.size()));
  return e;
}

void SessionCore::PublishStatus() { port_->PublishEvent(Status(), downlink_.running_chat()); }

void SessionCore::SendChatUpdate() {
  // The server restarts its input decoder with every chat.update.
  encoder_.NewStream();
  port_->SendText(uplink_.ChatUpdate(options_.settings, mode_, conversation_id_), 0);
}

void SessionCore::OnConnected() {
  if (connected_) return;
  connected_ = true;
  ready_ = false;
  in_speech_ = false;  // a new connection: the server's VAD starts afresh
  connected_ns_ = NowNs();
  encoder_.Reset();
  // Held audio and texts wait for chat.updated: if the server refuses our
  // conversation (4002), the actor replaces it and they go to the new one.
  SendChatUpdate();
  PublishStatus();
}

void SessionCore::MarkReady() {
  if (!connected_ || ready_) return;
  ready_ = true;
  // Audio held during the outage goes first, in order, then whatever the
  // outage interrupted (a push-to-talk release), then the queued texts.
  while (!held_.empty()) {
    Held h = std::move(held_.front());
    held_.pop_front();
    held_bytes_ -= h.pcm.size();
    ++counters_.frames_replayed;
    SendAudio(h.pcm, 0);  // held through an outage: not the live path's latency
    if (!h.end_sample) continue;
    NoteSent(h.end_sample);
    sent_tail_bytes_ += h.pcm.size();
    h.sent_ns = NowNs();
    sent_tail_.push_back(std::move(h));
  }
  held_bytes_ = 0;
  if (pending_complete_) {
    pending_complete_ = false;
    Owe(NowNs());
    port_->SendText(uplink_.Complete(), 0);
    resend_from_ = std::max(resend_from_, sent_end_);
    port_->ResumeChanged(true);
  }
  if (clear_pending_) {
    clear_pending_ = false;
    port_->SendText(uplink_.ConversationClear(), 0);
  }
  SendQueuedText(NowNs());
  PublishStatus();
}

void SessionCore::OnDisconnected(const std::string& reason) {
  if (!connected_) return;
  connected_ = false;
  ready_ = false;
  in_speech_ = false;
  text_turn_pending_ = false;
  owed_since_ns_ = 0;
  ++counters_.reconnects;
  if (!inflight_.empty()) {
    // Sent, but no chat started for them: the server forgets them with the
    // connection, so they go again first on the next one.
    counters_.texts_resent += inflight_.size();
    port_->Problem(std::to_string(inflight_.size()) +
                   " text input(s) sent but not yet answered: sent again after reconnecting");
    texts_.insert(texts_.begin(), std::make_move_iterator(inflight_.begin()), std::make_move_iterator(inflight_.end()));
    inflight_.clear();
  }
  downlink_.ForgetExpectedTexts();
  // The server forgets an utterance it has not finished with its
  // connection: what was sent since the resend point goes again, first.
  while (!sent_tail_.empty()) {
    Held h = std::move(sent_tail_.back());
    sent_tail_.pop_back();
    if (h.end_sample <= resend_from_) continue;
    held_bytes_ += h.pcm.size();
    held_.push_front(std::move(h));
    ++counters_.frames_requeued;
  }
  sent_tail_bytes_ = 0;
  while (held_bytes_ > HoldLimitBytes() && !held_.empty()) {
    held_bytes_ -= held_.front().pcm.size();
    held_.pop_front();
    ++counters_.frames_dropped;
  }
  outs_.clear();
  downlink_.AbandonRunning(&outs_);
  Deliver(outs_, 0);
  port_->ResumeChanged(true);
  PublishStatus();
}

bool SessionCore::Stalled(int64_t now_ns, int64_t timeout_ns) const {
  if (!connected_) return false;
  bool running = !downlink_.running_chat().empty();
  // Waiting for our own tool output is not the server's silence.
  if (!downlink_.tool_chat().empty() && !owed_since_ns_) return false;
  if (!running && !owed_since_ns_) return false;
  int64_t since = std::max(last_rx_ns_, owed_since_ns_);
  return now_ns - since > timeout_ns;
}

void SessionCore::OnServerText(std::string_view text, int64_t recv_ns) {
  last_rx_ns_ = recv_ns > 0 ? recv_ns : NowNs();
  outs_.clear();
  std::string problem;
  downlink_.Feed(text, &outs_, &problem);
  if (!problem.empty()) port_->Problem(problem);
  Deliver(outs_, recv_ns);
}

void SessionCore::Deliver(const std::vector<DownlinkOutput>& outs, int64_t recv_ns) {
  for (const auto& o0 : outs) {
    const DownlinkOutput* op = &o0;
    DownlinkOutput failed;
    if (o0.kind == DownlinkOutput::Kind::kEvent && o0.event.has_error() && o0.turn_id.empty() && owed_since_ns_ &&
        !o0.event.error().fatal() && o0.event.error().code() != 4002) {
      // An error answers what we are owed (a text, a committed utterance, a
      // tool output) before any chat ran: that turn has failed. TurnEnded
      // FAILED with no chat id ends the wait of whoever waits (vb-control's
      // THINKING, a gateway request) and the person hears the error prompt.
      failed.turn_id = "";
      failed.event.mutable_turn_ended()->set_outcome(v1::TurnEnded::FAILED);
      failed.event.mutable_turn_ended()->set_error(o0.event.error().message());
      downlink_.ForgetExpectedText();
      if (!inflight_.empty()) inflight_.pop_front();  // answered, by a failure
      op = &failed;
    }
    const DownlinkOutput& o = *op;
    switch (o.kind) {
      case DownlinkOutput::Kind::kEvent:
        // The reply we owed has started (or ended, e.g. REQUIRES_ACTION).
        if (o.event.has_turn_started() || o.event.has_turn_ended()) owed_since_ns_ = 0;
        if (o.event.has_user_speech()) {
          in_speech_ = o.event.user_speech().started();
          if (!in_speech_) {
            // The server closed the utterance. It becomes its turn once the
            // chat starts; until then a restart or a dropped connection
            // sends it again (a server forgets a turn it had not begun
            // with its connection).
            utterance_owed_ = true;
            utterance_owed_ns_ = NowNs();
            utterance_end_ = sent_end_;
            port_->ResumeChanged(true);
          }
        }
        if ((o.event.has_turn_started() || o.event.has_turn_ended()) && utterance_owed_) SettleUtterance();
        if (o.event.has_turn_started() && o.event.turn_started().input() == v1::TurnStarted::TEXT &&
            !inflight_.empty()) {
          // The text's chat has started: it is answered from here on.
          auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const QueuedText& t) {
            return t.request_id == o.event.turn_started().request_id();
          });
          inflight_.erase(it != inflight_.end() ? it : inflight_.begin());
        }
        if (o.event.has_turn_started() && !o.event.turn_started().conversation_id().empty() &&
            o.event.turn_started().conversation_id() != conversation_id_) {
          // The server chose another conversation (ours expired): follow it.
          SetConversation(o.event.turn_started().conversation_id());
        }
        port_->PublishEvent(o.event, o.turn_id);
        if (o.event.has_turn_started() || o.event.has_turn_ended()) port_->ResumeChanged(true);
        if (o.event.has_turn_ended() && o.event.turn_ended().outcome() != v1::TurnEnded::REQUIRES_ACTION) {
          text_turn_pending_ = false;
          SendQueuedText(NowNs());
        }
        break;
      case DownlinkOutput::Kind::kAudio: port_->PublishAudio(o.audio, o.turn_id, recv_ns); break;
      case DownlinkOutput::Kind::kConfigApplied: MarkReady(); break;
      case DownlinkOutput::Kind::kSessionReady: break;
    }
  }
}

void SessionCore::Hold(std::string pcm, int64_t origin_ns, uint64_t end_sample) {
  const size_t limit = HoldLimitBytes();
  held_bytes_ += pcm.size();
  held_.push_back({std::move(pcm), origin_ns, end_sample});
  ++counters_.frames_buffered;
  // Oldest audio goes first: what the user says last matters most.
  while (held_bytes_ > limit && !held_.empty()) {
    held_bytes_ -= held_.front().pcm.size();
    held_.pop_front();
    ++counters_.frames_dropped;
  }
}

void SessionCore::SendAudio(std::string_view pcm, int64_t origin_ns) {
  packets_.clear();
  encoder_.Encode(pcm, &packets_);
  for (const auto& p : packets_) {
    if (port_->SendText(uplink_.Append(p), origin_ns)) {
      ++counters_.frames_sent;
    } else {
      ++counters_.send_refused;
      ++counters_.frames_dropped;
    }
  }
}

void SessionCore::NoteSent(uint64_t end_sample) { sent_end_ = std::max(sent_end_, end_sample); }

void SessionCore::Stream(std::string_view pcm, int64_t origin_ns, uint64_t first_sample, bool indexed, bool live) {
  uint64_t end = 0;
  if (indexed) {
    end = first_sample + pcm.size() / 2;
    if (!has_samples_ || first_sample < stream_end_) {
      // The first audio, or a new stream upstream (or a new utterance's
      // preroll): nothing before it is owed to the server.
      has_samples_ = true;
      resend_from_ = first_sample;
      sent_end_ = first_sample;
      sent_tail_.clear();
      sent_tail_bytes_ = 0;
    }
    stream_end_ = end;
  }
  if (!ready()) return Hold(std::string(pcm), origin_ns, end);
  SendAudio(pcm, live ? origin_ns : 0);
  if (!end) return;
  NoteSent(end);
  sent_tail_.push_back({std::string(pcm), origin_ns, end, NowNs()});
  sent_tail_bytes_ += pcm.size();
  while (sent_tail_bytes_ > HoldLimitBytes() && !sent_tail_.empty()) {
    sent_tail_bytes_ -= sent_tail_.front().pcm.size();
    sent_tail_.pop_front();
  }
}

ResumePoint SessionCore::Resume() { return Resume(NowNs()); }

void SessionCore::SettleUtterance() {
  utterance_owed_ = false;
  resend_from_ = std::max(resend_from_, utterance_end_);
}

ResumePoint SessionCore::Resume(int64_t now_ns) {
  // A closed utterance that no chat followed within the wait was not a
  // turn for the server (noise, nothing recognised): not owed again.
  if (utterance_owed_ && now_ns - utterance_owed_ns_ > kUtteranceTurnWaitNs) SettleUtterance();
  if (streaming() && has_samples_ && ServerVad() && !in_speech_ && !utterance_owed_) {
    // Silence the server has surely heard as silence: a new connection need
    // not hear it again. Audio written to the wire at least a second ago
    // without a speech_started since has been judged silence (the second
    // covers the delay of that event); its VAD's prefix padding before it
    // may still open the next utterance. Judged by when it went out: a
    // backfill of several seconds goes out at once, and a kill right after
    // must not skip the question it carried.
    const int64_t judged_by = now_ns - kSpeechStartedDelayNs;
    uint64_t judged_end = 0;
    for (const Held& h : sent_tail_) {
      if (h.sent_ns > judged_by) break;
      judged_end = h.end_sample;
    }
    const uint64_t padding = uint64_t(options_.settings.prefix_padding_ms) * SamplesPerMs();
    if (judged_end > padding) resend_from_ = std::max(resend_from_, judged_end - padding);
  }
  while (!sent_tail_.empty() && sent_tail_.front().end_sample <= resend_from_) {
    sent_tail_bytes_ -= sent_tail_.front().pcm.size();
    sent_tail_.pop_front();
  }
  ResumePoint p;
  p.turn_id = downlink_.running_chat();
  p.mode = mode_;
  p.device = device_;
  p.listening = listening_;
  p.streaming = streaming();
  p.has_samples = has_samples_;
  p.resend_from = resend_from_;
  if (fetch_.on && !backfill_got_) {
    // Nothing of the fetch has come yet: the question (or the audio a
    // restart missed) starts there, in the fetched device's numbering.
    p.has_samples = true;
    p.resend_from = fetch_.from;
  } else if (live_from_ && !has_samples_) {
    p.has_samples = true;  // the start, not yet received: the live frames bring it
    p.resend_from = live_from_;
  }
  p.texts.assign(inflight_.begin(), inflight_.end());
  p.texts.insert(p.texts.end(), texts_.begin(), texts_.end());
  return p;
}

void SessionCore::RestoreTexts(const std::vector<PendingText>& texts) {
  if (texts.empty()) return;
  counters_.texts_resent += texts.size();
  texts_.insert(texts_.begin(), texts.begin(), texts.end());
  SendQueuedText(NowNs());
  port_->ResumeChanged(true);
}

void SessionCore::Restore(const ResumePoint& p) {
  if (p.mode != v1::MODE_UNSPECIFIED) mode_ = p.mode;
  listening_ = p.listening && mode_ != v1::MODE_CONTINUOUS;
}

void SessionCore::ResumeStream(const std::string& named, bool has_from, uint64_t from, int wait_ms, int64_t now_ns) {
  const std::string device = named.empty() ? options_.device : named;
  if (device != device_) SwitchDevice(device);
  if (!has_from) return;
  if (fetch_.on) EndFetch();
  BeginBackfill();
  fetch_ = Fetch{.on = true,
                 .device = device,
                 .from = from,
                 .started_ns = now_ns,
                 .restart = true,
                 .wait_ns = int64_t(wait_ms) * 1'000'000};
  // Asked at the device's first live frame (its audio reaches us: the
  // answer will too), or after a short wait (Tick).
}

void SessionCore::TellMissed(int64_t ms) {
  if (ms >= 0 && ms < kMissedAudioTellMs) return;
  ++counters_.audio_missed;
  v1::SessionEvent e;
  e.mutable_error()->set_code(kMissedAudioCode);
  char missed[96] = "I missed what was said while restarting: please say it again";
  if (ms >= 0)
    std::snprintf(missed, sizeof missed, "I missed %.1f s of what was said while restarting: please say it again",
                  double(ms) / 1000);
  e.mutable_error()->set_message(missed);
  e.mutable_error()->set_fatal(false);
  port_->Problem(missed);
  port_->PublishEvent(e, "");
}

void SessionCore::EndTurnAfterRestart(const std::string& turn_id) {
  if (turn_id.empty()) return;
  v1::SessionEvent e;
  e.mutable_turn_ended()->set_outcome(v1::TurnEnded::FAILED);
  e.mutable_turn_ended()->set_error("session restarted");
  port_->PublishEvent(e, turn_id);
}

void SessionCore::BeginBackfill() {
  backfilling_ = true;
  backfill_got_ = false;
  live_wait_.clear();
}

void SessionCore::OnBackfill(const v1::AudioFrame& frame, int64_t origin_ns) {
  if (!backfilling_ || frame.channels() > 1 || frame.pcm().size() % 2 != 0 ||
      (frame.sample_rate() != 0 && int(frame.sample_rate()) != options_.settings.input_sample_rate))
    return;
  ++counters_.frames_backfilled;
  backfill_got_ = true;
  // origin 0: late by design, not a sample of mic-to-wire latency.
  Stream(frame.pcm(), 0, frame.sample_index(), true);
}

void SessionCore::EndBackfill() {
  if (!backfilling_) return;
  backfilling_ = false;
  if (backfill_got_ && has_samples_ && !live_wait_.empty() && live_wait_.front().sample_index > stream_end_) {
    // The answer ended before the first live frame: that much never arrived.
    const uint64_t hole = live_wait_.front().sample_index - stream_end_;
    counters_.samples_missed += hole;
    port_->Problem(std::to_string(hole) + " samples between the backfill and the live audio were lost");
  }
  // Live frames the backfill already covered are not sent twice.
  for (auto& l : live_wait_) {
    const uint64_t n = l.pcm.size() / 2;
    uint64_t skip = 0;
    if (has_samples_ && l.sample_index < stream_end_) skip = std::min<uint64_t>(n, stream_end_ - l.sample_index);
    if (skip == n) continue;
    Stream(std::string_view(l.pcm).substr(size_t(skip) * 2), l.origin_ns, l.sample_index + skip, true);
  }
  live_wait_.clear();
}

void SessionCore::Tick(int64_t now_ns) {
  if (fetch_.on) {
    if (now_ns - fetch_.started_ns > fetch_.wait_ns) {
      const std::string within = "no answer from device " + fetch_.device + "'s vb-wakevad within " +
                                 std::to_string(fetch_.wait_ns / 1'000'000) + " ms";
      if (fetch_.restart) {
        ++counters_.backfill_timeouts;
        port_->Problem("backfill: " + within + " (is it running?): streaming live audio");
        TellMissed(-1);
      } else {
        ++counters_.fetch_timeouts;
        port_->Problem(within + ": the question's start is lost, live audio only");
      }
      EndFetch();
    } else if (!fetch_.answered && now_ns - (fetch_.sent_ns ? fetch_.sent_ns : fetch_.started_ns) > kFetchRetryNs) {
      SendFetch(now_ns);  // lost, or no frame of the device came: ask (again)
    }
  }
  if (connected_ && !ready_ && now_ns - connected_ns_ > int64_t(options_.config_wait_ms) * 1'000'000) {
    port_->Problem("no chat.updated from the server: sending the held audio and texts anyway");
    MarkReady();
  }
  SendQueuedText(now_ns);
}

void SessionCore::Ack(const v1::DialogCommand& cmd, v1::CommandAck::Result r, const std::string& reason) {
  if (cmd.command_id().empty()) return;
  if (cmd.has_text_input()) {
    if (taken_texts_.size() >= kTakenTexts) taken_texts_.pop_front();
    taken_texts_.emplace_back(cmd.command_id(), r);
  }
  port_->Ack(cmd.command_id(), r, reason);
}

bool SessionCore::RepeatedText(const v1::DialogCommand& cmd) {
  const std::string& id = cmd.command_id();
  if (id.empty()) return false;
  for (auto it = taken_texts_.rbegin(); it != taken_texts_.rend(); ++it)
    if (it->first == id) {
      port_->Ack(id, it->second, "already received");
      return true;
    }
  // Taken by the previous process and restored from its state file.
  for (const auto* q : {&inflight_, &texts_})
    for (const auto& t : *q)
      if (t.command_id == id) {
        port_->Ack(id, q == &inflight_ ? v1::CommandAck::ACCEPTED : v1::CommandAck::QUEUED, "already received");
        return true;
      }
  return false;
}

void SessionCore::SendText(const QueuedText& t, int64_t now_ns) {
  // The server interrupts the running reply (canceled code 3): mute it now.
  downlink_.MarkCancelled("");
  downlink_.ExpectTextTurn(t.request_id);
  Owe(now_ns);
  port_->SendText(uplink_.MessageCreate(t.text), 0);
  if (inflight_.size() >= kInflightTexts) inflight_.pop_front();
  inflight_.push_back(t);
  port_->ResumeChanged(true);  // persisted until its chat starts: a restart sends it again
}

void SessionCore::SendQueuedText(int64_t now_ns) {
  const int64_t max_age = int64_t(options_.text_queue_max_age_ms) * 1'000'000;
  while (!texts_.empty() && now_ns - texts_.front().queued_ns > max_age) {
    const QueuedText& t = texts_.front();
    ++counters_.texts_expired;
    const std::string why = "text input not sent: the session was offline for more than " +
                            std::to_string(options_.text_queue_max_age_ms / 1000) + " s";
    v1::SessionEvent e;
    e.mutable_error()->set_message(why);
    port_->PublishEvent(e, "");
    if (!t.command_id.empty()) port_->Ack(t.command_id, v1::CommandAck::REFUSED, why);
    texts_.pop_front();
  }
  if (!ready() || text_turn_pending_ || texts_.empty()) return;
  QueuedText t = std::move(texts_.front());
  texts_.pop_front();
  SendText(t, now_ns);
  text_turn_pending_ = true;  // the next one waits for this one's reply
}

void SessionCore::Remember(const v1::AudioFrame& frame, int64_t origin_ns, std::string_view device) {
  const uint64_t n = frame.pcm().size() / 2;
  if (n == 0) return;
  if (device != recent_device_ ||
      (!recent_.empty() && frame.sample_index() < recent_.back().sample_index + recent_.back().pcm.size() / 2)) {
    // Another device, or a new stream upstream: the old indices mean nothing here.
    recent_.clear();
    recent_samples_ = 0;
    recent_device_ = std::string(device);
  }
  recent_.push_back({frame.sample_index(), frame.pcm(), origin_ns});
  recent_samples_ += n;
  const size_t cap = size_t(std::max(0, options_.ring_ms)) * SamplesPerMs();
  while (recent_samples_ > cap && recent_.size() > 1) {
    recent_samples_ -= recent_.front().pcm.size() / 2;
    recent_.pop_front();
  }
}

void SessionCore::OnAudio(const v1::AudioFrame& in, int64_t origin_ns, std::string_view device) {
  ++counters_.frames_in;
  const bool format_ok =
      !(in.channels() > 1 || (in.sample_rate() != 0 && int(in.sample_rate()) != options_.settings.input_sample_rate) ||
        in.pcm().size() % 2 != 0);
  if (device.empty()) device = device_;
  if (format_ok) Remember(in, origin_ns, device);
  if (!streaming()) return;
  if (device != device_) {
    // The subscription moved before the StartListening naming the new
    // device came (or after it, old frames in flight): kept in the ring,
    // not streamed. A device nobody names that alone keeps sending is the
    // one to follow (a vb-control that does not name devices).
    ++counters_.frames_other_device;
    const int64_t now = NowNs();
    if (!other_since_ns_) other_since_ns_ = now;
    if (now - other_since_ns_ > kAdoptAfterNs && !fetch_.on && format_ok && recent_device_ == device) {
      port_->Problem("streaming the audio of device " + std::string(device) + ": no StartListening named it");
      StartFrom(std::string(device), true, recent_.front().sample_index, now);
    }
    return;
  }
  other_since_ns_ = 0;
  if (!format_ok) {
    ++counters_.frames_dropped;
    port_->Problem("audio.clean frame in an unexpected format (rate " + std::to_string(in.sample_rate()) +
                   ", channels " + std::to_string(in.channels()) + ")");
    return;
  }
  const v1::AudioFrame* fp = &in;
  v1::AudioFrame trimmed;
  if (live_from_) {
    // The question starts at live_from_ and had not reached the ring yet.
    const uint64_t n = in.pcm().size() / 2;
    // Far behind it: the stream restarted with new indices, the start will
    // never come; this is the question now.
    const bool restarted = in.sample_index() + kLiveFromSlack < live_from_;
    if (restarted) live_from_ = in.sample_index();
    if (in.sample_index() + n <= live_from_) return;
    if (in.sample_index() < live_from_) {
      trimmed = in;
      trimmed.set_pcm(in.pcm().substr(size_t(live_from_ - in.sample_index()) * 2));
      trimmed.set_sample_index(live_from_);
      fp = &trimmed;
    }
    live_from_ = 0;
  }
  const v1::AudioFrame& frame = *fp;
  if (backfilling_) {
    if (fetch_.on && !fetch_.sent_ns) SendFetch(NowNs());  // its audio flows here now: its ring has the start
    if (live_wait_.size() >= kLiveWaitFrames) {
      live_wait_.pop_front();
      ++counters_.frames_dropped;
    }
    live_wait_.push_back({frame.sample_index(), frame.pcm(), origin_ns});
    return;
  }
  if (guard_on_ && NowNs() - guard_renewed_ns_ > kGuardExpiryNs) ReleaseGuard(0);  // its control is gone
  if (guard_on_) {
    Guard(frame, origin_ns);
    return;
  }
  Stream(frame.pcm(), origin_ns, frame.sample_index(), true, /*live=*/true);
}

std::vector<std::pair<std::string, int64_t>> StartFigures(const CoreCounters& c) {
  return {{"start_from_ring", int64_t(c.start_from_ring)},
          {"start_fetched", int64_t(c.start_fetched)},
          {"fetch_timeouts", int64_t(c.fetch_timeouts)},
          {"backfill_beyond_newest", int64_t(c.backfill_beyond_newest)},
          {"backfill_too_old", int64_t(c.backfill_too_old)},
          {"samples_missed", int64_t(c.samples_missed)},
          {"frames_other_device", int64_t(c.frames_other_device)},
          {"device_switches", int64_t(c.device_switches)},
          {"backfill_timeouts", int64_t(c.backfill_timeouts)},
          {"audio_missed", int64_t(c.audio_missed)}};
}

void SessionCore::SwitchDevice(const std::string& device) {
  ++counters_.device_switches;
  device_ = device;
  other_since_ns_ = 0;
  live_from_ = 0;
  // Held behind during a reply: the old room's audio, not the question.
  counters_.frames_guard_cut += guard_.size();
  guard_.clear();
  has_samples_ = false;  // another device: its own sample numbering
}

void SessionCore::StartFrom(const std::string& named, bool has_from, uint64_t from, int64_t now_ns) {
  const std::string device = named.empty() ? device_ : named;
  // A restart's fetch of this device reaches back further, and the live
  // audio waits behind it anyway.
  if (fetch_.on && fetch_.restart && fetch_.device == device) return;
  if (fetch_.on) EndFetch();  // an unfinished fetch: what it has goes first
  const bool switched = device != device_;
  if (switched) SwitchDevice(device);
  live_from_ = 0;
  if (!has_from) return;  // live audio from now on
  // Continuous mode on the device already streamed: all of it went out.
  if (!switched && mode_ == v1::MODE_CONTINUOUS) return;
  const bool ours = recent_device_ == device && !recent_.empty();
  if (ours && recent_.front().sample_index <= from) {
    const uint64_t newest = recent_.back().sample_index + recent_.back().pcm.size() / 2;
    ++counters_.start_from_ring;
    if (from >= newest) {
      live_from_ = from;  // not here yet: the live frames bring it
      return;
    }
    for (const auto& r : recent_) {
      const uint64_t n = r.pcm.size() / 2;
      if (r.sample_index + n <= from) continue;
      const size_t skip = r.sample_index < from ? size_t(from - r.sample_index) * 2 : 0;
      // origin 0: late by design, not a sample of mic-to-wire latency.
      Stream(std::string_view(r.pcm).substr(skip), 0, r.sample_index + skip / 2, true);
      ++counters_.frames_bridged;
    }
    return;
  }
  // Another device, or older than the ring reaches: ask that device's
  // vb-wakevad ring. Live audio (and what the own ring holds after the
  // start) waits behind the answer; each sample goes out once.
  ++counters_.start_fetched;
  BeginBackfill();
  if (ours)
    for (const auto& r : recent_) live_wait_.push_back({r.sample_index, r.pcm, 0});
  fetch_ = Fetch{.on = true,
                 .device = device,
                 .from = from,
                 .started_ns = now_ns,
                 .wait_ns = int64_t(options_.fetch_wait_ms) * 1'000'000};
  // Its audio already reaches us, so its ring has the start: ask now. Else
  // at its first frame (the subscription is then in place and the answer
  // reaches back to it), or after a short wait.
  if (ours) SendFetch(now_ns);
}

void SessionCore::SendFetch(int64_t now_ns) {
  fetch_.request_id = "listen-" + std::to_string(now_ns) + "-" + std::to_string(++fetches_);
  fetch_.sent_ns = now_ns;
  ++fetch_.attempts;
  v1::BackfillRequest req;
  req.set_request_id(fetch_.request_id);
  req.set_from_sample(fetch_.from);
  req.set_max_samples(uint64_t(options_.outage_buffer_ms) * SamplesPerMs());
  port_->RequestBackfill(fetch_.device, req);
}

bool SessionCore::OnBackfillAnswer(const v1::AudioBackfill& a, int64_t origin_ns) {
  if (!fetch_.on || a.request_id().empty() || a.request_id() != fetch_.request_id) return false;
  fetch_.answered = true;
  if (a.has_frame()) OnBackfill(a.frame(), origin_ns);
  if (!a.last()) return true;
  const std::string dev = fetch_.device.empty() ? std::string("?") : fetch_.device;
  port_->Note("backfill: got samples " + std::to_string(fetch_.from) + "…" + std::to_string(a.end_sample()) +
              " of device " + dev + " (ring held from " + std::to_string(a.oldest_held()) + ")" +
              (fetch_.restart ? ": the audio missed while restarting" : ""));
  const std::string where =
      fetch_.restart ? "the audio missed while restarting (device " + dev + ")"
                     : "the start of the question (sample " + std::to_string(fetch_.from) + " of device " + dev + ")";
  if (a.beyond_newest()) {
    NoteBeyondNewest(where, fetch_.from, a.newest_end());
    if (fetch_.restart) TellMissed(-1);
  } else if (a.oldest_held() > fetch_.from) {
    const uint64_t ms = (a.oldest_held() - fetch_.from) / std::max<uint64_t>(1, SamplesPerMs());
    ++counters_.backfill_too_old;
    counters_.samples_missed += a.oldest_held() - fetch_.from;
    port_->Problem(where + " is older than its vb-wakevad's ring (from " + std::to_string(a.oldest_held()) +
                   "): " + std::to_string(ms) + " ms lost");
    if (fetch_.restart) TellMissed(int64_t(ms));
  }
  EndFetch();
  return true;
}

void SessionCore::NoteBeyondNewest(const std::string& what, uint64_t from, uint64_t newest_end) {
  ++counters_.backfill_beyond_newest;
  port_->Problem(what + " lies beyond the newest sample vb-wakevad's ring holds (asked from " + std::to_string(from) +
                 ", it ends at " + std::to_string(newest_end) +
                 "): its stream restarted with new indices, or the audio has not reached it; nothing fetched");
}

void SessionCore::EndFetch() {
  fetch_.on = false;
  EndBackfill();
}

void SessionCore::Guard(const v1::AudioFrame& frame, int64_t origin_ns) {
  ++counters_.frames_guarded;
  if (!guard_.empty() && frame.sample_index() < guard_.back().sample_index + guard_.back().pcm.size() / 2) {
    // A new stream upstream (capture or the AFE restarted: its indices
    // start again). The held frames of the old one would never fall behind
    // the new indices and the resend point would stay in the old numbering,
    // so a restart's backfill would skip the question held here: the old
    // stream's frames go out now, and the new stream starts the count.
    for (Guarded& g : guard_) Stream(g.pcm, g.origin_ns, g.sample_index, true);
    guard_.clear();
    has_samples_ = false;
  }
  if (guard_.empty() && has_samples_ && frame.sample_index() < stream_end_) has_samples_ = false;
  if (!has_samples_) {
    // Nothing of this stream has gone out yet: a restart must ask for it
    // from here, in this stream's numbering.
    has_samples_ = true;
    resend_from_ = sent_end_ = stream_end_ = frame.sample_index();
    sent_tail_.clear();
    sent_tail_bytes_ = 0;
  }
  guard_.push_back({frame.sample_index(), frame.pcm(), origin_ns});
  const uint64_t newest = frame.sample_index() + frame.pcm().size() / 2;
  // By sample count, not the clock: a burst (a backlog after a stall) moves
  // the line as far as the audio it carries.
  while (!guard_.empty() &&
         guard_.front().sample_index + guard_.front().pcm.size() / 2 + guard_delay_samples_ <= newest) {
    Guarded& g = guard_.front();
    Stream(g.pcm, g.origin_ns, g.sample_index, true);
    guard_.pop_front();
  }
}

void SessionCore::ReleaseGuard(uint64_t cut) {
  guard_on_ = false;
  for (auto& g : guard_) {
    const uint64_t n = g.pcm.size() / 2;
    if (g.sample_index + n <= cut) {
      ++counters_.frames_guard_cut;
      continue;
    }
    std::string_view pcm(g.pcm);
    uint64_t first = g.sample_index;
    if (first < cut) {
      pcm.remove_prefix(size_t(cut - first) * 2);
      first = cut;
    }
    Stream(pcm, g.origin_ns, first, true);
  }
  guard_.clear();
}

void SessionCore::Cancel(const std::string& turn_id) {
  outs_.clear();
  // A speech (generate_audio) is no chat: there is nothing to cancel on the
  // wire, its late audio is muted.
  const bool speech = downlink_.speaking();
  downlink_.CancelByClient(turn_id, &outs_);
  // Cancel on the wire only what is running there; an older turn is just muted.
  if (connected_ && !outs_.empty() && !speech) port_->SendText(uplink_.Cancel(), 0);
  Deliver(outs_, 0);
}

void SessionCore::OnCommand(const v1::DialogCommand& cmd) { OnCommandAt(cmd, NowNs()); }

void SessionCore::OnCommandAt(const v1::DialogCommand& cmd, int64_t now_ns) {
  ++counters_.commands;
  switch (cmd.command_case()) {
    case v1::DialogCommand::kStartListening: {
      if (mode_ == v1::MODE_PUSH_TO_TALK) {
        // client_interrupt: a new utterance replaces whatever is running.
        if (!downlink_.running_chat().empty()) Cancel("");
        if (connected_) port_->SendText(uplink_.Clear(), 0);
      }
      listening_ = true;
      encoder_.Reset();
      const auto& sl = cmd.start_listening();
      StartFrom(sl.device(), sl.has_from_sample(), sl.from_sample(), now_ns);
      port_->ResumeChanged(true);
      break;
    }
    case v1::DialogCommand::kStopListening: {
      if (fetch_.on) EndFetch();  // the question's start, fetched or not, goes before the commit
      live_from_ = 0;
      // What was captured while listening goes out first, guard or not.
      if (!guard_.empty()) {
        const bool on = guard_on_;
        ReleaseGuard(0);
        guard_on_ = on;
      }
      const bool was_listening = listening_;
      listening_ = false;
      if (mode_ == v1::MODE_CONTINUOUS) break;  // the server's VAD commits
      port_->ResumeChanged(true);
      if (!ready()) {
        // A push-to-talk release during a short outage: commit what is held
        // once it has been sent. Without a commit the held audio is cleared.
        if (cmd.stop_listening().commit() && mode_ == v1::MODE_PUSH_TO_TALK && was_listening && !held_.empty())
          pending_complete_ = true;
        break;
      }
      if (cmd.stop_listening().commit() && mode_ == v1::MODE_PUSH_TO_TALK) Owe(now_ns);
      port_->SendText(cmd.stop_listening().commit() ? uplink_.Complete() : uplink_.Clear(), 0);
      resend_from_ = std::max(resend_from_, sent_end_);  // committed or cleared: not owed again
      break;
    }
    case v1::DialogCommand::kInterrupt: Cancel(cmd.interrupt().turn_id()); break;
    case v1::DialogCommand::kUplinkGuard:
      if (cmd.uplink_guard().hold()) {
        guard_on_ = true;
        guard_renewed_ns_ = now_ns;
        guard_delay_samples_ = uint64_t(std::min<uint32_t>(cmd.uplink_guard().delay_ms(), 10000)) * SamplesPerMs();
      } else if (const uint64_t cut = cmd.uplink_guard().cut_before_sample();
                 cut && !dialog_device_.empty() && dialog_device_ != device_) {
        // The cut is a wake's end in the numbering of the device vb-control
        // now serves (it says so on dialog.state before it orders the cut),
        // not of the device whose frames are held: the wake moves the dialog
        // there, and what is held is the old room's audio, not the question.
        ReleaseGuard(UINT64_MAX);
      } else {
        ReleaseGuard(cut);
      }
      break;
    case v1::DialogCommand::kTextInput: {
      if (cmd.text_input().text().find_first_not_of(" \t\r\n") == std::string::npos) {
        port_->Problem("empty text input refused");
        Ack(cmd, v1::CommandAck::REFUSED, "the text is empty");
        break;
      }
      if (RepeatedText(cmd)) break;
      QueuedText t{cmd.text_input().text(), cmd.text_input().request_id(), cmd.command_id(), now_ns};
      if (ready() && texts_.empty() && !text_turn_pending_) {
        SendText(t, now_ns);
        Ack(cmd, v1::CommandAck::ACCEPTED, "");
        break;
      }
      const size_t cap = size_t(std::max(0, options_.text_queue));
      if (texts_.size() >= cap) {
        ++counters_.texts_refused;
        std::string why = cap == 0 ? "session offline: text input not sent"
                                   : "text input not sent: " + std::to_string(cap) +
                                         " texts already wait for the session to reconnect";
        v1::SessionEvent e;
        e.mutable_error()->set_message(why);
        port_->PublishEvent(e, "");
        Ack(cmd, v1::CommandAck::REFUSED, why);
        break;
      }
      texts_.push_back(std::move(t));
      ++counters_.texts_queued;
      port_->ResumeChanged(true);  // persisted: a restart still sends it
      Ack(cmd, v1::CommandAck::QUEUED,
          ready() ? "sent after the reply to the text before it" : "session offline: sent when it reconnects");
      SendQueuedText(now_ns);
      break;
    }
    case v1::DialogCommand::kToolOutput: {
      const auto& t = cmd.tool_output();
      std::string chat = !t.turn_id().empty() ? t.turn_id() : downlink_.tool_chat();
      if (chat.empty() || !connected_) {
        port_->Problem("tool output with no chat waiting for it");
        Ack(cmd, v1::CommandAck::REFUSED,
            !connected_ ? "session offline: tool output not sent" : "no chat is waiting for a tool output");
        break;
      }
      const auto& calls = downlink_.tool_calls();
      if (chat == downlink_.tool_chat() && calls.size() > 1 &&
          std::find(calls.begin(), calls.end(), t.call_id()) != calls.end()) {
        // Several calls at once: Coze resumes the chat on one
        // submit_tool_outputs carrying every output, so they are gathered.
        if (tool_outputs_chat_ != chat) {
          tool_outputs_chat_ = chat;
          tool_outputs_.clear();
        }
        bool known = false;
        for (auto& [id, out] : tool_outputs_) known = known || id == t.call_id();
        if (!known) tool_outputs_.emplace_back(t.call_id(), t.output());
        const size_t missing = calls.size() - tool_outputs_.size();
        Ack(cmd, v1::CommandAck::ACCEPTED,
            missing ? "held until the other " + std::to_string(missing) + " tool output(s) of the chat arrive" : "");
        if (missing == 0) {
          Owe(now_ns);
          port_->SendText(uplink_.SubmitToolOutputs(chat, tool_outputs_), 0);
          tool_outputs_.clear();
          tool_outputs_chat_.clear();
        }
      } else {
        Ack(cmd, v1::CommandAck::ACCEPTED, "");
        Owe(now_ns);
        port_->SendText(uplink_.SubmitToolOutputs(chat, t.call_id(), t.output()), 0);
      }
      v1::SessionEvent e;
      e.mutable_tool_result()->set_call_id(t.call_id());
      e.mutable_tool_result()->set_output(t.output());
      port_->PublishEvent(e, chat);
      break;
    }
    case v1::DialogCommand::kSetMode: {
      v1::DialogMode m = cmd.set_mode().mode();
      if (m == v1::MODE_UNSPECIFIED || m == mode_) break;
      mode_ = m;
      listening_ = false;
      if (connected_) SendChatUpdate();
      break;
    }
    case v1::DialogCommand::kSessionConfig: {
      const auto& c = cmd.session_config();
      auto& s = options_.settings;
      if (!c.voice_id().empty()) s.voice_id = c.voice_id();
      if (c.has_speech_rate()) s.speech_rate = std::clamp(c.speech_rate(), -50, 100);
      if (!c.persona_prompt().empty()) s.persona_prompt = c.persona_prompt();
      if (!c.bot_id().empty() && on_bot_change) on_bot_change(c.bot_id());
      if (connected_) SendChatUpdate();
      if (connected_) Ack(cmd, v1::CommandAck::ACCEPTED, "");
      else Ack(cmd, v1::CommandAck::QUEUED, "session offline: applied when it reconnects");
      break;
    }
    case v1::DialogCommand::kSpeak: {
      const std::string& text = cmd.speak().text();
      if (text.empty() || text.size() > 1023) {
        Ack(cmd, v1::CommandAck::REFUSED,
            "speak: the text must have 1 to 1023 bytes (has " + std::to_string(text.size()) + ")");
        break;
      }
      if (!ready()) {
        // An announcement is about now: not held for later.
        Ack(cmd, v1::CommandAck::REFUSED, "session offline: nothing was spoken");
        break;
      }
      // It interrupts what the agent says: that turn ends (CANCELLED) first.
      if (!downlink_.running_chat().empty()) Cancel("");
      const std::string turn = "speak-" + std::to_string(++speeches_) + "-" + std::to_string(now_ns);
      downlink_.BeginSpeech(turn);
      v1::SessionEvent e;
      auto& ts = *e.mutable_turn_started();
      ts.set_turn_id(turn);
      ts.set_conversation_id(conversation_id_);
      ts.set_input(v1::TurnStarted::TEXT);
      ts.set_request_id(cmd.command_id());
      port_->PublishEvent(e, turn);
      Owe(now_ns);
      port_->SendText(uplink_.GenerateAudio(text), 0);
      Ack(cmd, v1::CommandAck::ACCEPTED, "");
      break;
    }
    case v1::DialogCommand::kNewConversation: {
      if (!downlink_.running_chat().empty()) Cancel("");
      if (!ready()) {
        clear_pending_ = true;
        Ack(cmd, v1::CommandAck::QUEUED, "session offline: the conversation is cleared when it reconnects");
        break;
      }
      port_->SendText(uplink_.ConversationClear(), 0);
      Ack(cmd, v1::CommandAck::ACCEPTED, "");
      break;
    }
    default: break;  // PushToTalk, Flush, PlayPrompt: for control and playback
  }
}

}  // namespace vb::session
