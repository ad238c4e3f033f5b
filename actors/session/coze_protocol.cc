// Coze JSON ⇄ vendor-neutral bus messages (see coze_protocol.h). Parsing
// uses nlohmann::json without exceptions: a field of the wrong type is a
// counted problem, never a throw.
#include "actors/session/coze_protocol.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <span>

#include "bus/text.h"

namespace vb::session {
namespace {

using Json = nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Dump(const Json& j) {
  // Replace invalid UTF-8 rather than throw: text comes from users.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Reads data[key] as a string. Absent → "" and true; present but not a
// string → false.
bool GetString(const Json& obj, const char* key, std::string* out) {
  out->clear();
  if (!obj.is_object()) return true;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

bool GetInt(const Json& obj, const char* key, int64_t* out) {
  *out = 0;
  if (!obj.is_object()) return true;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_number_unsigned()) {  // beyond int64: not a number we can hold
    const uint64_t u = it->get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    *out = int64_t(u);
    return true;
  }
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return true;
  }
  if (it->is_number_float()) {
    // Checked first: casting 4e81 (or NaN) to int64 is undefined (the
    // coze_downlink fuzzer's find).
    const double d = it->get<double>();
    if (!(d >= -9.2e18 && d <= 9.2e18)) return false;
    *out = int64_t(d);
    return true;
  }
  // Coze sends some integers as strings (respond_at, ids); accept digits.
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 18 ||
        !std::all_of(s.begin() + (s[0] == '-' ? 1 : 0), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    *out = std::stoll(s);
    return true;
  }
  return false;
}

}  // namespace

std::string CozeErrorText(int64_t code, const std::string& msg) {
  const char* meaning = "";
  switch (code) {
    case 4000: meaning = "bad request parameter"; break;
    case 4001: meaning = "invalid chat"; break;
    case 4002: meaning = "the conversation does not exist"; break;
    case 4003: meaning = "meta_data over its limit"; break;
    case 4004: meaning = "too many additional messages"; break;
    case 4005: meaning = "invalid message"; break;
    case 4006: meaning = "invalid bot"; break;
    case 4008: meaning = "rate limited: too many requests from this user"; break;
    case 4009: meaning = "the service is busy"; break;
    case 4010: meaning = "the prompt is too long"; break;
    case 4011: meaning = "the Coze account balance is used up"; break;
    case 4013: meaning = "model error"; break;
    case 4015: meaning = "the bot is not published as an API service"; break;
    case 4016: meaning = "a chat is already running in this conversation"; break;
    case 4100: meaning = "authentication failed: check the token"; break;
    case 4101: meaning = "the token has no permission for this bot"; break;
    case 4102: meaning = "refused by risk control"; break;
    case 4104: meaning = "the chat cannot be cancelled"; break;
    case 4105: meaning = "sensitive content"; break;
    case 4200: meaning = "not found"; break;
    case 5000: meaning = "internal error of the service"; break;
    default: break;
  }
  std::string m = Utf8Prefix(msg, 300);
  if (m.empty()) return std::to_string(code) + ": " + (*meaning ? meaning : "error");
  auto lower = [](std::string t) {
    for (auto& c : t) c = char(std::tolower(uint8_t(c)));
    return t;
  };
  if (!*meaning || lower(m).find(lower(meaning)) != std::string::npos) return std::to_string(code) + ": " + m;
  return std::to_string(code) + ": " + m + " (" + meaning + ")";
}

bool CozeErrorFatal(int64_t code) { return code == 4100 || code == 4101 || code == 4015 || code == 4011; }

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[uint8_t(kAlphabet[i])] = int8_t(i);
    return t;
  }();
  out->clear();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out->reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = kValue[uint8_t(c)];
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(char((acc >> bits) & 0xff));
    }
  }
  return true;
}

// ---------------------------------------------------------------- uplink

std::string CozeUplink::NextId() { return "vb-" + std::to_string(next_id_++); }

