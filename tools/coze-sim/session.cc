// Implementation of session.h. The order of events follows coze-protocol.md
// §5; comments mark the places where that order is [inferred].
#include "tools/coze-sim/session.h"

#include <algorithm>
#include <cmath>

#include "tools/coze-sim/ids.h"

namespace vb::cozesim {
namespace {

// The `verbose` message Coze sends when an answer is complete (recorded).
const char* const kVerboseFinish =
    R"({"msg_type":"generate_answer_finish","data":"{\"finish_reason\":0,\"FinData\":\"\"}","from_module":null,"from_unit":null})";

const std::set<std::string> kInFormats = {"pcm", "wav", "ogg"};
const std::set<std::string> kInCodecs = {"pcm", "opus", "g711a", "g711u"};
const std::set<int> kRates = {8000, 16000, 22050, 24000, 32000, 44100, 48000};
const std::set<int> kOpusRates = {8000, 12000, 16000, 24000, 48000};
const std::set<std::string> kOutCodecs = {"pcm", "g711a", "g711u", "opus", "mp3"};
const std::set<std::string> kTurnTypes = {"client_interrupt", "server_vad", "semantic_vad"};

// Validation helpers: each returns an error text or "" when fine.
std::string CheckObject(const Json& parent, const char* key, const std::string& path) {
  if (parent.contains(key) && !parent[key].is_object() && !parent[key].is_null())
    return path + key + " must be an object";
  return "";
}

std::string CheckIntIn(const Json& obj, const char* key, const std::string& path, long lo, long hi) {
  if (!obj.contains(key) || obj[key].is_null()) return "";
  const Json& v = obj[key];
  if (!v.is_number_integer()) return path + key + " must be an integer";
  long x = v.get<long>();
  if (x < lo || x > hi) return path + key + " out of range";
  return "";
}

std::string CheckStringIn(const Json& obj, const char* key, const std::string& path,
                          const std::set<std::string>& allowed) {
  if (!obj.contains(key) || obj[key].is_null()) return "";
  if (!obj[key].is_string()) return path + key + " must be a string";
  if (!allowed.count(obj[key].get<std::string>())) return path + key + " has an unsupported value";
  return "";
}

std::string ValidateChatUpdate(const Json& d) {
  std::string e;
  for (const char* k : {"chat_config", "input_audio", "output_audio", "turn_detection", "asr_config"})
    if (!(e = CheckObject(d, k, "")).empty()) return e;
  if (d.contains("chat_config") && d["chat_config"].is_object()) {
    const Json& c = d["chat_config"];
    for (const char* k : {"conversation_id", "user_id"})
      if (c.contains(k) && !c[k].is_string() && !c[k].is_null())
        return std::string("chat_config.") + k + " must be a string";
    if (c.contains("auto_save_history") && !c["auto_save_history"].is_boolean())
      return "chat_config.auto_save_history must be a boolean";
    for (const char* k : {"meta_data", "custom_variables", "extra_params", "parameters"})
      if (!(e = CheckObject(c, k, "chat_config.")).empty()) return e;
    if (c.contains("meta_data") && c["meta_data"].is_object()) {
      if (c["meta_data"].size() > 16) return "chat_config.meta_data has more than 16 pairs";
      for (auto& [k, v] : c["meta_data"].items()) {
        if (k.empty() || k.size() > 64) return "chat_config.meta_data key length must be 1-64";
        if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 512)
          return "chat_config.meta_data values must be strings of 1-512 chars";
      }
    }
  }
  if (d.contains("input_audio") && d["input_audio"].is_object()) {
    const Json& a = d["input_audio"];
    if (!(e = CheckStringIn(a, "format", "input_audio.", kInFormats)).empty()) return e;
    if (!(e = CheckStringIn(a, "codec", "input_audio.", kInCodecs)).empty()) return e;
    if (!(e = CheckIntIn(a, "sample_rate", "input_audio.", 8000, 48000)).empty()) return e;
    if (a.contains("sample_rate") && a["sample_rate"].is_number_integer() && !kRates.count(a["sample_rate"].get<int>()))
      return "input_audio.sample_rate has an unsupported value";
    if (!(e = CheckIntIn(a, "channel", "input_audio.", 1, 2)).empty()) return e;
    if (!(e = CheckIntIn(a, "bit_depth", "input_audio.", 8, 24)).empty()) return e;
    if (a.contains("bit_depth") && a["bit_depth"].is_number_integer() && a["bit_depth"].get<int>() % 8)
      return "input_audio.bit_depth has an unsupported value";
  }
  if (d.contains("output_audio") && d["output_audio"].is_object()) {
    const Json& o = d["output_audio"];
    if (!(e = CheckStringIn(o, "codec", "output_audio.", kOutCodecs)).empty()) return e;
    if (!(e = CheckIntIn(o, "speech_rate", "output_audio.", -50, 100)).empty()) return e;
    if (!(e = CheckIntIn(o, "loudness_rate", "output_audio.", -50, 100)).empty()) return e;
    if (o.contains("voice_id") && !o["voice_id"].is_string() && !o["voice_id"].is_null())
      return "output_audio.voice_id must be a string";
    if (!(e = CheckObject(o, "emotion_config", "output_audio.")).empty()) return e;
    if (o.contains("emotion_config") && o["emotion_config"].is_object()) {
      const Json& ec = o["emotion_config"];
      if (ec.contains("emotion") && !ec["emotion"].is_string())
        return "output_audio.emotion_config.emotion must be a string";
      if (ec.contains("emotion_scale") && (!ec["emotion_scale"].is_number() || ec["emotion_scale"].get<double>() < 1 ||
                                           ec["emotion_scale"].get<double>() > 5))
        return "output_audio.emotion_config.emotion_scale must be a number in 1-5";
    }
    for (const char* k : {"pcm_config", "opus_config", "mp3_config"}) {
      if (!(e = CheckObject(o, k, "output_audio.")).empty()) return e;
      if (!o.contains(k) || !o[k].is_object()) continue;
      const Json& c = o[k];
      std::string p = std::string("output_audio.") + k + ".";
      if (!(e = CheckIntIn(c, "sample_rate", p, 8000, 48000)).empty()) return e;
      if (c.contains("sample_rate") && c["sample_rate"].is_number_integer()) {
        int r = c["sample_rate"].get<int>();
        if (std::string(k) == "opus_config" ? !kOpusRates.count(r) : !kRates.count(r))
          return p + "sample_rate has an unsupported value";
      }
      if (c.contains("frame_size_ms") && !c["frame_size_ms"].is_null()) {
        if (!c["frame_size_ms"].is_number()) return p + "frame_size_ms must be a number";
        double ms = c["frame_size_ms"].get<double>();
        if (std::string(k) == "opus_config") {
          if (ms != 2.5 && ms != 5 && ms != 10 && ms != 20 && ms != 40 && ms != 60)
            return p + "frame_size_ms has an unsupported value";
        } else if (ms < 0 || ms > 1000) {
          return p + "frame_size_ms out of range";
        }
      }
      if (!(e = CheckIntIn(c, "bitrate", p, 500, 512000)).empty()) return e;
      if (c.contains("use_cbr") && !c["use_cbr"].is_boolean()) return p + "use_cbr must be a boolean";
      if (!(e = CheckObject(c, "limit_config", p)).empty()) return e;
      if (c.contains("limit_config") && c["limit_config"].is_object()) {
        const Json& l = c["limit_config"];
        if (l.contains("period") && !l["period"].is_number()) return p + "limit_config.period must be a number";
        if (l.contains("period") && l["period"].get<double>() <= 0) return p + "limit_config.period out of range";
        if (!(e = CheckIntIn(l, "max_frame_num", p + "limit_config.", 1, 100000)).empty()) return e;
      }
    }
  }
  if (d.contains("turn_detection") && d["turn_detection"].is_object()) {
    const Json& t = d["turn_detection"];
    if (!(e = CheckStringIn(t, "type", "turn_detection.", kTurnTypes)).empty()) return e;
    if (!(e = CheckIntIn(t, "prefix_padding_ms", "turn_detection.", 0, 10000)).empty()) return e;
    if (!(e = CheckIntIn(t, "silence_duration_ms", "turn_detection.", 0, 10000)).empty()) return e;
    if (!(e = CheckObject(t, "interrupt_config", "turn_detection.")).empty()) return e;
    if (t.contains("interrupt_config") && t["interrupt_config"].is_object()) {
      const Json& ic = t["interrupt_config"];
      if (!(e = CheckStringIn(ic, "mode", "turn_detection.interrupt_config.", {"keyword_contains", "keyword_prefix"}))
               .empty())
        return e;
      if (ic.contains("keywords")) {
        if (!ic["keywords"].is_array() || ic["keywords"].size() > 5)
          return "turn_detection.interrupt_config.keywords must be a list of at most 5 strings";
        for (const auto& k : ic["keywords"])
          if (!k.is_string()) return "turn_detection.interrupt_config.keywords must be strings";
      }
    }
  }
  if (d.contains("event_subscriptions") && !d["event_subscriptions"].is_null()) {
    if (!d["event_subscriptions"].is_array()) return "event_subscriptions must be a list of strings";
    for (const auto& s : d["event_subscriptions"])
      if (!s.is_string()) return "event_subscriptions must be a list of strings";
  }
  if (d.contains("need_play_prologue") && !d["need_play_prologue"].is_boolean())
    return "need_play_prologue must be a boolean";
  if (d.contains("prologue_content") && !d["prologue_content"].is_string() && !d["prologue_content"].is_null())
    return "prologue_content must be a string";
  return "";
}

