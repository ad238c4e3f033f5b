// SessionCore, Backoff and UplinkEncoder (see session_core.h).
#include "actors/session/session_core.h"

#include <opus/opus.h>

#include <time.h>

#include <algorithm>
#include <cmath>

namespace vb::session {

// ---------------------------------------------------------------- Backoff

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter,
                 uint64_t seed)
    : initial_(initial), max_(max), jitter_(std::clamp(jitter, 0.0, 1.0)), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  double base = double(initial_.count()) * std::pow(2.0, std::min(attempt_, 30));
  base = std::min(base, double(max_.count()));
  if (attempt_ < 31) ++attempt_;
  std::uniform_real_distribution<double> d(1.0 - jitter_, 1.0 + jitter_);
  return std::chrono::milliseconds(int64_t(std::max(1.0, base * d(rng_))));
}

// ---------------------------------------------------------- UplinkEncoder

UplinkEncoder::~UplinkEncoder() {
  if (opus_) opus_encoder_destroy(opus_);
}

bool UplinkEncoder::Init(const std::string& codec, int sample_rate, int opus_bitrate, std::string* error) {
  codec_ = codec;
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
  return true;
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
    if (n > 0) out->emplace_back(reinterpret_cast<const char*>(packet), size_t(n));
    pos += size_t(frame_bytes_);
  }
  pending_.erase(0, pos);
}

void UplinkEncoder::Reset() {
  pending_.clear();
  if (opus_) opus_encoder_ctl(opus_, OPUS_RESET_STATE);
}

// ------------------------------------------------------------ SessionCore