std::string CozeUplink::ChatUpdate(const SessionSettings& s, v1::DialogMode mode, const std::string& conversation_id) {
  auto object = [](const StringMap& m) {
    Json o = Json::object();
    for (const auto& [k, v] : m) o[k] = v;
    return o;
  };
  Json chat_config = Json::object();
  if (!conversation_id.empty()) chat_config["conversation_id"] = conversation_id;
  if (!s.user_id.empty()) chat_config["user_id"] = s.user_id;
  if (!s.meta_data.empty()) chat_config["meta_data"] = object(s.meta_data);
  Json vars = object(s.custom_variables);
  if (!s.persona_prompt.empty()) vars["persona_prompt"] = s.persona_prompt;
  if (!vars.empty()) chat_config["custom_variables"] = vars;
  if (!s.parameters.empty()) chat_config["parameters"] = object(s.parameters);
  if (!s.latitude.empty() || !s.longitude.empty())
    chat_config["extra_params"] = {{"latitude", s.latitude}, {"longitude", s.longitude}};

  // The docs define format as the container and codec as the encoding:
  // Opus travels in Ogg pages (format "ogg"), PCM raw (format "pcm").
  Json input = {{"format", s.input_codec == "opus" ? "ogg" : "pcm"},
                {"codec", s.input_codec},
                {"sample_rate", s.input_sample_rate},
                {"channel", 1},
                {"bit_depth", 16}};

  Json codec_cfg = {{"sample_rate", s.output_sample_rate}, {"frame_size_ms", s.frame_size_ms}};
  if (s.output_codec == "opus") {
    codec_cfg["bitrate"] = s.opus_bitrate;
    codec_cfg["use_cbr"] = false;
  }
  if (s.limit_period_s > 0 && s.limit_max_frames > 0)
    codec_cfg["limit_config"] = {{"period", s.limit_period_s}, {"max_frame_num", s.limit_max_frames}};
  Json output = {{"codec", s.output_codec}, {"speech_rate", s.speech_rate}};
  output[s.output_codec == "opus" ? "opus_config" : "pcm_config"] = codec_cfg;
  if (!s.voice_id.empty()) output["voice_id"] = s.voice_id;

  Json data = {{"chat_config", chat_config}, {"input_audio", input}, {"output_audio", output}};
  // Push-to-talk commits turns itself (input_audio_buffer.complete); the
  // other modes let the server's VAD end the user's turn (as the ESP32 client).
  if (mode != v1::MODE_PUSH_TO_TALK) {
    Json td = {{"type", s.vad_type},
               {"prefix_padding_ms", s.prefix_padding_ms},
               {"silence_duration_ms", s.silence_duration_ms}};
    if (s.vad_type == "semantic_vad")
      td["semantic_vad_config"] = {{"silence_threshold_ms", s.semantic_silence_threshold_ms},
                                   {"semantic_unfinished_wait_time_ms", s.semantic_unfinished_wait_ms}};
    if (!s.interrupt_mode.empty() && !s.interrupt_keywords.empty())
      td["interrupt_config"] = {{"mode", s.interrupt_mode}, {"keywords", s.interrupt_keywords}};
    data["turn_detection"] = td;
  } else {
    data["turn_detection"] = {{"type", "client_interrupt"}};
  }
  if (!s.hot_words.empty() || !s.asr_context.empty() || !s.user_language.empty()) {
    Json asr = Json::object();
    if (!s.hot_words.empty()) asr["hot_words"] = s.hot_words;
    if (!s.asr_context.empty()) asr["context"] = s.asr_context;
    if (!s.user_language.empty()) asr["user_language"] = s.user_language;
    data["asr_config"] = asr;
  }
  if (!s.event_subscriptions.empty()) data["event_subscriptions"] = s.event_subscriptions;
  if (s.need_play_prologue) data["need_play_prologue"] = true;
  if (!s.prologue_content.empty()) data["prologue_content"] = s.prologue_content;
  return Dump({{"id", NextId()}, {"event_type", "chat.update"}, {"data", data}});
}