// Text from `object_string` content: the text items, space-joined.
std::string TextOfObjectString(const std::string& content) {
  Json arr = Json::parse(content, nullptr, false);
  if (!arr.is_array()) return "";
  std::string out;
  for (const auto& item : arr)
    if (item.is_object() && item.value("type", "") == "text" && item.contains("text") && item["text"].is_string()) {
      if (!out.empty()) out += " ";
      out += item["text"].get<std::string>();
    }
  return out;
}

}  // namespace

Session::Session(uint64_t id, SessionContext ctx, std::string bot_id, std::string logid)
    : id_(id), ctx_(ctx), bot_id_(std::move(bot_id)), logid_(std::move(logid)) {
  decoder_ = std::make_unique<InputDecoder>(in_cfg_);
  encoder_ = std::make_unique<OutputEncoder>(out_cfg_);
}

void Session::Start() { Emit("chat.created"); }

// ------------------------------------------------------------------ output

bool Session::Subscribed(const std::string& type) const {
  return subscriptions_.empty() || subscriptions_.count(type) > 0;
}

void Session::Emit(const std::string& type, Json data) {
  if (!Subscribed(type)) return;
  if (immediate_.size() >= kMaxImmediate) {
    overflow_ = true;  // the client does not read: the server closes it
    return;
  }
  immediate_.push_back({type, std::move(data), {}});
}

void Session::EmitError(int code, const std::string& msg, std::string_view origin) {
  if (!Subscribed("error")) return;
  if (immediate_.size() >= kMaxImmediate) {
    overflow_ = true;
    return;
  }
  immediate_.push_back({"error", Json{{"code", code}, {"msg", msg}}, std::string(origin)});
}

