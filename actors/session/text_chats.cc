// TextChats: text chats over REST v3 SSE (see text_chats.h).
#include "actors/session/text_chats.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>

#include "bus/text.h"

namespace vb::session {
namespace {

using Json = nlohmann::json;

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_unsigned()) return std::to_string(it->get<uint64_t>());
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return "";
}

// "code: msg" of a Coze envelope or last_error; "" if there is none.
std::string CozeError(const Json& j) {
  if (!j.is_object()) return "";
  auto c = j.find("code");
  if (c == j.end() || !c->is_number_integer() || c->get<int64_t>() == 0) return "";
  return std::to_string(c->get<int64_t>()) + ": " + Utf8Prefix(Str(j, "msg"), 300);
}

}  // namespace

// ---- SSE -------------------------------------------------------------------

std::vector<SseParser::Event> SseParser::Push(const std::string& bytes) {
  std::vector<Event> out;
  buf_ += bytes;
  size_t start = 0;
  for (;;) {
    size_t nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = buf_.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    start = nl + 1;
    Line(std::move(line), &out);
  }
  buf_.erase(0, start);
  if (buf_.size() > max_) {  // one line without end: not SSE we can use
    ++oversized_;
    buf_.clear();
    cur_ = {};
    has_data_ = false;
  }
  return out;
}

void SseParser::Line(std::string line, std::vector<Event>* out) {
  if (line.empty()) {  // the blank line ends an event
    if (has_data_ || !cur_.name.empty()) out->push_back(std::move(cur_));
    cur_ = {};
    has_data_ = false;
    return;
  }
  if (line[0] == ':') return;  // comment / keep-alive
  size_t colon = line.find(':');
  std::string field = line.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  if (field == "event") {
    cur_.name = value;
  } else if (field == "data") {
    if (cur_.data.size() + value.size() > max_) {
      ++oversized_;
      return;
    }
    if (has_data_) cur_.data += '\n';
    cur_.data += value;
    has_data_ = true;
  }
}

// ---- chats -------------------------------------------------------------------

TextChats::Chat* TextChats::Find(const std::string& rid) {
  auto it = chats_.find(rid);
  return it == chats_.end() ? nullptr : &it->second;
}

bool TextChats::Owns(const std::string& chat_id) const {
  if (chat_id.empty()) return false;
  for (const auto& [rid, c] : chats_)
    if (c.chat_id == chat_id) return true;
  return false;
}

TextChats::Chat* TextChats::RunningIn(const std::string& conversation_id, const std::string& except_rid) {
  for (auto& [rid, c] : chats_)
    if (rid != except_rid && c.conversation_id == conversation_id &&
        (c.phase == Phase::kStreaming || c.phase == Phase::kTools))
      return &c;
  return nullptr;
}

v1::TextChatEvent TextChats::Event(const Chat& c) const {
  v1::TextChatEvent e;
  e.set_request_id(c.request_id);
  e.set_chat_id(c.chat_id);
  e.set_conversation_id(c.conversation_id);
  return e;
}

void TextChats::OnRequest(const v1::TextChatRequest& r, int64_t now_ns) {
  const std::string& rid = r.request_id();
  if (rid.empty() || rid.size() > 128) {
    port_->Problem("text chat request without a usable request_id: dropped");
    ++counters_.refused;
    return;
  }
  if (r.has_cancel()) {
    if (Find(rid)) Cancel(rid, v1::TurnEnded::CLIENT_CANCEL);
    return;  // already ended: its `ended` went out before
  }
  if (!r.has_start()) {
    port_->Problem("text chat request " + rid + " neither starts nor cancels: dropped");
    ++counters_.refused;
    return;
  }
  const auto& s = r.start();
  auto refuse = [&](const std::string& why) {
    ++counters_.refused;
    v1::TextChatEvent e;
    e.set_request_id(rid);
    e.set_conversation_id(s.conversation_id());
    e.mutable_ended()->set_outcome(v1::TurnEnded::FAILED);
    e.mutable_ended()->set_error(why);
    port_->PublishChatEvent(e);
  };
  if (Find(rid)) return port_->Problem("text chat " + rid + " started twice: the second start is dropped");
  if (s.text().empty() || s.text().size() > options_.max_text_bytes)
    return refuse("the text must have 1 to " + std::to_string(options_.max_text_bytes) + " bytes");
  if (s.conversation_id().empty() && s.conversation_key().empty())
    return refuse("a text chat needs a conversation_id or a conversation_key");
  if (chats_.size() >= options_.max_chats)
    return refuse("too many text chats at once (" + std::to_string(options_.max_chats) + ")");
  Chat& c = chats_[rid];
  c.request_id = rid;
  c.key = s.conversation_key();
  c.conversation_id = s.conversation_id();
  c.user_id = s.user_id().empty() ? options_.default_user_id : s.user_id();
  c.text = s.text();
  c.last_event_ns = now_ns;
  ++counters_.started;
  if (c.conversation_id.empty()) {
    if (auto k = keys_.find(c.key); k != keys_.end()) c.conversation_id = k->second;
  }
  if (!c.conversation_id.empty()) {
    if (!c.key.empty()) Remember(c.key, c.conversation_id);
    return Start(c, now_ns);
  }
  c.phase = Phase::kConversation;
  CreateConversation(c.key);
}