std::string CozeUplink::Append(std::string_view audio) {
  // Built by hand: this runs 50 times a second and the payload is plain base64.
  std::string out = "{\"id\":\"" + NextId() + "\",\"event_type\":\"input_audio_buffer.append\",\"data\":{\"delta\":\"";
  out += Base64Encode(audio);
  out += "\"}}";
  return out;
}

std::string CozeUplink::Complete() { return Dump({{"id", NextId()}, {"event_type", "input_audio_buffer.complete"}}); }

std::string CozeUplink::Clear() { return Dump({{"id", NextId()}, {"event_type", "input_audio_buffer.clear"}}); }

std::string CozeUplink::Cancel() { return Dump({{"id", NextId()}, {"event_type", "conversation.chat.cancel"}}); }

std::string CozeUplink::MessageCreate(const std::string& text) {
  return Dump({{"id", NextId()},
               {"event_type", "conversation.message.create"},
               {"data", {{"role", "user"}, {"content_type", "text"}, {"content", text}}}});
}

std::string CozeUplink::ConversationClear() { return Dump({{"id", NextId()}, {"event_type", "conversation.clear"}}); }

std::string CozeUplink::GenerateAudio(const std::string& text) {
  return Dump(
      {{"id", NextId()}, {"event_type", "input_text.generate_audio"}, {"data", {{"mode", "text"}, {"text", text}}}});
}

std::string CozeUplink::SubmitToolOutputs(const std::string& chat_id, const StringMap& outputs) {
  Json list = Json::array();
  for (const auto& [call, output] : outputs) list.push_back({{"tool_call_id", call}, {"output", output}});
  return Dump({{"id", NextId()},
               {"event_type", "conversation.chat.submit_tool_outputs"},
               {"data", {{"chat_id", chat_id}, {"tool_outputs", list}}}});
}

std::string CozeUplink::SubmitToolOutputs(const std::string& chat_id, const std::string& call_id,
                                          const std::string& output) {
  return Dump(
      {{"id", NextId()},
       {"event_type", "conversation.chat.submit_tool_outputs"},
       {"data",
        {{"chat_id", chat_id}, {"tool_outputs", Json::array({{{"tool_call_id", call_id}, {"output", output}}})}}}});
}

// -------------------------------------------------------------- downlink

void CozeDownlink::SetOutputFormat(const std::string& codec, int sample_rate, int frame_size_ms) {
  out_codec_ = codec;
  out_rate_ = sample_rate;
  frame_ms_ = frame_size_ms;
}

void CozeDownlink::ExpectTextTurn(const std::string& request_id) {
  if (pending_requests_.size() >= 16) pending_requests_.pop_front();
  pending_requests_.push_back(request_id);
}

std::string CozeDownlink::MarkCancelled(const std::string& chat_id) {
  std::string id = chat_id.empty() ? running_ : chat_id;
  if (id.empty() || IsCancelled(id)) return id;
  if (cancelled_.size() >= kCancelledKept) cancelled_.pop_front();
  cancelled_.push_back(id);
  return id;
}

std::string CozeDownlink::CancelByClient(const std::string& chat_id, std::vector<DownlinkOutput>* out) {
  std::string id = MarkCancelled(chat_id);
  if (id.empty() || id != running_) return id;
  EndTurn(id);
  auto& o = out->emplace_back();
  o.turn_id = id;
  auto& te = *o.event.mutable_turn_ended();
  te.set_outcome(v1::TurnEnded::CANCELLED);
  te.set_cancel_reason(v1::TurnEnded::CLIENT_CANCEL);
  return id;
}