void Session::PushStream(const std::string& type, Json data) {
  if (!Subscribed(type)) return;
  Item it{ItemKind::kEvent, {type, std::move(data), {}}, {}, 0, false, run_ ? run_->gen : 0};
  stream_.push_back(std::move(it));
}

std::string Session::Serialize(const Out& o) const {
  Json j = {{"id", NewUuid()}, {"event_type", o.type}};
  if (!o.data.is_null()) j["data"] = o.data;
  Json detail = {{"logid", logid_}, {"respond_at", std::to_string(NowEpochMs())}};
  if (!o.origin.empty()) detail["origin_message"] = o.origin;
  j["detail"] = detail;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json Session::MessageJson(const std::string& id, const std::string& type, const std::string& content,
                          const std::string& content_type, const std::string& role) const {
  Json m = {{"id", id},
            {"conversation_id", run_ ? run_->conversation_id : conversation_id_},
            {"bot_id", bot_id_},
            {"chat_id", run_ ? run_->chat_id : ""},
            {"section_id", run_ ? run_->section_id : ""},
            {"role", role},
            {"type", type},
            {"content", content},
            {"content_type", content_type},
            {"meta_data", Json::object()}};
  if (run_ && run_->tts_only) {
    m["id"] = m["conversation_id"] = m["chat_id"] = m["section_id"] = "0";  // recorded: ids are "0"
  }
  return m;
}

int64_t Session::Pump(int64_t now_ms, size_t max, std::vector<std::string>* out) {
  const Faults* f = ctx_.faults;
  while (out->size() < max) {
    if (!immediate_.empty()) {
      out->push_back(Serialize(immediate_.front()));
      immediate_.pop_front();
      ++events_sent_;
      continue;
    }
    if (stream_.empty()) return -1;
    Item& it = stream_.front();
    if (it.kind == ItemKind::kEvent) {
      out->push_back(Serialize(it.out));
      stream_.pop_front();
      ++events_sent_;
      continue;
    }
    if (it.kind == ItemKind::kAnswerCompleted) {
      // The answer is stored when its text is complete, as Coze does.
      if (run_ && !run_->tts_only) {
        if (Conversation* conv = ctx_.store->FindConversation(run_->conversation_id)) {
          Message m;
          m.id = run_->answer_id;
          m.chat_id = run_->chat_id;
          m.role = "assistant";
          m.type = "answer";
          m.content = run_->full_text;
          m.bot_id = bot_id_;
          ctx_.store->AddMessage(*conv, m);
        }
      }
      stream_.pop_front();
      continue;
    }
    if (it.kind == ItemKind::kChatCompleted) {
      if (run_ && !run_->tts_only) {
        if (Chat* c = CurrentChat()) {
          c->status = "completed";
          c->completed_at = NowEpochSeconds();
          c->input_tokens = 20;
          c->output_tokens = int64_t(run_->full_text.size() / 4 + 1);
          if (Subscribed("conversation.chat.completed")) {
            out->push_back(Serialize({"conversation.chat.completed", c->ToJson(), {}}));
            ++events_sent_;
          }
        }
      }
      stream_.pop_front();
      run_.reset();
      continue;
    }
    if (it.kind == ItemKind::kChatFailed) {
      if (run_ && run_->failure) {
        TurnFault failure = *run_->failure;
        stream_.pop_front();
        FailRun(failure);  // queues conversation.chat.failed as an immediate event
        continue;
      }
      stream_.pop_front();
      continue;
    }
    // Audio: encode lazily, one frame per delta, paced.
    if (!it.loaded) {
      encoder_->Append(it.pcm, it.rate);
      it.pcm.clear();
      it.pcm.shrink_to_fit();
      it.loaded = true;
    }
    if (!(it.final ? encoder_->HasFrame() : encoder_->HasFullFrame())) {
      stream_.pop_front();
      continue;
    }
    double frame_ms = 1000.0 * encoder_->frame_samples() / encoder_->rate();
    if (limit_max_frames_ > 0 && limit_period_ms_ > 0) {
      if (now_ms - window_start_ms_ >= int64_t(limit_period_ms_)) {
        window_start_ms_ = now_ms;
        window_frames_ = 0;
      }
      if (window_frames_ >= limit_max_frames_) return window_start_ms_ + int64_t(limit_period_ms_) - now_ms;
    }
    if (f && f->slow_audio > 1.0) {
      if (now_ms < next_audio_ms_) return next_audio_ms_ - now_ms;
      next_audio_ms_ = now_ms + int64_t(std::ceil(frame_ms * f->slow_audio));
    }
    ++window_frames_;
    std::string frame = encoder_->NextFrame();
    if (Subscribed("conversation.audio.delta")) {
      Json m = MessageJson(run_ ? run_->answer_id : "0", "answer", Base64Encode(frame), "audio");
      out->push_back(Serialize({"conversation.audio.delta", std::move(m), {}}));
      ++events_sent_;
    }
  }
  return HasPending() ? 0 : -1;
}

// ------------------------------------------------------------------ input

void Session::OnText(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    EmitError(4000, "invalid JSON", text);
    return;
  }
  if (!j.is_object() || !j.contains("event_type") || !j["event_type"].is_string()) {
    EmitError(4000, "event_type must be a string", text);
    return;
  }
  if (j.contains("id") && !j["id"].is_string() && !j["id"].is_number() && !j["id"].is_null()) {
    EmitError(4000, "id must be a string", text);
    return;
  }
  Json data = j.contains("data") && !j["data"].is_null() ? j["data"] : Json::object();
  if (!data.is_object()) {
    EmitError(4000, "data must be an object", text);
    return;
  }
  const std::string type = j["event_type"].get<std::string>();
  if (type == "chat.update") HandleChatUpdate(data, text);
  else if (type == "input_audio_buffer.append") HandleAppend(data, text);
  else if (type == "input_audio_buffer.complete") HandleComplete();
  else if (type == "input_audio_buffer.clear") HandleClear();
  else if (type == "conversation.message.create") HandleMessageCreate(data, text);
  else if (type == "conversation.clear") HandleConversationClear();
  else if (type == "conversation.chat.submit_tool_outputs") HandleSubmitToolOutputs(data, text);
  else if (type == "conversation.chat.cancel") HandleCancel();
  else if (type == "input_text.generate_audio") HandleGenerateAudio(data, text);
  else EmitError(4000, "unknown event_type: " + type, text);
}