void TextChats::CreateConversation(const std::string& key) {
  if (creating_[key]) return;  // the chats of this key wait for the same one
  creating_[key] = true;
  port_->Post(
      "/v1/conversation/create", Json{{"bot_id", options_.bot_id}}.dump(),
      [this, key](int status, std::string body, std::string error) { OnConversation(key, status, body, error); });
}

void TextChats::OnConversation(const std::string& key, int status, const std::string& body, const std::string& error) {
  creating_.erase(key);
  const int64_t now = now_();
  Json j = Json::parse(body, nullptr, false);
  std::string id;
  if (j.is_object() && CozeError(j).empty() && j.contains("data") && j["data"].is_object()) id = Str(j["data"], "id");
  std::vector<std::string> waiting;
  for (auto& [rid, c] : chats_)
    if (c.phase == Phase::kConversation && c.key == key) waiting.push_back(rid);
  if (id.empty()) {
    std::string why = !error.empty() ? error : !CozeError(j).empty() ? CozeError(j) : "HTTP " + std::to_string(status);
    for (const auto& rid : waiting) End(rid, v1::TurnEnded::FAILED, "cannot create a conversation: " + why);
    return;
  }
  ++counters_.conversations_created;
  Remember(key, id);
  for (const auto& rid : waiting) {
    Chat* c = Find(rid);
    if (!c) continue;
    c->conversation_id = id;
    Start(*c, now);
  }
}

void TextChats::Remember(const std::string& key, const std::string& id) {
  if (keys_.count(key)) {
    keys_[key] = id;
    return;
  }
  keys_[key] = id;
  key_order_.push_back(key);
  while (key_order_.size() > options_.max_keys) {
    keys_.erase(key_order_.front());
    key_order_.pop_front();
  }
}

void TextChats::Start(Chat& c, int64_t now_ns) {
  // One chat at a time per conversation: the newer message wins, as on the
  // WebSocket (Coze code 3), but only in this conversation.
  std::vector<std::string> older;
  for (auto& [rid, o] : chats_)
    if (rid != c.request_id && o.conversation_id == c.conversation_id &&
        (o.phase == Phase::kStreaming || o.phase == Phase::kTools || o.phase == Phase::kQueued))
      older.push_back(rid);
  const std::string rid = c.request_id;
  for (const auto& o : older) Cancel(o, v1::TurnEnded::NEW_MESSAGE);
  Chat* me = Find(rid);
  if (!me) return;
  if (cancelling_[me->conversation_id] > 0) {
    me->phase = Phase::kQueued;  // started when the cancel is answered
    return;
  }
  cancelling_.erase(me->conversation_id);
  RunChat(*me, now_ns);
}

void TextChats::StartWaiting(const std::string& conversation_id, int64_t now_ns) {
  for (auto& [rid, c] : chats_)
    if (c.phase == Phase::kQueued && c.conversation_id == conversation_id) return RunChat(c, now_ns);
}