std::string CozeDownlink::AbandonRunning(std::vector<DownlinkOutput>* out) {
  std::string id = running_;
  tool_chat_.clear();
  if (id.empty()) return id;
  MarkCancelled(id);
  EndTurn(id);
  auto& o = out->emplace_back();
  o.turn_id = id;
  auto& te = *o.event.mutable_turn_ended();
  te.set_outcome(v1::TurnEnded::FAILED);
  te.set_error("connection lost");
  return id;
}

void CozeDownlink::BeginSpeech(const std::string& turn_id) {
  speech_ = turn_id;
  running_ = turn_id;
}

bool CozeDownlink::IsCancelled(const std::string& chat_id) const {
  return !chat_id.empty() && std::find(cancelled_.begin(), cancelled_.end(), chat_id) != cancelled_.end();
}

v1::Codec CozeDownlink::OutCodec() const {
  if (out_codec_ == "opus") return v1::CODEC_OPUS;
  if (out_codec_ == "g711a") return v1::CODEC_G711A;
  if (out_codec_ == "g711u") return v1::CODEC_G711U;
  return v1::CODEC_PCM_S16LE;
}

void CozeDownlink::EndTurn(const std::string& chat_id) {
  if (chat_id == running_) running_.clear();
  if (chat_id == speech_) speech_.clear();
  if (chat_id == tool_chat_) tool_chat_.clear();
}

// One downstream event being mapped: what its handler reads and writes.
struct CozeDownlink::Event {
  const std::string& type;
  const Json& data;
  std::vector<DownlinkOutput>* out;
  std::string* problem;
  DownlinkCounters& counters;

  // A field of the wrong type: counted, described, nothing more is output.
  void Wrong(const char* field) {
    ++counters.wrong_type;
    *problem = type + ": wrong type for " + field;
  }
  v1::SessionEvent& Emit(const std::string& turn) {
    auto& o = out->emplace_back();
    o.kind = DownlinkOutput::Kind::kEvent;
    o.turn_id = turn;
    return o.event;
  }
};

// The handlers of Feed's table, one per event type (or family of types that
// share their mapping). Message and chat objects carry the chat id in
// different fields (chat_id, id).
struct CozeDownlink::Handlers {
  static void ChatCreated(CozeDownlink&, Event& e) { e.out->emplace_back().kind = DownlinkOutput::Kind::kSessionReady; }

  static void ChatUpdated(CozeDownlink& d, Event& e) {
    // The effective configuration: follow the server's downlink format.
    auto oit = e.data.find("output_audio");
    if (oit != e.data.end() && oit->is_object()) {
      std::string codec;
      if (GetString(*oit, "codec", &codec) && !codec.empty()) {
        const char* cfg_key = codec == "opus" ? "opus_config" : "pcm_config";
        int64_t rate = 0, frame = 0;
        auto cit = oit->find(cfg_key);
        if (cit != oit->end() && cit->is_object()) {
          GetInt(*cit, "sample_rate", &rate);
          GetInt(*cit, "frame_size_ms", &frame);
        }
        d.SetOutputFormat(codec, rate > 0 ? int(rate) : (codec == "opus" || codec == "pcm" ? 24000 : 8000),
                          frame > 0 ? int(frame) : (codec == "opus" ? 10 : 0));
      }
    }
    e.out->emplace_back().kind = DownlinkOutput::Kind::kConfigApplied;
  }

  static void ConversationChatCreated(CozeDownlink& d, Event& e) {
    std::string chat_id, conv;
    if (!GetString(e.data, "id", &chat_id)) return e.Wrong("id");
    if (!GetString(e.data, "conversation_id", &conv)) return e.Wrong("conversation_id");
    if (chat_id.empty()) return e.Wrong("id");
    if (chat_id == d.running_) return;  // repeated (resumed after a tool call)
    if (!d.speech_.empty()) {
      // A reply replaces a speech that had not finished: that turn is over.
      const std::string speech = d.speech_;
      d.MarkCancelled(speech);
      d.EndTurn(speech);
      e.Emit(speech).mutable_turn_ended()->set_outcome(v1::TurnEnded::CANCELLED);
    }
    d.running_ = chat_id;
    if (!conv.empty()) d.conversation_id_ = conv;
    auto& ts = *e.Emit(chat_id).mutable_turn_started();
    ts.set_turn_id(chat_id);
    ts.set_conversation_id(conv);
    if (!d.pending_requests_.empty()) {
      ts.set_input(v1::TurnStarted::TEXT);
      ts.set_request_id(d.pending_requests_.front());
      d.pending_requests_.pop_front();
    } else {
      ts.set_input(v1::TurnStarted::VOICE);
    }
  }