namespace {
int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

SessionCore::SessionCore(CoreOptions options, SessionPort* port)
    : options_(std::move(options)), port_(port), mode_(options_.mode) {
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
  return e;
}

void SessionCore::PublishStatus() { port_->PublishEvent(Status(), downlink_.running_chat()); }

void SessionCore::SendChatUpdate() {
  port_->SendText(uplink_.ChatUpdate(options_.settings, mode_, conversation_id_), 0);
}

void SessionCore::OnConnected() {
  if (connected_) return;
  connected_ = true;
  SendChatUpdate();
  // Audio held during the outage goes first, in order, then whatever the
  // outage interrupted (a push-to-talk release).
  encoder_.Reset();
  while (!held_.empty()) {
    Held h = std::move(held_.front());
    held_.pop_front();
    held_bytes_ -= h.pcm.size();
    ++counters_.frames_replayed;
    SendAudio(h.pcm, h.origin_ns);
  }
  held_bytes_ = 0;
  PublishStatus();
}

void SessionCore::OnDisconnected(const std::string& reason) {
  if (!connected_) return;
  connected_ = false;
  owed_since_ns_ = 0;
  ++counters_.reconnects;
  outs_.clear();
  downlink_.AbandonRunning(&outs_);
  Deliver(outs_, 0);
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
  for (const auto& o : outs) {
    switch (o.kind) {
      case DownlinkOutput::Kind::kEvent:
        // The reply we owed has started (or ended, e.g. REQUIRES_ACTION).
        if (o.event.has_turn_started() || o.event.has_turn_ended()) owed_since_ns_ = 0;
        if (o.event.has_turn_started() && !o.event.turn_started().conversation_id().empty() &&
            o.event.turn_started().conversation_id() != conversation_id_) {
          // The server chose another conversation (ours expired): follow it.
          SetConversation(o.event.turn_started().conversation_id());
        }
        port_->PublishEvent(o.event, o.turn_id);
        break;
      case DownlinkOutput::Kind::kAudio:
        port_->PublishAudio(o.audio, o.turn_id, recv_ns);
        break;
      case DownlinkOutput::Kind::kSessionReady:
      case DownlinkOutput::Kind::kConfigApplied:
        break;
    }
  }
}

void SessionCore::Hold(std::string pcm, int64_t origin_ns) {
  size_t limit = size_t(options_.outage_buffer_ms) * size_t(options_.settings.input_sample_rate / 1000 * 2);
  held_bytes_ += pcm.size();
  held_.push_back({std::move(pcm), origin_ns});
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

void SessionCore::OnAudio(const v1::AudioFrame& frame, int64_t origin_ns) {
  ++counters_.frames_in;
  const bool format_ok = !(frame.channels() > 1 ||
                           (frame.sample_rate() != 0 && int(frame.sample_rate()) != options_.settings.input_sample_rate) ||
                           frame.pcm().size() % 2 != 0);
  if (!streaming()) {
    if (format_ok) {
      if (recent_.size() >= kRecentFrames) recent_.pop_front();
      recent_.push_back({frame.sample_index(), frame.pcm()});
    }
    return;
  }
  if (!format_ok) {
    ++counters_.frames_dropped;
    port_->Problem("audio.clean frame in an unexpected format (rate " + std::to_string(frame.sample_rate()) +
                   ", channels " + std::to_string(frame.channels()) + ")");
    return;
  }
  if (connected_) SendAudio(frame.pcm(), origin_ns);
  else Hold(frame.pcm(), origin_ns);
}

void SessionCore::Cancel(const std::string& turn_id) {
  outs_.clear();
  downlink_.CancelByClient(turn_id, &outs_);
  // Cancel on the wire only what is running there; an older turn is just muted.
  if (connected_ && !outs_.empty()) port_->SendText(uplink_.Cancel(), 0);
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
      const std::string& pre = cmd.start_listening().preroll_pcm();
      if (!pre.empty()) {
        if (connected_) SendAudio(pre, 0);
        else Hold(pre, 0);
      }
      // What was captured after the preroll, before this command arrived.
      if (const uint64_t end = cmd.start_listening().preroll_end_sample(); end > 0) {
        for (const auto& r : recent_) {
          const uint64_t n = r.pcm.size() / 2;
          if (r.sample_index + n <= end) continue;
          const size_t skip = r.sample_index < end ? size_t(end - r.sample_index) * 2 : 0;
          std::string_view pcm(r.pcm);
          pcm.remove_prefix(skip);
          // origin 0: late by design, not a sample of mic-to-wire latency.
          if (connected_) SendAudio(pcm, 0);
          else Hold(std::string(pcm), 0);
          ++counters_.frames_bridged;
        }
      }
      recent_.clear();
      break;
    }
    case v1::DialogCommand::kStopListening: {
      listening_ = false;
      if (mode_ == v1::MODE_CONTINUOUS) break;  // the server's VAD commits
      if (!connected_) break;  // the held audio is stale by the time we are back
      if (cmd.stop_listening().commit() && mode_ == v1::MODE_PUSH_TO_TALK) Owe(now_ns);
      port_->SendText(cmd.stop_listening().commit() ? uplink_.Complete() : uplink_.Clear(), 0);
      break;
    }
    case v1::DialogCommand::kInterrupt:
      Cancel(cmd.interrupt().turn_id());
      break;
    case v1::DialogCommand::kTextInput: {
      if (!connected_) {
        v1::SessionEvent e;
        e.mutable_error()->set_message("session offline: text input not sent");
        port_->PublishEvent(e, "");
        break;
      }
      // The server interrupts the running reply (canceled code 3): mute it now.
      downlink_.MarkCancelled("");
      downlink_.ExpectTextTurn(cmd.text_input().request_id());
      Owe(now_ns);
      port_->SendText(uplink_.MessageCreate(cmd.text_input().text()), 0);
      break;
    }
    case v1::DialogCommand::kToolOutput: {
      const auto& t = cmd.tool_output();
      std::string chat = !t.turn_id().empty() ? t.turn_id() : downlink_.tool_chat();
      if (chat.empty() || !connected_) {
        port_->Problem("tool output with no chat waiting for it");
        break;
      }
      Owe(now_ns);
      port_->SendText(uplink_.SubmitToolOutputs(chat, t.call_id(), t.output()), 0);
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
      break;
    }
    default:
      break;  // PushToTalk, Flush, PlayPrompt: for control and playback
  }
}

}  // namespace vb::session