Json Session::EffectiveConfig() const {
  // The full effective configuration: every field of the SDK's
  // Required<ChatConfig/AudioConfig/OutputAudio>, the defaults of
  // coze-protocol.md §3 where the client set nothing.
  Json cc = chat_config_;
  cc["conversation_id"] = conversation_id_;
  cc["user_id"] = user_id_;
  if (!cc.contains("auto_save_history")) cc["auto_save_history"] = true;
  for (const char* k : {"meta_data", "custom_variables", "extra_params", "parameters"})
    if (!cc.contains(k) || !cc[k].is_object()) cc[k] = Json::object();
  Json in = {{"format", in_cfg_.format},
             {"codec", in_cfg_.codec},
             {"sample_rate", in_cfg_.sample_rate},
             {"channel", in_cfg_.channel},
             {"bit_depth", in_cfg_.bit_depth}};
  Json out = {{"codec", out_codec_requested_}, {"speech_rate", speech_rate_}};
  Json asked = last_update_.contains("output_audio") && last_update_["output_audio"].is_object()
                   ? last_update_["output_audio"]
                   : Json::object();
  for (auto& [k, v] : asked.items())
    if (!out.contains(k)) out[k] = v;
  // Each codec's settings as they apply: what was asked over the defaults.
  auto merged = [&](const char* key, Json defaults) {
    if (asked.contains(key) && asked[key].is_object())
      for (auto& [k, v] : asked[key].items()) defaults[k] = v;
    return defaults;
  };
  out["pcm_config"] = merged("pcm_config", {{"sample_rate", 24000}});
  out["opus_config"] =
      merged("opus_config", {{"sample_rate", 24000}, {"bitrate", 48000}, {"use_cbr", false}, {"frame_size_ms", 10}});
  if (!out.contains("emotion_config") || !out["emotion_config"].is_object()) out["emotion_config"] = Json::object();
  if (!out.contains("loudness_rate")) out["loudness_rate"] = 0;
  if (!out.contains("voice_id")) out["voice_id"] = "sim-espeak-en-us";
  Json td = {{"type", turn_type_}};
  if (turn_type_ != "client_interrupt") {
    td["prefix_padding_ms"] = prefix_padding_ms_;
    td["silence_duration_ms"] = silence_duration_ms_;
    if (!interrupt_keywords_.empty())
      td["interrupt_config"] = {{"mode", interrupt_mode_}, {"keywords", interrupt_keywords_}};
  }
  Json d = {{"chat_config", cc}, {"input_audio", in}, {"output_audio", out}, {"turn_detection", td}};
  d["event_subscriptions"] = Json::array();
  for (const auto& s : subscriptions_) d["event_subscriptions"].push_back(s);
  for (const char* k :
       {"need_play_prologue", "prologue_content", "asr_config", "voice_print_config", "voice_processing_config"})
    if (last_update_.contains(k)) d[k] = last_update_[k];
  if (!d.contains("need_play_prologue")) d["need_play_prologue"] = false;
  return d;
}

Conversation& Session::EnsureConversation() {
  if (Conversation* c = ctx_.store->FindConversation(conversation_id_)) return *c;
  Conversation& c = ctx_.store->CreateConversation(bot_id_);
  conversation_id_ = c.id;
  return c;
}

Chat* Session::CurrentChat() {
  if (!run_ || run_->tts_only) return nullptr;
  return ctx_.store->FindChat(run_->conversation_id, run_->chat_id);
}