  static void ChatInProgress(CozeDownlink& d, Event& e) {
    std::string chat_id;
    if (!GetString(e.data, "id", &chat_id)) return e.Wrong("id");
    if (!chat_id.empty() && chat_id == d.tool_chat_) d.tool_chat_.clear();
    ++d.counters_.ignored;
  }

  // conversation.message.delta and .completed.
  static void Message(CozeDownlink& d, Event& e) {
    std::string chat_id, role, mtype, content, content_type, id;
    if (!GetString(e.data, "chat_id", &chat_id)) return e.Wrong("chat_id");
    if (!GetString(e.data, "role", &role)) return e.Wrong("role");
    if (!GetString(e.data, "type", &mtype)) return e.Wrong("type");
    if (!GetString(e.data, "content", &content)) return e.Wrong("content");
    if (!GetString(e.data, "content_type", &content_type)) return e.Wrong("content_type");
    if (!GetString(e.data, "id", &id)) return e.Wrong("id");
    if (chat_id.empty()) chat_id = d.running_;
    if (d.IsCancelled(chat_id)) {
      ++d.counters_.late_audio_dropped;
      return;
    }
    bool final = e.type == "conversation.message.completed";
    if (role == "assistant" && mtype == "answer" && (content_type == "text" || content_type.empty())) {
      auto& at = *e.Emit(chat_id).mutable_agent_text();
      at.set_text(content);
      at.set_final(final);
      at.set_message_id(id);
    } else if (final && role == "assistant" && (mtype == "tool_response" || mtype == "tool_output")) {
      e.Emit(chat_id).mutable_tool_result()->set_output(content);
    } else {
      // The echoed question (its transcript came as audio_transcript), verbose
      // and follow-up messages, function_call announcements (the call itself
      // comes with requires_action).
      ++d.counters_.ignored;
    }
  }

  static void SentenceStart(CozeDownlink& d, Event& e) {
    std::string caption;
    if (!GetString(e.data, "text", &caption)) return e.Wrong("text");
    if (d.IsCancelled(d.running_)) {
      ++d.counters_.late_audio_dropped;
      return;
    }
    e.Emit(d.running_).mutable_audio_caption()->set_text(caption);
  }

  static void AudioDelta(CozeDownlink& d, Event& e) {
    std::string chat_id, content;
    if (!GetString(e.data, "chat_id", &chat_id)) return e.Wrong("chat_id");
    if (!GetString(e.data, "content", &content)) return e.Wrong("content");
    // generate_audio's audio has no chat (id "0"): it is the speech turn's.
    if (chat_id.empty() || (chat_id == "0" && !d.speech_.empty())) chat_id = d.running_;
    if (d.IsCancelled(chat_id)) {
      ++d.counters_.late_audio_dropped;
      return;
    }
    DownlinkOutput o;
    o.kind = DownlinkOutput::Kind::kAudio;
    if (!Base64Decode(content, o.audio.mutable_data())) return e.Wrong("content (base64)");
    if (o.audio.data().empty()) {
      ++d.counters_.ignored;
      return;
    }
    if (chat_id != d.audio_chat_) {
      d.audio_chat_ = chat_id;
      d.packet_index_ = 0;
    }
    o.turn_id = chat_id;
    const v1::Codec codec = d.OutCodec();
    o.audio.set_codec(codec);
    o.audio.set_sample_rate(uint32_t(d.out_rate_));
    o.audio.set_channels(1);
    if (codec == v1::CODEC_PCM_S16LE && d.out_rate_ > 0)
      o.audio.set_duration_us(uint32_t(uint64_t(o.audio.data().size() / 2) * 1'000'000 / uint64_t(d.out_rate_)));
    else if (codec == v1::CODEC_G711A || codec == v1::CODEC_G711U)
      o.audio.set_duration_us(uint32_t(uint64_t(o.audio.data().size()) * 1'000'000 / 8000));
    else o.audio.set_duration_us(uint32_t(d.frame_ms_ * 1000));
    o.audio.set_packet_index(d.packet_index_++);
    ++d.counters_.audio_packets;
    e.out->push_back(std::move(o));
  }