void TextChats::RunChat(Chat& c, int64_t now_ns) {
  c.phase = Phase::kStreaming;
  c.last_event_ns = now_ns;
  Json body = {
      {"bot_id", options_.bot_id},
      {"user_id", c.user_id},
      {"stream", true},
      {"auto_save_history", true},
      {"additional_messages",
       Json::array({{{"role", "user"}, {"type", "question"}, {"content", c.text}, {"content_type", "text"}}})}};
  OpenStream(c, "/v3/chat?conversation_id=" + UrlEncode(c.conversation_id),
             body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void TextChats::OpenStream(Chat& c, const std::string& path, std::string body) {
  // The id is only known once PostStream returns; the callbacks run later,
  // on the loop, and compare it with the chat's current stream.
  auto id = std::make_shared<uint64_t>(0);
  const std::string rid = c.request_id;
  c.sse = SseParser();
  c.body_prefix.clear();
  c.stream_bytes = 0;
  c.stream = *id = port_->PostStream(
      path, std::move(body), [this, rid, id](std::string bytes) { OnChunk(rid, *id, bytes); },
      [this, rid, id](int status, std::string, std::string error) { OnStreamDone(rid, *id, status, error); });
}

void TextChats::OnChunk(const std::string& rid, uint64_t stream, const std::string& bytes) {
  Chat* c = Find(rid);
  if (!c || c->stream != stream || c->phase != Phase::kStreaming) return;
  const int64_t now = now_();
  c->last_event_ns = now;
  // A JSON envelope instead of SSE: an error (4002 unknown conversation, 4016, auth).
  const bool first = c->stream_bytes == 0;
  c->stream_bytes += bytes.size();
  if (!c->body_prefix.empty() || (first && !bytes.empty() && bytes[0] == '{')) {
    c->body_prefix += bytes.substr(0, 4096);
    return;
  }
  for (const auto& e : c->sse.Push(bytes)) {
    c = Find(rid);
    if (!c || c->stream != stream || c->phase != Phase::kStreaming) return;
    OnSse(*c, e, now);
  }
}

void TextChats::OnSse(Chat& c, const SseParser::Event& e, int64_t now_ns) {
  const std::string rid = c.request_id;
  if (e.data == "[DONE]" || e.name == "done") return;
  Json d = Json::parse(e.data, nullptr, false);
  if (!d.is_object()) {
    ++counters_.bad_events;
    port_->Problem("text chat " + rid + ": SSE event '" + Utf8Prefix(e.name, 64) + "' without a JSON object: dropped");
    return;
  }
  if (e.name == "conversation.chat.created" || e.name == "conversation.chat.in_progress") {
    if (c.chat_id.empty()) c.chat_id = Str(d, "id");
    if (std::string conv = Str(d, "conversation_id"); !conv.empty()) c.conversation_id = conv;
    if (!c.started && !c.chat_id.empty()) {
      c.started = true;
      auto ev = Event(c);
      auto* ts = ev.mutable_started();
      ts->set_turn_id(c.chat_id);
      ts->set_conversation_id(c.conversation_id);
      ts->set_input(v1::TurnStarted::TEXT);
      ts->set_request_id(rid);
      port_->PublishChatEvent(ev);
    }
  } else if (e.name == "conversation.message.delta") {
    if (Str(d, "type") != "answer" && d.contains("type")) return;
    std::string text = Str(d, "content");
    if (text.empty()) return;
    c.text_by_message[Str(d, "id")] += text;
    auto ev = Event(c);
    ev.mutable_text()->set_text(text);
    ev.mutable_text()->set_message_id(Str(d, "id"));
    port_->PublishChatEvent(ev);
  } else if (e.name == "conversation.message.completed") {
    if (Str(d, "type") != "answer") return;  // function_call, verbose, follow_up: not the reply
    auto ev = Event(c);
    ev.mutable_text()->set_text(Str(d, "content"));
    ev.mutable_text()->set_final(true);
    ev.mutable_text()->set_message_id(Str(d, "id"));
    port_->PublishChatEvent(ev);
  } else if (e.name == "conversation.chat.requires_action") {
    const Json* calls = nullptr;
    if (d.contains("required_action") && d["required_action"].is_object()) {
      const Json& ra = d["required_action"];
      if (ra.contains("submit_tool_outputs") && ra["submit_tool_outputs"].is_object() &&
          ra["submit_tool_outputs"].contains("tool_calls") && ra["submit_tool_outputs"]["tool_calls"].is_array())
        calls = &ra["submit_tool_outputs"]["tool_calls"];
    }
    if (!calls || calls->empty()) {
      End(rid, v1::TurnEnded::FAILED, "the agent asked for an action without tool calls");
      return;
    }
    c.phase = Phase::kTools;
    c.calls.clear();
    c.outputs.clear();
    c.tools_deadline_ns = now_ns + options_.tool_timeout_ns;
    for (const auto& t : *calls) {
      if (!t.is_object()) continue;
      v1::ToolCall call;
      call.set_call_id(Str(t, "id"));
      if (t.contains("function") && t["function"].is_object()) {
        call.set_name(Str(t["function"], "name"));
        const Json& a = t["function"].value("arguments", Json());
        call.set_arguments_json(a.is_string() ? a.get<std::string>() : a.is_null() ? "{}" : a.dump());
      }
      if (call.call_id().empty()) continue;
      c.calls.emplace_back(call.call_id(), call.name());
      ++counters_.tool_calls;
      auto ev = Event(c);
      *ev.mutable_tool_call() = call;
      port_->PublishChatEvent(ev);
      call.set_text_chat(true);
      port_->PublishToolCall(call, c.chat_id);
    }
    if (c.calls.empty()) End(rid, v1::TurnEnded::FAILED, "the agent's tool calls carry no ids");
  } else if (e.name == "conversation.chat.completed") {
    uint32_t in = 0, out = 0;
    if (d.contains("usage") && d["usage"].is_object()) {  // a count that is no count is 0, not a throw
      auto count = [&](const char* key) {
        const Json& v = d["usage"].value(key, Json());
        return v.is_number_unsigned() ? uint32_t(std::min<uint64_t>(v.get<uint64_t>(), UINT32_MAX)) : 0u;
      };
      in = count("input_count");
      out = count("output_count");
    }
    End(rid, v1::TurnEnded::COMPLETED, "", v1::TurnEnded::CANCEL_UNSPECIFIED, in, out);
  } else if (e.name == "conversation.chat.failed") {
    std::string why = d.contains("last_error") ? CozeError(d["last_error"]) : "";
    End(rid, v1::TurnEnded::FAILED, why.empty() ? "the chat failed (no last_error given)" : why);
  } else if (e.name == "conversation.chat.canceled") {
    End(rid, v1::TurnEnded::CANCELLED, "", v1::TurnEnded::CLIENT_CANCEL);
  } else if (e.name == "error") {
    std::string why = CozeError(d);
    End(rid, v1::TurnEnded::FAILED, why.empty() ? "error event: " + Utf8Prefix(e.data, 200) : why);
  }
}

void TextChats::OnStreamDone(const std::string& rid, uint64_t stream, int status, const std::string& error) {
  Chat* c = Find(rid);
  if (!c || c->stream != stream || c->phase != Phase::kStreaming) return;
  c->stream = 0;
  if (!c->body_prefix.empty()) {
    Json j = Json::parse(c->body_prefix, nullptr, false);
    std::string why = CozeError(j);
    End(rid, v1::TurnEnded::FAILED, why.empty() ? "the service answered without a stream" : why);
    return;
  }
  if (!error.empty()) return End(rid, v1::TurnEnded::FAILED, "connection lost: " + error);
  if (status != 200) return End(rid, v1::TurnEnded::FAILED, "HTTP " + std::to_string(status));
  End(rid, v1::TurnEnded::FAILED, "the stream ended without the chat's outcome");
}

bool TextChats::OnToolOutput(const std::string& chat_id, const std::string& call_id, const std::string& output,
                             int64_t now_ns, std::string* refusal) {
  Chat* c = nullptr;
  for (auto& [rid, ch] : chats_)
    if (!chat_id.empty() && ch.chat_id == chat_id) c = &ch;
  if (!c) return false;
  refusal->clear();
  if (c->phase != Phase::kTools) {
    *refusal = "text chat " + chat_id + " is not waiting for tool outputs";
    return true;
  }
  bool known = false;
  for (const auto& [id, name] : c->calls) known = known || id == call_id;
  if (!known) {
    *refusal = "text chat " + chat_id + " did not call " + call_id;
    return true;
  }
  for (const auto& [id, out] : c->outputs)
    if (id == call_id) {
      *refusal = "call " + call_id + " was answered already";
      return true;
    }
  c->outputs.emplace_back(call_id, output);
  auto ev = Event(*c);
  ev.mutable_tool_result()->set_call_id(call_id);
  ev.mutable_tool_result()->set_output(output);
  port_->PublishChatEvent(ev);
  if (c->outputs.size() == c->calls.size()) SubmitOutputs(*c, now_ns);
  return true;
}

void TextChats::SubmitOutputs(Chat& c, int64_t now_ns) {
  Json outs = Json::array();
  for (const auto& [id, out] : c.outputs) outs.push_back({{"tool_call_id", id}, {"output", out}});
  Json body = {{"tool_outputs", outs}, {"stream", true}};
  c.phase = Phase::kStreaming;
  c.last_event_ns = now_ns;
  OpenStream(c,
             "/v3/chat/submit_tool_outputs?conversation_id=" + UrlEncode(c.conversation_id) +
                 "&chat_id=" + UrlEncode(c.chat_id),
             body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void TextChats::Cancel(const std::string& rid, v1::TurnEnded::CancelReason reason) {
  Chat* c = Find(rid);
  if (!c) return;
  if (c->stream) port_->Abort(c->stream);
  c->stream = 0;
  if (!c->chat_id.empty() && !c->conversation_id.empty() &&
      (c->phase == Phase::kStreaming || c->phase == Phase::kTools)) {
    const std::string conv = c->conversation_id;
    ++cancelling_[conv];
    port_->Post("/v3/chat/cancel", Json{{"conversation_id", conv}, {"chat_id", c->chat_id}}.dump(),
                [this, conv](int, std::string, std::string) {
                  // Whatever the answer (4104: it had finished), the conversation is free now.
                  if (--cancelling_[conv] <= 0) {
                    cancelling_.erase(conv);
                    StartWaiting(conv, now_());
                  }
                });
  }
  End(rid, v1::TurnEnded::CANCELLED, "", reason);
}

void TextChats::End(const std::string& rid, v1::TurnEnded::Outcome outcome, const std::string& error,
                    v1::TurnEnded::CancelReason reason, uint32_t in_tokens, uint32_t out_tokens) {
  Chat* c = Find(rid);
  if (!c) return;
  if (c->stream) port_->Abort(c->stream);
  auto ev = Event(*c);
  auto* te = ev.mutable_ended();
  te->set_outcome(outcome);
  te->set_cancel_reason(reason);
  te->set_error(error);
  te->set_input_tokens(in_tokens);
  te->set_output_tokens(out_tokens);
  const std::string conv = c->conversation_id;
  const bool tools_outstanding = c->phase == Phase::kTools && !c->chat_id.empty();
  const std::string chat_id = c->chat_id;
  chats_.erase(rid);
  switch (outcome) {
    case v1::TurnEnded::COMPLETED: ++counters_.completed; break;
    case v1::TurnEnded::CANCELLED: ++counters_.cancelled; break;
    default: ++counters_.failed; break;
  }
  port_->PublishChatEvent(ev);
  if (tools_outstanding) port_->PublishTurnEndedWithTools(ev.ended(), chat_id);
  if (!conv.empty() && !cancelling_.count(conv)) StartWaiting(conv, now_());
}

void TextChats::Tick(int64_t now_ns) {
  std::vector<std::string> late_tools, stalled;
  for (auto& [rid, c] : chats_) {
    if (c.phase == Phase::kTools && now_ns >= c.tools_deadline_ns) late_tools.push_back(rid);
    if (c.phase == Phase::kStreaming && now_ns - c.last_event_ns > options_.stall_timeout_ns) stalled.push_back(rid);
  }
  for (const auto& rid : late_tools) {
    Chat* c = Find(rid);
    if (!c) continue;
    // Nobody answered in time: the agent gets an error output and goes on.
    for (const auto& [id, name] : c->calls) {
      bool done = false;
      for (const auto& [oid, out] : c->outputs) done = done || oid == id;
      if (done) continue;
      ++counters_.tool_timeouts;
      std::string out = Json{{"error", "the tool " + name + " did not answer in time"}}.dump();
      c->outputs.emplace_back(id, out);
      auto ev = Event(*c);
      ev.mutable_tool_result()->set_call_id(id);
      ev.mutable_tool_result()->set_output(out);
      port_->PublishChatEvent(ev);
    }
    SubmitOutputs(*c, now_ns);
  }
  for (const auto& rid : stalled) {
    ++counters_.stalls;
    End(rid, v1::TurnEnded::FAILED, "no reply from the service in time");
  }
}

}  // namespace vb::session