void Session::HandleChatUpdate(const Json& d, std::string_view raw) {
  std::string err = ValidateChatUpdate(d);
  if (err.empty() && d.contains("chat_config") && d["chat_config"].is_object() &&
      d["chat_config"].contains("conversation_id") && d["chat_config"]["conversation_id"].is_string()) {
    const std::string cid = d["chat_config"]["conversation_id"].get<std::string>();
    if (!cid.empty() && !ctx_.store->FindConversation(cid)) {
      EmitError(4002, "conversation not found: " + cid, raw);
      return;
    }
  }
  if (!err.empty()) {
    EmitError(4000, "invalid parameter: " + err, raw);
    return;
  }
  if (d.contains("output_audio") && d["output_audio"].is_object() && d["output_audio"].value("codec", "") == "mp3") {
    EmitError(4000, "invalid parameter: output_audio.codec mp3 is not supported by this simulator", raw);
    return;
  }
  for (auto& [k, v] : d.items()) last_update_[k] = v;
  if (d.contains("chat_config") && d["chat_config"].is_object()) {
    const Json& c = d["chat_config"];
    for (auto& [k, v] : c.items()) chat_config_[k] = v;
    if (c.contains("conversation_id") && c["conversation_id"].is_string() &&
        !c["conversation_id"].get<std::string>().empty())
      conversation_id_ = c["conversation_id"].get<std::string>();
    if (c.contains("user_id") && c["user_id"].is_string()) user_id_ = c["user_id"].get<std::string>();
  }
  if (d.contains("input_audio") && d["input_audio"].is_object()) {
    const Json& a = d["input_audio"];
    in_cfg_.format = a.value("format", in_cfg_.format);
    in_cfg_.codec = a.value("codec", in_cfg_.codec);
    in_cfg_.sample_rate = a.value("sample_rate", in_cfg_.sample_rate);
    in_cfg_.channel = a.value("channel", in_cfg_.channel);
    in_cfg_.bit_depth = a.value("bit_depth", in_cfg_.bit_depth);
    if (in_cfg_.codec == "g711a" || in_cfg_.codec == "g711u") {
      in_cfg_.format = "pcm";
      in_cfg_.sample_rate = 8000;
    }
    decoder_ = std::make_unique<InputDecoder>(in_cfg_);
  }
  if (d.contains("output_audio") && d["output_audio"].is_object()) {
    const Json& o = d["output_audio"];
    out_codec_requested_ = o.value("codec", out_codec_requested_);
    speech_rate_ = o.value("speech_rate", speech_rate_);
    OutputAudioConfig oc;
    oc.codec = out_codec_requested_;
    const char* cfg_key = oc.codec == "opus" ? "opus_config" : "pcm_config";
    limit_period_ms_ = 0;
    limit_max_frames_ = 0;
    if (o.contains(cfg_key) && o[cfg_key].is_object()) {
      const Json& c = o[cfg_key];
      oc.sample_rate = c.value("sample_rate", oc.sample_rate);
      oc.frame_size_ms = c.value("frame_size_ms", 0.0);
      oc.bitrate = c.value("bitrate", oc.bitrate);
      oc.use_cbr = c.value("use_cbr", false);
      // limit_config needs frame_size_ms for PCM (a frame must mean something).
      if (c.contains("limit_config") && c["limit_config"].is_object() && (oc.codec == "opus" || oc.frame_size_ms > 0)) {
        limit_period_ms_ = c["limit_config"].value("period", 1.0) * 1000.0;
        limit_max_frames_ = c["limit_config"].value("max_frame_num", 0);
      }
    }
    out_cfg_ = oc;
    encoder_ = std::make_unique<OutputEncoder>(out_cfg_);
  }
  if (d.contains("turn_detection") && d["turn_detection"].is_object()) {
    const Json& t = d["turn_detection"];
    turn_type_ = t.value("type", std::string("client_interrupt"));
    prefix_padding_ms_ = t.value("prefix_padding_ms", 600);
    silence_duration_ms_ = t.value("silence_duration_ms", 500);
    interrupt_keywords_.clear();
    interrupt_mode_.clear();
    if (t.contains("interrupt_config") && t["interrupt_config"].is_object()) {
      interrupt_mode_ = t["interrupt_config"].value("mode", std::string("keyword_contains"));
      if (t["interrupt_config"].contains("keywords"))
        for (const auto& k : t["interrupt_config"]["keywords"])
          interrupt_keywords_.push_back(Agent::Normalize(k.get<std::string>()));
    }
    // semantic_vad behaves like server_vad here, with its silence threshold.
    if (turn_type_ == "semantic_vad" && t.contains("semantic_vad_config") && t["semantic_vad_config"].is_object())
      silence_duration_ms_ = t["semantic_vad_config"].value("silence_threshold_ms", 300);
    vad_.reset();
    if (turn_type_ != "client_interrupt") vad_ = std::make_unique<Vad>(prefix_padding_ms_, silence_duration_ms_);
    ptt_.clear();
  }
  if (d.contains("event_subscriptions") && d["event_subscriptions"].is_array()) {
    subscriptions_.clear();
    for (const auto& s : d["event_subscriptions"]) subscriptions_.insert(s.get<std::string>());
  }
  EnsureConversation();
  Emit("chat.updated", EffectiveConfig());
  if (d.value("need_play_prologue", false)) {
    std::string text = d.value("prologue_content", std::string());
    if (text.empty()) text = ctx_.agent->prologue();
    if (!text.empty() && !RunActive()) BeginAnswer(text, false);
  }
}

void Session::HandleAppend(const Json& d, std::string_view raw) {
  if (!d.contains("delta") || !d["delta"].is_string()) {
    EmitError(4000, "invalid parameter: delta must be a base64 string", raw);
    return;
  }
  auto bytes = Base64Decode(d["delta"].get<std::string>());
  if (!bytes) {
    EmitError(4000, "invalid parameter: delta is not valid base64", raw);
    return;
  }
  std::vector<int16_t> pcm;
  std::string err;
  if (!decoder_->Feed(*bytes, &pcm, &err)) {
    EmitError(4000, "invalid audio: " + err, raw.substr(0, 256));
    // keep what decoded before the error
  }
  OnAudioFeed(pcm);
}

void Session::OnAudioFeed(const std::vector<int16_t>& pcm) {
  if (pcm.empty()) return;
  if (!vad_) {
    size_t room = kMaxPttSamples - std::min(kMaxPttSamples, ptt_.size());
    if (pcm.size() > room) {
      // Keep the newest audio: the end of a long press matters most.
      size_t drop = std::min(ptt_.size(), pcm.size() - room);
      ptt_.erase(ptt_.begin(), ptt_.begin() + long(drop));
    }
    size_t take = std::min(pcm.size(), kMaxPttSamples);
    ptt_.insert(ptt_.end(), pcm.end() - long(take), pcm.end());
    return;
  }
  std::vector<VadEvent> events;
  vad_->Feed(pcm.data(), pcm.size(), &events);
  for (auto& e : events) {
    if (e.kind == VadEvent::kStarted) {
      Emit("input_audio_buffer.speech_started");
      // Barge-in [inferred order: speech_started, then canceled code 1].
      if (RunActive() && interrupt_keywords_.empty()) CancelRun(1, "interrupted by user speech");
    } else {
      Emit("input_audio_buffer.speech_stopped");
      Recognize(std::move(e.utterance), RunActive() && !interrupt_keywords_.empty());
    }
  }
}