  static void AudioCompleted(CozeDownlink& d, Event& e) {
    std::string chat_id;
    if (!GetString(e.data, "chat_id", &chat_id)) return e.Wrong("chat_id");
    if (chat_id.empty() || (chat_id == "0" && !d.speech_.empty())) chat_id = d.running_;
    if (d.IsCancelled(chat_id)) {
      ++d.counters_.late_audio_dropped;
      return;
    }
    uint64_t packets = chat_id == d.audio_chat_ ? d.packet_index_ : 0;
    e.Emit(chat_id).mutable_agent_audio_end()->set_packets(packets);
    if (!d.speech_.empty() && chat_id == d.speech_) {
      // The speech is all there is of its turn: no chat.completed follows.
      d.EndTurn(chat_id);
      e.Emit(chat_id).mutable_turn_ended()->set_outcome(v1::TurnEnded::COMPLETED);
    }
  }

  // conversation.audio_transcript.update and .completed.
  static void Transcript(CozeDownlink& d, Event& e) {
    std::string content;
    if (!GetString(e.data, "content", &content)) return e.Wrong("content");
    auto& ut = *e.Emit(d.running_).mutable_user_transcript();
    ut.set_text(content);
    ut.set_final(e.type == "conversation.audio_transcript.completed");
  }

  // input_audio_buffer.speech_started and .speech_stopped.
  static void UserSpeech(CozeDownlink& d, Event& e) {
    e.Emit(d.running_).mutable_user_speech()->set_started(e.type == "input_audio_buffer.speech_started");
  }

  // conversation.chat.completed and .failed.
  static void ChatEnded(CozeDownlink& d, Event& e) {
    std::string chat_id;
    if (!GetString(e.data, "id", &chat_id)) return e.Wrong("id");
    if (chat_id.empty()) chat_id = d.running_;
    bool failed = e.type == "conversation.chat.failed";
    std::string error;
    auto eit = e.data.find("last_error");
    if (eit != e.data.end() && eit->is_object()) {
      int64_t code = 0;
      if (!GetString(*eit, "msg", &error)) return e.Wrong("last_error.msg");
      if (!GetInt(*eit, "code", &code)) return e.Wrong("last_error.code");
      if (code == 0 && !failed) error.clear();
      else if (code != 0) error = CozeErrorText(code, error);
    }
    if (failed && error.empty()) error = "the chat failed (no last_error)";
    int64_t in_tokens = 0, out_tokens = 0;
    auto uit = e.data.find("usage");
    if (uit != e.data.end() && uit->is_object()) {
      if (!GetInt(*uit, "input_count", &in_tokens)) return e.Wrong("usage.input_count");
      if (!GetInt(*uit, "output_count", &out_tokens)) return e.Wrong("usage.output_count");
    }
    bool reported = chat_id != d.running_ && chat_id != d.tool_chat_;
    if (d.IsCancelled(chat_id) && reported) {
      ++d.counters_.late_audio_dropped;  // its end was reported when it was cancelled
      return;
    }
    bool cancelled = d.IsCancelled(chat_id);
    d.EndTurn(chat_id);
    auto& te = *e.Emit(chat_id).mutable_turn_ended();
    te.set_outcome(cancelled ? v1::TurnEnded::CANCELLED : failed ? v1::TurnEnded::FAILED : v1::TurnEnded::COMPLETED);
    te.set_error(error);
    te.set_input_tokens(uint32_t(std::max<int64_t>(0, in_tokens)));
    te.set_output_tokens(uint32_t(std::max<int64_t>(0, out_tokens)));
  }

