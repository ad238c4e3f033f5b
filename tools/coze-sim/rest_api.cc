// Implementation of rest_api.h.
#include "tools/coze-sim/rest_api.h"

#include <algorithm>

#include "tools/coze-sim/ids.h"

namespace vb::cozesim {
namespace {

const char* kVerbose =
    R"({"msg_type":"generate_answer_finish","data":"{\"finish_reason\":0,\"FinData\":\"\"}","from_module":null,"from_unit":null})";

std::string MessageText(const Json& m) {
  std::string content = m.value("content", "");
  if (m.value("content_type", "text") != "object_string") return content;
  Json arr = Json::parse(content, nullptr, false);
  std::string out;
  if (arr.is_array())
    for (const auto& it : arr)
      if (it.is_object() && it.value("type", "") == "text") out += (out.empty() ? "" : " ") + it.value("text", "");
  return out;
}

// Validates one message of `messages`/`additional_messages`; "" when fine.
std::string CheckMessage(const Json& m) {
  if (!m.is_object()) return "messages must be objects";
  if (!m.contains("role") || !m["role"].is_string() || (m["role"] != "user" && m["role"] != "assistant"))
    return "message role must be user or assistant";
  if (!m.contains("content") || !m["content"].is_string()) return "message content must be a string";
  if (m.contains("content_type") && !m["content_type"].is_string()) return "message content_type must be a string";
  std::string ct = m.value("content_type", "text");
  if (ct != "text" && ct != "object_string" && ct != "card") return "message content_type is not supported";
  if (m.contains("meta_data") && !m["meta_data"].is_object()) return "message meta_data must be an object";
  return "";
}

std::string CheckMeta(const Json& j) {
  if (!j.contains("meta_data") || j["meta_data"].is_null()) return "";
  if (!j["meta_data"].is_object()) return "meta_data must be an object";
  if (j["meta_data"].size() > 16) return "over";
  for (auto& [k, v] : j["meta_data"].items())
    if (k.empty() || k.size() > 64 || !v.is_string() || v.get<std::string>().size() > 512) return "over";
  return "";
}

}  // namespace

void SseStream::Event(const std::string& name, const Json& data, int64_t gap_ms) {
  at_ms += gap_ms;
  body += "event:" + name + "\ndata:" + data.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
  if (!pieces.empty() && pieces.back().at_ms == at_ms) pieces.back().end = body.size();
  else pieces.push_back({body.size(), at_ms});
}

void SseStream::Done() {
  body += "event:done\ndata:\"[DONE]\"\n\n";
  if (!pieces.empty() && pieces.back().at_ms == at_ms) pieces.back().end = body.size();
  else pieces.push_back({body.size(), at_ms});
}

HttpResponse SseStream::Response() const {
  HttpResponse r{200, "text/event-stream", body, {}};
  r.pieces = pieces;
  return r;
}

bool AccessPolicy::TokenOk(const std::string& header) const {
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return false;
  std::string token = header.substr(prefix.size());
  if (token.empty()) return false;
  return tokens.empty() || std::find(tokens.begin(), tokens.end(), token) != tokens.end();
}

bool AccessPolicy::BotOk(const std::string& bot_id) const {
  if (bot_id.empty()) return false;
  return bots.empty() || std::find(bots.begin(), bots.end(), bot_id) != bots.end();
}