void Session::Recognize(std::vector<int16_t> utterance, bool barge_in_check) {
  recog_job_ = next_job_++;
  recog_barge_in_check_ = barge_in_check;
  if (!ctx_.services->SubmitRecognize(id_, recog_job_, std::move(utterance))) {
    recog_job_ = 0;
    EmitError(4009, "server busy: recognition queue full", "");
  }
}

void Session::HandleComplete() {
  if (vad_) return;  // no effect under server_vad
  Emit("input_audio_buffer.completed");
  Recognize(std::move(ptt_), false);
  ptt_.clear();
}

void Session::HandleClear() {
  if (vad_) return;
  ptt_.clear();
  Emit("input_audio_buffer.cleared");
}

void Session::OnRecognized(uint64_t job, const RecognitionResult& r) {
  if (job != recog_job_) return;  // superseded
  recog_job_ = 0;
  std::string text = r.text;
  if (recog_barge_in_check_) {
    // interrupt_config: only speech with a keyword interrupts the bot.
    std::string norm = Agent::Normalize(text);
    bool hit = false;
    for (const auto& k : interrupt_keywords_)
      hit = hit || (interrupt_mode_ == "keyword_prefix" ? norm.rfind(k, 0) == 0 : norm.find(k) != std::string::npos);
    if (!hit) return;  // not for us: the bot keeps talking
    if (RunActive()) CancelRun(1, "interrupted by user speech");
  }
  // Interim transcripts: the whole text so far, word by word (§4: not a diff).
  std::string so_far;
  size_t start = 0;
  int updates = 0;
  while (start < text.size() && updates < 8) {
    size_t sp = text.find(' ', start);
    if (sp == std::string::npos) break;
    so_far = text.substr(0, sp);
    Emit("conversation.audio_transcript.update", Json{{"content", so_far}});
    start = sp + 1;
    ++updates;
  }
  if (!text.empty()) Emit("conversation.audio_transcript.update", Json{{"content", text}});
  Emit("conversation.audio_transcript.completed", Json{{"content", text}});
  if (!text.empty()) StartTurn(text, false);
}

void Session::HandleMessageCreate(const Json& d, std::string_view raw) {
  std::string role = d.value("role", std::string("user"));
  if (!d.contains("role") || !d["role"].is_string() || (role != "user" && role != "assistant")) {
    EmitError(4000, "invalid parameter: role must be user or assistant", raw);
    return;
  }
  if (!d.contains("content") || !d["content"].is_string()) {
    EmitError(4000, "invalid parameter: content must be a string", raw);
    return;
  }
  std::string ct =
      d.contains("content_type") && d["content_type"].is_string() ? d["content_type"].get<std::string>() : "text";
  if (ct != "text" && ct != "object_string") {
    EmitError(4000, "invalid parameter: content_type must be text or object_string", raw);
    return;
  }
  std::string content = d["content"].get<std::string>();
  std::string text = ct == "text" ? content : TextOfObjectString(content);
  if (ct == "object_string" && Json::parse(content, nullptr, false).is_discarded()) {
    EmitError(4000, "invalid parameter: object_string content must be a JSON list", raw);
    return;
  }
  if (role == "assistant") {
    Conversation& conv = EnsureConversation();
    Message m;
    m.role = "assistant";
    m.type = "answer";
    m.content = content;
    m.content_type = ct;
    ctx_.store->AddMessage(conv, m);
    return;
  }
  StartTurn(text, true);
}

void Session::HandleConversationClear() {
  if (RunActive()) CancelRun(2, "conversation cleared");
  Conversation& conv = EnsureConversation();
  ctx_.store->Clear(conv);
  Emit("conversation.cleared");
}

void Session::HandleCancel() {
  // Always acknowledged (push-to-talk sends it on every key press).
  if (RunActive()) {
    CancelRun(2, "canceled by client");
  } else {
    Emit("conversation.chat.canceled", Json{{"code", 2}, {"msg", "canceled by client"}});
  }
}

void Session::HandleSubmitToolOutputs(const Json& d, std::string_view raw) {
  if (!d.contains("chat_id") || !d["chat_id"].is_string() || !d.contains("tool_outputs") ||
      !d["tool_outputs"].is_array() || d["tool_outputs"].empty()) {
    EmitError(4000, "invalid parameter: chat_id and tool_outputs are required", raw);
    return;
  }
  if (!run_ || !run_->awaiting_tool || run_->chat_id != d["chat_id"].get<std::string>()) {
    EmitError(4001, "invalid chat: no chat of that id is waiting for tool outputs", raw);
    return;
  }
  std::string output;
  bool matched = false;
  for (const auto& o : d["tool_outputs"]) {
    if (!o.is_object() || !o.contains("tool_call_id") || !o["tool_call_id"].is_string() || !o.contains("output") ||
        !o["output"].is_string()) {
      EmitError(4000, "invalid parameter: tool_outputs items need tool_call_id and output strings", raw);
      return;
    }
    if (o["tool_call_id"].get<std::string>() == run_->tool_call_id) {
      output = o["output"].get<std::string>();
      matched = true;
    }
  }
  if (!matched) {
    EmitError(4000, "invalid parameter: unknown tool_call_id", raw);
    return;
  }
  if (ctx_.faults && ctx_.faults->error_code) {
    EmitError(ctx_.faults->error_code, "injected fault", raw);
    return;
  }
  run_->awaiting_tool = false;
  Conversation* conv = ctx_.store->FindConversation(run_->conversation_id);
  if (conv) {
    Message m;
    m.chat_id = run_->chat_id;
    m.role = "assistant";
    m.type = "tool_response";
    m.content = output;
    ctx_.store->AddMessage(*conv, m);
  }
  if (Chat* c = CurrentChat()) {
    c->status = "in_progress";
    c->required_action = nullptr;
    Emit("conversation.chat.in_progress", c->ToJson());
  }
  std::string text = ctx_.agent->ResumeAfterTool(*run_->tool, output);
  BeginAnswer(text, false);
}