  static void RequiresAction(CozeDownlink& d, Event& e) {
    std::string chat_id;
    if (!GetString(e.data, "id", &chat_id)) return e.Wrong("id");
    if (chat_id.empty()) chat_id = d.running_;
    auto rit = e.data.find("required_action");
    if (rit == e.data.end() || !rit->is_object()) return e.Wrong("required_action");
    auto sit = rit->find("submit_tool_outputs");
    if (sit == rit->end() || !sit->is_object()) return e.Wrong("required_action.submit_tool_outputs");
    auto cit = sit->find("tool_calls");
    if (cit == sit->end() || !cit->is_array()) return e.Wrong("tool_calls");
    std::vector<v1::ToolCall> calls;
    for (const auto& c : *cit) {
      v1::ToolCall tc;
      std::string id, name, args;
      if (!c.is_object() || !GetString(c, "id", &id)) return e.Wrong("tool_calls[].id");
      auto fit = c.find("function");
      if (fit != c.end() && fit->is_object()) {
        if (!GetString(*fit, "name", &name)) return e.Wrong("function.name");
        auto ait = fit->find("arguments");
        if (ait != fit->end() && ait->is_string()) args = ait->get<std::string>();
        else if (ait != fit->end() && ait->is_object()) args = Dump(*ait);
        else if (ait != fit->end() && !ait->is_null()) return e.Wrong("function.arguments");
      }
      tc.set_call_id(id);
      tc.set_name(name);
      tc.set_arguments_json(args);
      calls.push_back(std::move(tc));
    }
    if (d.IsCancelled(chat_id)) {
      ++d.counters_.late_audio_dropped;
      return;
    }
    d.tool_chat_ = chat_id;
    d.tool_calls_.clear();
    for (const auto& c : calls) d.tool_calls_.push_back(c.call_id());
    for (auto& c : calls) *e.Emit(chat_id).mutable_tool_call() = std::move(c);
    e.Emit(chat_id).mutable_turn_ended()->set_outcome(v1::TurnEnded::REQUIRES_ACTION);
  }

  static void ChatCanceled(CozeDownlink& d, Event& e) {
    int64_t code = 0;
    std::string msg_text;
    if (!GetInt(e.data, "code", &code)) return e.Wrong("code");
    if (!GetString(e.data, "msg", &msg_text)) return e.Wrong("msg");
    const std::string chat_id = d.running_;
    if (chat_id.empty()) {
      ++d.counters_.ignored;  // already reported (a client cancel) or nothing ran
      return;
    }
    d.MarkCancelled(chat_id);
    d.EndTurn(chat_id);
    auto& te = *e.Emit(chat_id).mutable_turn_ended();
    te.set_outcome(v1::TurnEnded::CANCELLED);
    te.set_cancel_reason(code == 1   ? v1::TurnEnded::USER_SPEECH_INTERRUPT
                         : code == 2 ? v1::TurnEnded::CLIENT_CANCEL
                         : code == 3 ? v1::TurnEnded::NEW_MESSAGE
                                     : v1::TurnEnded::CANCEL_UNSPECIFIED);
    te.set_error(msg_text);
  }