HttpResponse RestApi::Envelope(int code, const std::string& msg, Json data, const std::string& logid, int status) {
  Json j = {{"code", code}, {"msg", msg}, {"detail", {{"logid", logid}}}};
  if (!data.is_null()) j["data"] = std::move(data);
  return {status, "application/json", j.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

HttpResponse RestApi::Handle(const HttpRequest& req) {
  const std::string logid = NewLogId();
  if (req.path.rfind("/_sim/", 0) == 0) {
    if (req.path == "/_sim/faults") return Faults(req.method, req.body);
    if (req.path == "/_sim/health") return {200, "application/json", Json{{"ok", true}}.dump()};
    if (req.path == "/_sim/stats") return {200, "application/json", (stats ? stats() : Json::object()).dump()};
    return Envelope(4200, "not found", nullptr, logid, 404);
  }
  if (!access_->TokenOk(req.authorization)) return Envelope(4100, "authentication is invalid", nullptr, logid, 401);
  if (faults_ && faults_->error_code)
    return Envelope(faults_->error_code, CozeErrorMessage(faults_->error_code) + " (injected fault)", nullptr, logid);
  Json body = Json::object();
  if (!req.body.empty()) {
    body = Json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return Envelope(4000, "invalid parameter: body must be a JSON object", nullptr, logid);
  }
  const std::string& p = req.path;
  if (p == "/v1/conversation/create" && req.method == "POST") return CreateConversation(body, logid);
  if (p == "/v1/conversation/retrieve") return RetrieveConversation(req.query, logid);
  if (p == "/v1/conversation/message/create" && req.method == "POST") return CreateMessage(req.query, body, logid);
  if (p == "/v1/conversation/message/list" && req.method == "POST") return ListMessages(req.query, body, logid);
  if (p.rfind("/v1/conversations/", 0) == 0 && p.size() > 24 && p.compare(p.size() - 6, 6, "/clear") == 0 &&
      req.method == "POST")
    return ClearConversation(p.substr(18, p.size() - 18 - 6), logid);
  if (p == "/v3/chat" && req.method == "POST") return Chat(req.query, body, logid);
  if (p == "/v3/chat/retrieve") return RetrieveChat(req.query, logid);
  if (p == "/v3/chat/message/list") return ChatMessages(req.query, logid);
  if (p == "/v3/chat/cancel" && req.method == "POST") return CancelChat(body, logid);
  if (p == "/v3/chat/submit_tool_outputs" && req.method == "POST") return SubmitToolOutputs(req.query, body, logid);
  return Envelope(4200, "not found: " + req.method + " " + p, nullptr, logid, 404);
}

HttpResponse RestApi::Faults(const std::string& method, const std::string& body) {
  if (method == "POST") {
    Json j = Json::parse(body, nullptr, false);
    std::string err;
    if (j.is_discarded()) err = "body must be JSON";
    else if (j.is_object() && j.value("reset", false)) *faults_ = vb::cozesim::Faults{};
    else if (!faults_->Merge(j, &err)) {
    }
    if (!err.empty()) return {400, "application/json", Json{{"error", err}}.dump()};
  }
  return {200, "application/json", faults_->ToJson().dump()};
}

HttpResponse RestApi::CreateConversation(const Json& body, const std::string& logid) {
  if (body.contains("bot_id") && (!body["bot_id"].is_string() || !access_->BotOk(body["bot_id"].get<std::string>())))
    return Envelope(4006, "invalid bot_id", nullptr, logid);
  std::string e = CheckMeta(body);
  if (e == "over") return Envelope(4003, "meta_data over limit", nullptr, logid);
  if (!e.empty()) return Envelope(4000, "invalid parameter: " + e, nullptr, logid);
  if (body.contains("messages")) {
    if (!body["messages"].is_array())
      return Envelope(4000, "invalid parameter: messages must be a list", nullptr, logid);
    if (body["messages"].size() > 100) return Envelope(4004, "messages over limit", nullptr, logid);
    for (const auto& m : body["messages"])
      if (!(e = CheckMessage(m)).empty()) return Envelope(4000, "invalid parameter: " + e, nullptr, logid);
  }
  Conversation& conv = store_->CreateConversation(body.value("bot_id", ""), body.value("meta_data", Json::object()));
  if (body.contains("name") && body["name"].is_string()) conv.name = body["name"].get<std::string>();
  if (body.contains("messages"))
    for (const auto& m : body["messages"]) {
      Message msg;
      msg.role = m["role"];
      msg.type = msg.role == "user" ? "question" : "answer";
      msg.content = m["content"];
      msg.content_type = m.value("content_type", "text");
      msg.meta_data = m.value("meta_data", Json::object());
      store_->AddMessage(conv, msg);
    }
  return Envelope(0, "", conv.ToJson(), logid);
}

HttpResponse RestApi::RetrieveConversation(const std::string& query, const std::string& logid) {
  auto id = QueryValue(query, "conversation_id");
  Conversation* conv = id ? store_->FindConversation(*id) : nullptr;
  if (!conv) return Envelope(4002, "conversation not found", nullptr, logid);
  return Envelope(0, "", conv->ToJson(), logid);
}

HttpResponse RestApi::CreateMessage(const std::string& query, const Json& body, const std::string& logid) {
  auto id = QueryValue(query, "conversation_id");
  Conversation* conv = id ? store_->FindConversation(*id) : nullptr;
  if (!conv) return Envelope(4002, "conversation not found", nullptr, logid);
  std::string e = CheckMessage(body);
  if (!e.empty()) return Envelope(4000, "invalid parameter: " + e, nullptr, logid);
  e = CheckMeta(body);
  if (e == "over") return Envelope(4003, "meta_data over limit", nullptr, logid);
  Message m;
  m.role = body["role"];
  m.type = m.role == "user" ? "question" : "answer";
  m.content = body["content"];
  m.content_type = body.value("content_type", "text");
  m.meta_data = body.value("meta_data", Json::object());
  return Envelope(0, "", store_->AddMessage(*conv, m).ToJson(), logid);
}

HttpResponse RestApi::ListMessages(const std::string& query, const Json& body, const std::string& logid) {
  auto id = QueryValue(query, "conversation_id");
  Conversation* conv = id ? store_->FindConversation(*id) : nullptr;
  if (!conv) return Envelope(4002, "conversation not found", nullptr, logid);
  std::string order = body.contains("order") && body["order"].is_string() ? body["order"].get<std::string>() : "desc";
  int limit = body.contains("limit") && body["limit"].is_number_integer() ? body["limit"].get<int>() : 50;
  if (limit < 1 || limit > 50 || (order != "asc" && order != "desc"))
    return Envelope(4000, "invalid parameter: order asc|desc, limit 1-50", nullptr, logid);
  std::string chat_id =
      body.contains("chat_id") && body["chat_id"].is_string() ? body["chat_id"].get<std::string>() : "";
  std::string before =
      body.contains("before_id") && body["before_id"].is_string() ? body["before_id"].get<std::string>() : "";
  std::string after =
      body.contains("after_id") && body["after_id"].is_string() ? body["after_id"].get<std::string>() : "";
  std::vector<const Message*> all;
  for (const auto& m : conv->messages)
    if (chat_id.empty() || m.chat_id == chat_id) all.push_back(&m);
  if (order == "desc") std::reverse(all.begin(), all.end());
  // before_id/after_id page in the listing order: "before" = earlier in the list.
  auto pos_of = [&](const std::string& mid) -> long {
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i]->id == mid) return long(i);
    return -1;
  };
  size_t begin = 0, end = all.size();
  if (!before.empty()) {
    long p = pos_of(before);
    if (p >= 0) begin = size_t(p) + 1;
  }
  if (!after.empty()) {
    long p = pos_of(after);
    if (p >= 0) {
      end = size_t(p);
      begin = end > size_t(limit) ? end - size_t(limit) : 0;
    }
  }
  Json data = Json::array();
  size_t i = begin;
  for (; i < end && data.size() < size_t(limit); ++i) data.push_back(all[i]->ToJson());
  Json j = {{"code", 0},
            {"msg", ""},
            {"data", data},
            {"first_id", data.empty() ? "" : data.front()["id"].get<std::string>()},
            {"last_id", data.empty() ? "" : data.back()["id"].get<std::string>()},
            {"has_more", i < end},
            {"detail", {{"logid", logid}}}};
  return {200, "application/json", j.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

HttpResponse RestApi::ClearConversation(const std::string& id, const std::string& logid) {
  Conversation* conv = store_->FindConversation(id);
  if (!conv) return Envelope(4002, "conversation not found", nullptr, logid);
  std::string section = store_->Clear(*conv);
  return Envelope(0, "", Json{{"id", section}, {"conversation_id", conv->id}}, logid);
}

void RestApi::Answer(Conversation& conv, vb::cozesim::Chat& chat, const std::string& text, SseStream* sse) {
  Message a;
  a.chat_id = chat.id;
  a.role = "assistant";
  a.type = "answer";
  a.content = text;
  a.bot_id = chat.bot_id;
  a.id = NewNumericId();
  a.conversation_id = conv.id;
  a.section_id = conv.last_section_id;
  a.created_at = NowEpochSeconds();
  if (sse) {
    // Deltas of about three words, like the WebSocket's message.delta,
    // produced as a streaming model would (SseStream's pacing).
    size_t start = 0;
    int words = 0;
    auto delta = [&](size_t end) {
      Message d = a;
      d.content = text.substr(start, end - start);
      sse->Event("conversation.message.delta", d.ToJson(), start == 0 ? SseStream::kFirstDeltaMs : SseStream::kDeltaMs);
      start = end;
      words = 0;
    };
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == ' ' && ++words == 3) delta(i + 1);
    if (start < text.size()) delta(text.size());
  }
  Message stored = chat.auto_save ? store_->AddMessage(conv, a) : a;
  if (sse) sse->Event("conversation.message.completed", stored.ToJson());
  Message v = a;
  v.id = NewNumericId();
  v.type = "verbose";
  v.content = kVerbose;
  Message vstored = chat.auto_save ? store_->AddMessage(conv, v) : v;
  if (sse) sse->Event("conversation.message.completed", vstored.ToJson());
  chat.status = "completed";
  chat.completed_at = NowEpochSeconds();
  chat.input_tokens = 20;
  chat.output_tokens = int64_t(text.size() / 4 + 1);
  if (sse) sse->Event("conversation.chat.completed", chat.ToJson());
}

void RestApi::Fail(vb::cozesim::Chat& chat, const std::string& text, const TurnFault& f, SseStream* sse) {
  if (sse && f.after_sentences > 0) {
    // The sentences answered before the failure, as deltas of one message.
    Message d;
    d.id = NewNumericId();
    d.conversation_id = chat.conversation_id;
    d.bot_id = chat.bot_id;
    d.chat_id = chat.id;
    d.section_id = chat.section_id;
    d.role = "assistant";
    d.type = "answer";
    d.created_at = NowEpochSeconds();
    int sentences = 0;
    size_t start = 0;
    for (size_t i = 0; i < text.size() && sentences < f.after_sentences; ++i) {
      bool end = (text[i] == '.' || text[i] == '!' || text[i] == '?') && (i + 1 == text.size() || text[i + 1] == ' ');
      if (!end) continue;
      d.content = text.substr(start, i + 1 - start);
      sse->Event("conversation.message.delta", d.ToJson(),
                 sentences == 0 ? SseStream::kFirstDeltaMs : SseStream::kDeltaMs);
      start = i + 1;
      ++sentences;
    }
  }
  chat.status = "failed";
  chat.failed_at = NowEpochSeconds();
  chat.last_error = {{"code", f.code}, {"msg", f.msg}};
  chat.required_action = nullptr;
  if (sse) sse->Event("conversation.chat.failed", chat.ToJson());
}

void RestApi::RunChat(Conversation& conv, vb::cozesim::Chat& chat, const std::string& user_text, SseStream* sse,
                      const TurnFault& fault) {
  std::vector<std::string> earlier = store_->UserTexts(conv);
  if (!earlier.empty() && earlier.back() == user_text) earlier.pop_back();  // the question itself
  AgentReply reply = agent_->Respond(user_text, earlier);
  if (fault.kind == TurnFault::kChatFailed) {
    reply.tool.reset();
    reply.failure = fault;
  }
  if (reply.failure) {
    Fail(chat, reply.text, *reply.failure, sse);
    return;
  }
  if (reply.tool) {
    std::string call_id = NewNumericId();
    Message fc;
    fc.chat_id = chat.id;
    fc.role = "assistant";
    fc.type = "function_call";
    fc.content = Json{{"name", reply.tool->name},
                      {"arguments", Json::parse(reply.tool->arguments_json, nullptr, false)},
                      {"plugin_id", "0"},
                      {"plugin_name", reply.tool->name},
                      {"api_id", "0"},
                      {"api_name", reply.tool->name}}
                     .dump();
    Message stored = store_->AddMessage(conv, fc);
    if (sse) sse->Event("conversation.message.completed", stored.ToJson());
    chat.status = "requires_action";
    chat.required_action = {
        {"type", "submit_tool_outputs"},
        {"submit_tool_outputs",
         {{"tool_calls",
           Json::array({{{"id", call_id},
                         {"type", "function"},
                         {"function", {{"name", reply.tool->name}, {"arguments", reply.tool->arguments_json}}}}})}}}};
    if (pending_tools_.size() >= kMaxPending) pending_tools_.erase(pending_tools_.begin());
    pending_tools_[chat.id] = {*reply.tool, call_id};
    if (sse) sse->Event("conversation.chat.requires_action", chat.ToJson());
    return;
  }
  Answer(conv, chat, reply.text, sse);
}

HttpResponse RestApi::Chat(const std::string& query, const Json& body, const std::string& logid) {
  if (!body.contains("bot_id") || !body["bot_id"].is_string() || !access_->BotOk(body["bot_id"].get<std::string>()))
    return Envelope(4006, "invalid bot_id", nullptr, logid);
  if (body.contains("user_id") && !body["user_id"].is_string())
    return Envelope(4000, "invalid parameter: user_id must be a string", nullptr, logid);
  if (body.contains("stream") && !body["stream"].is_boolean())
    return Envelope(4000, "invalid parameter: stream must be a boolean", nullptr, logid);
  if (body.contains("auto_save_history") && !body["auto_save_history"].is_boolean())
    return Envelope(4000, "invalid parameter: auto_save_history must be a boolean", nullptr, logid);
  std::string e = CheckMeta(body);
  if (e == "over") return Envelope(4003, "meta_data over limit", nullptr, logid);
  if (!e.empty()) return Envelope(4000, "invalid parameter: " + e, nullptr, logid);
  Json msgs = body.value("additional_messages", Json::array());
  if (!msgs.is_array()) return Envelope(4000, "invalid parameter: additional_messages must be a list", nullptr, logid);
  if (msgs.size() > 100) return Envelope(4004, "additional_messages over limit", nullptr, logid);
  for (const auto& m : msgs)
    if (!(e = CheckMessage(m)).empty()) return Envelope(4000, "invalid parameter: " + e, nullptr, logid);
  bool stream = body.value("stream", false);
  bool save = body.value("auto_save_history", true);
  if (!stream && !save) return Envelope(4007, "auto_save_history must be true when stream is false", nullptr, logid);
  TurnFault fault = faults_ ? faults_->TakeTurnFault() : TurnFault{};
  if (fault.kind == TurnFault::kError) return Envelope(fault.code, fault.msg, nullptr, logid);
  Conversation* conv = nullptr;
  if (auto cid = QueryValue(query, "conversation_id"); cid && !cid->empty()) {
    conv = store_->FindConversation(*cid);
    if (!conv) return Envelope(4002, "conversation not found", nullptr, logid);
    if (store_->RunningChat(*conv) && store_->RunningChat(*conv)->status != "requires_action")
      return Envelope(4016, "a chat is already running in this conversation", nullptr, logid);
  } else {
    conv = &store_->CreateConversation(body["bot_id"].get<std::string>());
  }
  vb::cozesim::Chat& chat = store_->CreateChat(*conv, body["bot_id"].get<std::string>());
  chat.auto_save = save;
  std::string user_text;
  for (const auto& m : msgs) {
    Message msg;
    msg.chat_id = chat.id;
    msg.role = m["role"];
    msg.type = msg.role == "user" ? "question" : "answer";
    msg.content = m["content"];
    msg.content_type = m.value("content_type", "text");
    if (msg.role == "user") user_text = MessageText(m);
    if (save) store_->AddMessage(*conv, msg);
  }
  SseStream sse;
  Json created = chat.ToJson();
  chat.status = "in_progress";
  Json in_progress = chat.ToJson();
  if (stream) {
    sse.Event("conversation.chat.created", created);
    sse.Event("conversation.chat.in_progress", in_progress);
  }
  RunChat(*conv, chat, user_text, stream ? &sse : nullptr, fault);
  if (stream) {
    sse.Done();
    return sse.Response();
  }
  // Non-streaming: the chat is reported in progress; retrieve shows it done.
  return Envelope(0, "", in_progress, logid);
}

HttpResponse RestApi::RetrieveChat(const std::string& query, const std::string& logid) {
  auto cid = QueryValue(query, "conversation_id");
  auto chid = QueryValue(query, "chat_id");
  if (!cid || !chid)
    return Envelope(4000, "invalid parameter: conversation_id and chat_id are required", nullptr, logid);
  vb::cozesim::Chat* chat = store_->FindChat(*cid, *chid);
  if (!chat) return Envelope(4001, "chat not found", nullptr, logid);
  return Envelope(0, "", chat->ToJson(), logid);
}

HttpResponse RestApi::ChatMessages(const std::string& query, const std::string& logid) {
  auto cid = QueryValue(query, "conversation_id");
  auto chid = QueryValue(query, "chat_id");
  if (!cid || !chid)
    return Envelope(4000, "invalid parameter: conversation_id and chat_id are required", nullptr, logid);
  Conversation* conv = store_->FindConversation(*cid);
  if (!conv || !store_->FindChat(*cid, *chid)) return Envelope(4001, "chat not found", nullptr, logid);
  Json data = Json::array();
  for (const Message* m : store_->ChatMessages(*conv, *chid)) data.push_back(m->ToJson());
  return Envelope(0, "", data, logid);
}

HttpResponse RestApi::CancelChat(const Json& body, const std::string& logid) {
  if (!body.contains("conversation_id") || !body["conversation_id"].is_string() || !body.contains("chat_id") ||
      !body["chat_id"].is_string())
    return Envelope(4000, "invalid parameter: conversation_id and chat_id are required", nullptr, logid);
  vb::cozesim::Chat* chat = store_->FindChat(body["conversation_id"], body["chat_id"]);
  if (!chat) return Envelope(4001, "chat not found", nullptr, logid);
  if (!chat->Running()) return Envelope(4104, "the chat cannot be canceled: it has finished", nullptr, logid);
  chat->status = "canceled";
  chat->required_action = nullptr;
  pending_tools_.erase(chat->id);
  return Envelope(0, "", chat->ToJson(), logid);
}

HttpResponse RestApi::SubmitToolOutputs(const std::string& query, const Json& body, const std::string& logid) {
  auto cid = QueryValue(query, "conversation_id");
  auto chid = QueryValue(query, "chat_id");
  if (!cid || !chid)
    return Envelope(4000, "invalid parameter: conversation_id and chat_id are required", nullptr, logid);
  Conversation* conv = store_->FindConversation(*cid);
  vb::cozesim::Chat* chat = store_->FindChat(*cid, *chid);
  auto it = pending_tools_.find(*chid);
  if (!conv || !chat) return Envelope(4001, "chat not found", nullptr, logid);
  if (chat->status != "requires_action" || it == pending_tools_.end())
    return Envelope(4000, "invalid parameter: the chat is not waiting for tool outputs", nullptr, logid);
  if (!body.contains("tool_outputs") || !body["tool_outputs"].is_array() || body["tool_outputs"].empty())
    return Envelope(4000, "invalid parameter: tool_outputs is required", nullptr, logid);
  std::string output;
  bool found = false;
  for (const auto& o : body["tool_outputs"]) {
    if (!o.is_object() || !o.contains("tool_call_id") || !o["tool_call_id"].is_string() || !o.contains("output") ||
        !o["output"].is_string())
      return Envelope(4000, "invalid parameter: tool_outputs items need tool_call_id and output", nullptr, logid);
    if (o["tool_call_id"] == it->second.tool_call_id) {
      output = o["output"];
      found = true;
    }
  }
  if (!found) return Envelope(4000, "invalid parameter: unknown tool_call_id", nullptr, logid);
  bool stream = body.value("stream", false);
  ToolCall call = it->second.call;
  pending_tools_.erase(it);
  Message tr;
  tr.chat_id = chat->id;
  tr.role = "assistant";
  tr.type = "tool_response";
  tr.content = output;
  store_->AddMessage(*conv, tr);
  chat->status = "in_progress";
  chat->required_action = nullptr;
  Json in_progress = chat->ToJson();
  SseStream sse;
  if (stream) sse.Event("conversation.chat.in_progress", in_progress);
  Answer(*conv, *chat, agent_->ResumeAfterTool(call, output), stream ? &sse : nullptr);
  if (stream) {
    sse.Done();
    return sse.Response();
  }
  return Envelope(0, "", in_progress, logid);
}

}  // namespace vb::cozesim