void Session::HandleGenerateAudio(const Json& d, std::string_view raw) {
  if (!d.contains("text") || !d["text"].is_string() || d["text"].get<std::string>().empty() ||
      d["text"].get<std::string>().size() > 1023) {
    EmitError(4000, "invalid parameter: text must be 1-1023 bytes", raw);
    return;
  }
  if (d.contains("mode") && (!d["mode"].is_string() || d["mode"].get<std::string>() != "text")) {
    EmitError(4000, "invalid parameter: mode must be text", raw);
    return;
  }
  // Interrupts current output [inferred: silently, without a canceled event].
  if (RunActive()) {
    if (Chat* c = CurrentChat()) c->status = "canceled";
    ++gen_;
    run_.reset();
    stream_.clear();
    encoder_->Clear();
  }
  BeginAnswer(d["text"].get<std::string>(), true);
}

// ------------------------------------------------------------ reply machinery

void Session::CancelRun(int code, const char* msg) {
  if (Chat* c = CurrentChat()) {
    c->status = "canceled";
  }
  ++gen_;
  run_.reset();
  stream_.clear();
  encoder_->Clear();
  Emit("conversation.chat.canceled", Json{{"code", code}, {"msg", msg}});
}

void Session::FailRun(const TurnFault& f) {
  if (Chat* c = CurrentChat()) {
    c->status = "failed";
    c->failed_at = NowEpochSeconds();
    c->last_error = {{"code", f.code}, {"msg", f.msg}};
    c->required_action = nullptr;
    Emit("conversation.chat.failed", c->ToJson());
  }
  ++gen_;
  run_.reset();
  stream_.clear();
  encoder_->Clear();
}

void Session::StartTurn(const std::string& user_text, bool interrupt_code3) {
  if (RunActive())
    CancelRun(interrupt_code3 ? 3 : 1, interrupt_code3 ? "interrupted by a new message" : "interrupted by user speech");
  if (ctx_.faults && ctx_.faults->error_code) {
    EmitError(ctx_.faults->error_code, CozeErrorMessage(ctx_.faults->error_code) + " (injected fault)", "");
    return;
  }
  TurnFault fault = ctx_.live ? ctx_.live->TakeTurnFault() : TurnFault{};
  if (fault.kind == TurnFault::kError) {
    EmitError(fault.code, fault.msg, "");
    return;
  }
  Conversation& conv = EnsureConversation();
  std::vector<std::string> earlier = ctx_.store->UserTexts(conv);
  Chat& chat = ctx_.store->CreateChat(conv, bot_id_);
  bool save = chat_config_.value("auto_save_history", true);
  Message q;
  q.chat_id = chat.id;
  q.role = "user";
  q.type = "question";
  q.content = user_text;
  q.bot_id = bot_id_;
  Message stored = save ? ctx_.store->AddMessage(conv, q) : q;
  if (!save) {
    stored.id = NewNumericId();
    stored.conversation_id = conv.id;
    stored.section_id = conv.last_section_id;
    stored.created_at = NowEpochSeconds();
  }
  ++gen_;
  run_.emplace();
  run_->gen = gen_;
  run_->chat_id = chat.id;
  run_->conversation_id = conv.id;
  run_->section_id = conv.last_section_id;
  run_->answer_id = NewNumericId();
  Emit("conversation.message.completed", stored.ToJson());
  Emit("conversation.chat.created", chat.ToJson());
  chat.status = "in_progress";
  Emit("conversation.chat.in_progress", chat.ToJson());

  AgentReply reply = ctx_.agent->Respond(user_text, earlier);
  if (fault.kind == TurnFault::kChatFailed) {
    reply.tool.reset();  // the injected failure wins over the rule
    reply.failure = fault;
  }
  if (reply.failure) {
    run_->failure = reply.failure;
    if (reply.failure->after_sentences == 0 || reply.text.empty()) {
      FailRun(*reply.failure);
      return;
    }
  }
  if (reply.tool) {
    run_->tool = reply.tool;
    run_->tool_call_id = NewNumericId();
    run_->awaiting_tool = true;
    Json fc = {{"name", reply.tool->name},
               {"arguments", Json::parse(reply.tool->arguments_json, nullptr, false)},
               {"plugin_id", "0"},
               {"plugin_name", reply.tool->name},
               {"api_id", "0"},
               {"api_name", reply.tool->name}};
    Json fcm = MessageJson(NewNumericId(), "function_call", fc.dump(), "text");
    Emit("conversation.message.completed", fcm);
    chat.status = "requires_action";
    chat.required_action = {
        {"type", "submit_tool_outputs"},
        {"submit_tool_outputs",
         {{"tool_calls",
           Json::array({{{"id", run_->tool_call_id},
                         {"type", "function"},
                         {"function", {{"name", reply.tool->name}, {"arguments", reply.tool->arguments_json}}}}})}}}};
    Emit("conversation.chat.requires_action", chat.ToJson());
    return;
  }
  BeginAnswer(reply.text, false);
}