  static void Error(CozeDownlink& d, Event& e) {
    int64_t code = 0;
    std::string msg_text;
    if (!GetInt(e.data, "code", &code)) return e.Wrong("code");
    if (!GetString(e.data, "msg", &msg_text)) return e.Wrong("msg");
    const bool fatal = CozeErrorFatal(code);
    // The error ends the chat under way (the server does not say which
    // request it answers; a running chat is what the person waits for):
    // TurnEnded FAILED with the reason, and its late output is dropped.
    const std::string chat = d.running_;
    if (!chat.empty()) {
      d.MarkCancelled(chat);
      d.EndTurn(chat);
      auto& te = *e.Emit(chat).mutable_turn_ended();
      te.set_outcome(v1::TurnEnded::FAILED);
      te.set_error(CozeErrorText(code, msg_text));
    }
    // A SessionError too when no turn carries it, when a person must act
    // (fatal), or when the session must (4002: a new conversation).
    if (!chat.empty() && !fatal && code != 4002) return;
    auto& err = *e.Emit(chat).mutable_error();
    err.set_code(int32_t(code));
    err.set_message(CozeErrorText(code, msg_text));
    // Authentication, permission and an unpublished bot need a person to fix them.
    err.set_fatal(fatal);
  }

  // Acknowledgements with nothing to publish.
  static void Ignore(CozeDownlink& d, Event&) { ++d.counters_.ignored; }
};

// The downlink mapping (coze-protocol.md §4): event type → handler. A type
// not in it is counted `unknown`.
std::span<const CozeDownlink::Entry> CozeDownlink::Table() {
  using H = Handlers;
  static const Entry kTable[] = {
      {"chat.created", H::ChatCreated},
      {"chat.updated", H::ChatUpdated},
      {"conversation.chat.created", H::ConversationChatCreated},
      {"conversation.chat.in_progress", H::ChatInProgress},
      {"conversation.chat.completed", H::ChatEnded},
      {"conversation.chat.failed", H::ChatEnded},
      {"conversation.chat.requires_action", H::RequiresAction},
      {"conversation.chat.canceled", H::ChatCanceled},
      {"conversation.message.delta", H::Message},
      {"conversation.message.completed", H::Message},
      {"conversation.audio.sentence_start", H::SentenceStart},
      {"conversation.audio.delta", H::AudioDelta},
      {"conversation.audio.completed", H::AudioCompleted},
      {"conversation.audio_transcript.update", H::Transcript},
      {"conversation.audio_transcript.completed", H::Transcript},
      {"input_audio_buffer.speech_started", H::UserSpeech},
      {"input_audio_buffer.speech_stopped", H::UserSpeech},
      {"error", H::Error},
      // Deliberately ignored: acknowledgements of our own requests.
      {"input_audio_buffer.completed", H::Ignore},
      {"input_audio_buffer.cleared", H::Ignore},
      {"conversation.cleared", H::Ignore},
  };
  return kTable;
}

std::vector<CozeDownlink::EventType> CozeDownlink::KnownEventTypes() {
  std::vector<EventType> types;
  for (const Entry& e : Table()) types.push_back({e.type, e.handler == &Handlers::Ignore});
  return types;
}

void CozeDownlink::Feed(std::string_view text, std::vector<DownlinkOutput>* out, std::string* problem) {
  problem->clear();
  Json msg = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object()) {
    ++counters_.malformed;
    *problem = "not a JSON object";
    return;
  }
  std::string type;
  if (!GetString(msg, "event_type", &type) || type.empty()) {
    ++counters_.malformed;
    *problem = "no event_type";
    return;
  }
  ++counters_.events;
  static const Json kEmpty = Json::object();
  auto dit = msg.find("data");
  const Json& data = dit != msg.end() && !dit->is_null() ? *dit : kEmpty;
  if (!data.is_object()) {
    ++counters_.wrong_type;
    *problem = type + ": data is not an object";
    return;
  }
  for (const Entry& entry : Table()) {
    if (entry.type != type) continue;
    Event e{type, data, out, problem, counters_};
    entry.handler(*this, e);
    return;
  }
  ++counters_.unknown;
  *problem = "unknown event_type " + Utf8Prefix(type, 64);
}

}  // namespace vb::session