void Session::BeginAnswer(const std::string& text, bool tts_only) {
  if (!run_) {
    // A prologue or generate_audio: a run without a user question.
    ++gen_;
    run_.emplace();
    run_->gen = gen_;
    run_->tts_only = tts_only;
    run_->answer_id = NewNumericId();
    if (!tts_only) {
      Conversation& conv = EnsureConversation();
      Chat& chat = ctx_.store->CreateChat(conv, bot_id_);
      run_->chat_id = chat.id;
      run_->conversation_id = conv.id;
      run_->section_id = conv.last_section_id;
      Emit("conversation.chat.created", chat.ToJson());
      chat.status = "in_progress";
      Emit("conversation.chat.in_progress", chat.ToJson());
    }
  }
  run_->full_text = text;
  run_->sentences = SplitSentences(text);
  run_->next_synth = 0;
  // A failing chat answers its first `after_sentences` sentences, then fails
  // [inferred: deltas and audio so far, no answer message.completed, then
  // conversation.chat.failed as the chat's last event].
  const bool failing = run_->failure.has_value();
  if (failing && run_->sentences.size() > size_t(run_->failure->after_sentences))
    run_->sentences.resize(size_t(run_->failure->after_sentences));
  // No audio wanted (not subscribed) or not producible: text only, at once.
  run_->with_audio = Subscribed("conversation.audio.delta") && encoder_->ok();
  if (!run_->with_audio || run_->sentences.empty()) {
    if (!tts_only)
      for (const auto& s : run_->sentences)
        for (const auto& f : SplitFragments(s))
          PushStream("conversation.message.delta", MessageJson(run_->answer_id, "answer", f, "text"));
    if (failing) {
      stream_.push_back({ItemKind::kChatFailed, {}, {}, 0, false, run_->gen});
      return;
    }
    if (!tts_only) {
      PushStream("conversation.message.completed", MessageJson(run_->answer_id, "answer", text, "text"));
      stream_.push_back({ItemKind::kAnswerCompleted, {}, {}, 0, false, run_->gen});
      PushStream("conversation.message.completed", MessageJson(NewNumericId(), "verbose", kVerboseFinish, "text"));
    }
    if (run_->with_audio)
      PushStream("conversation.audio.completed", MessageJson(run_->answer_id, "answer", "", "audio"));
    stream_.push_back({ItemKind::kChatCompleted, {}, {}, 0, false, run_->gen});
    return;
  }
  SubmitNextSentence();
}

void Session::SubmitNextSentence() {
  if (!run_ || run_->next_synth >= run_->sentences.size()) return;
  run_->synth_job = next_job_++;
  if (!ctx_.services->SubmitSynth(id_, run_->synth_job, run_->sentences[run_->next_synth], speech_rate_)) {
    CancelRun(2, "server busy");
    EmitError(4009, "server busy: synthesis queue full", "");
  }
}

void Session::OnSynthesized(uint64_t job, std::vector<int16_t> pcm, int rate) {
  if (!run_ || job != run_->synth_job) return;  // from a cancelled run: dropped
  size_t k = run_->next_synth++;
  bool last = run_->next_synth >= run_->sentences.size();
  const std::string& s = run_->sentences[k];
  if (!run_->tts_only)
    for (const auto& f : SplitFragments(s))
      PushStream("conversation.message.delta", MessageJson(run_->answer_id, "answer", f, "text"));
  const bool failing = run_->failure.has_value();
  if (last && !run_->tts_only && !failing) {
    // Recorded order: the answer and verbose complete before the last audio.
    PushStream("conversation.message.completed", MessageJson(run_->answer_id, "answer", run_->full_text, "text"));
    stream_.push_back({ItemKind::kAnswerCompleted, {}, {}, 0, false, run_->gen});
    PushStream("conversation.message.completed", MessageJson(NewNumericId(), "verbose", kVerboseFinish, "text"));
  }
  std::string caption = s;
  while (!caption.empty() && std::isspace(uint8_t(caption.back()))) caption.pop_back();
  PushStream("conversation.audio.sentence_start", Json{{"text", caption}});
  stream_.push_back({ItemKind::kAudio, {}, std::move(pcm), rate, false, run_->gen, last});
  if (last && failing) {
    stream_.push_back({ItemKind::kChatFailed, {}, {}, 0, false, run_->gen});
  } else if (last) {
    PushStream("conversation.audio.completed", MessageJson(run_->answer_id, "answer", "", "audio"));
    stream_.push_back({ItemKind::kChatCompleted, {}, {}, 0, false, run_->gen});
  } else {
    SubmitNextSentence();
  }
}

std::vector<std::string> Session::SplitSentences(const std::string& text) {
  // Sentences keep their trailing spaces so the fragments add up to the text.
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    cur += text[i];
    bool end = (text[i] == '.' || text[i] == '!' || text[i] == '?' || text[i] == '\n') &&
               (i + 1 == text.size() || std::isspace(uint8_t(text[i + 1])));
    bool too_long = cur.size() >= kMaxSentenceChars && std::isspace(uint8_t(text[i]));
    if (end || too_long) {
      while (i + 1 < text.size() && std::isspace(uint8_t(text[i + 1]))) cur += text[++i];
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<std::string> Session::SplitFragments(const std::string& s) {
  // About three words per delta, like a streaming LLM.
  std::vector<std::string> out;
  std::string cur;
  int words = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    cur += s[i];
    if (s[i] == ' ' && ++words == 3) {
      out.push_back(std::move(cur));
      cur.clear();
      words = 0;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace vb::cozesim
