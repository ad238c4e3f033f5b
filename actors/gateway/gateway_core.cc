// GatewayCore: protocol state machine (see gateway_core.h).
#include "actors/gateway/gateway_core.h"

#include <algorithm>
#include <chrono>

#include "bus/log.h"

namespace vb::gateway {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* OutcomeName(v1::TurnEnded::Outcome o) {
  switch (o) {
    case v1::TurnEnded::COMPLETED: return "completed";
    case v1::TurnEnded::CANCELLED: return "cancelled";
    case v1::TurnEnded::FAILED: return "failed";
    default: return "ended";
  }
}

}  // namespace

bool LogLimiter::Allow(int64_t now_ns, uint64_t* suppressed) {
  if (now_ns - window_start_ns_ >= window_ns_) {
    window_start_ns_ = now_ns;
    used_ = 0;
  }
  if (used_ >= burst_) {
    ++suppressed_;
    return false;
  }
  ++used_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

void GatewayCore::LogRejected(const Conn& conn, int code, std::string_view why, int64_t now_ns) {
  uint64_t suppressed = 0;
  if (!log_limit_.Allow(now_ns, &suppressed)) {
    ++counters_.logs_suppressed;
    return;
  }
  // Never the frame itself (an authorize carries a token): only what was wrong.
  VB_LOG(kWarn) << (code == 401 ? "refused (not authorized) " : "rejected ") << code << " from connection "
                << conn.connection_id << ": " << std::string(why.substr(0, 160))
                << (suppressed ? " (" + std::to_string(suppressed) + " similar lines suppressed)" : "");
}

GatewayCore::GatewayCore(CoreOptions options, const TokenSet& tokens, const AvatarLibrary& library,
                         ClientTransport& transport, CommandSink& commands)
    : options_(options),
      tokens_(tokens),
      library_(library),
      transport_(transport),
      commands_(commands),
      history_(options.history) {}

// ---- connections --------------------------------------------------------

void GatewayCore::OnOpen(ConnId id, int64_t now_ns) {
  Conn c;
  c.connection_id = NewUuid();
  c.last_rx_ns = c.opened_ns = now_ns;
  conns_[id] = std::move(c);
  ++counters_.connections;
}

void GatewayCore::OnClose(ConnId id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second.dashboard) --dashboards_;
  if (!it->second.tools.empty()) {
    it->second.tools.clear();
    OfferTools(it->second);  // an empty offer withdraws them
  }
  conns_.erase(it);
}

void GatewayCore::Drop(ConnId id, std::string_view reason) {
  transport_.Close(id, reason);
  OnClose(id);
}

void GatewayCore::OnBadFrame(ConnId id, int code, std::string_view message, int64_t now_ns) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  it->second.last_rx_ns = now_ns;
  ++counters_.bad_requests;
  LogRejected(it->second, it->second.authorized ? code : 401, message, now_ns);
  SendTo(id, ErrorMessage(it->second.authorized ? code : 401,
                          it->second.authorized ? message : "not authorized: send authorize first"));
}

void GatewayCore::OnText(ConnId id, std::string_view text, int64_t now_ns) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& conn = it->second;
  conn.last_rx_ns = now_ns;
  ClientMessage m;
  ProtocolError e = ParseClientMessage(text, &m);
  bool is_authorize = m.typed && m.type == ClientType::kAuthorize;
  if (!conn.authorized && !is_authorize) {
    ++counters_.bad_requests;
    LogRejected(conn, 401, "a message before authorize", now_ns);
    SendTo(id, ErrorMessage(401, "not authorized: send authorize first", m.id));
    return;
  }
  if (!e.ok()) {
    ++counters_.bad_requests;
    LogRejected(conn, e.code, e.message, now_ns);
    SendTo(id, ErrorMessage(e.code, e.message, m.id));
    return;
  }
  Handle(id, conn, m, now_ns);
}

void GatewayCore::Handle(ConnId id, Conn& conn, const ClientMessage& m, int64_t now_ns) {
  auto reply = [&](std::string_view type) {
    Json r = ServerMessage(type);
    if (!m.id.empty()) r["reply_to"] = m.id;
    return r;
  };
  switch (m.type) {
    case ClientType::kAuthorize: {
      if (tokens_.Check(m.token)) {
        if (!conn.authorized) ++counters_.authorized;
        conn.authorized = true;
        Json r = reply("authorize_success");
        r["connection_id"] = conn.connection_id;
        SendTo(id, r);
        return;
      }
      ++counters_.auth_failures;
      LogRejected(conn, 401,
                  "authorize with an invalid token (" + std::to_string(conn.auth_failures + 1) + " on this connection)",
                  now_ns);
      if (conn.dashboard) --dashboards_;
      conn.authorized = conn.dashboard = false;
      Json r = reply("authorize_error");
      r["error"] = "invalid token";
      SendTo(id, r);
      if (++conn.auth_failures >= options_.max_auth_failures) Drop(id, "too many failed authorizations");
      return;
    }
    case ClientType::kPong: return;
    case ClientType::kChatMessage: HandleChat(id, conn, m, now_ns); return;
    case ClientType::kInterruptStream: HandleInterrupt(id, conn, m); return;
    case ClientType::kNewConversation: HandleNewConversation(id, conn, m); return;
    case ClientType::kRegisterTools: {
      conn.tools.clear();
      Json names = Json::array();
      for (const auto& t : m.tools) {
        v1::ToolSpec spec;
        spec.set_name(t.name);
        spec.set_description(t.description);
        spec.set_parameters_json(t.parameters_json.empty() ? R"({"type":"object","properties":{}})"
                                                           : t.parameters_json);
        spec.set_timeout_ms(t.timeout_ms);
        conn.tools.push_back(std::move(spec));
        names.push_back(t.name);
      }
      OfferTools(conn);
      Json r = reply("tools_registered");
      r["tools"] = names;
      r["provider"] = options_.tool_provider + ":" + conn.connection_id;
      SendTo(id, r);
      return;
    }
    case ClientType::kFetchBackgrounds: {
      std::vector<std::string> files;
      if (Status st = library_.ListBackgrounds(&files); !st.ok()) {
        SendTo(id, ErrorMessage(500, st.message(), m.id));
        return;
      }
      Json r = reply("background_files");
      r["files"] = files;
      SendTo(id, r);
      return;
    }
    case ClientType::kFetchAvatarConfigs: {
      std::vector<AvatarEntry> entries;
      if (Status st = library_.ListAvatars(&entries); !st.ok()) {
        SendTo(id, ErrorMessage(500, st.message(), m.id));
        return;
      }
      Json r = reply("avatar_config_files");
      r["configs"] = Json::array();
      for (const auto& e : entries) r["configs"].push_back({{"filename", e.filename}, {"name", e.name}});
      SendTo(id, r);
      return;
    }
    case ClientType::kSwitchAvatarConfig: HandleSwitchAvatar(id, conn, m); return;
    case ClientType::kSubmitToolOutput: {
      if (auto inv = invocations_.find(m.call_id); inv != invocations_.end() && inv->second.conn == id) {
        // A call of a tool this client registered: the answer goes to the registry.
        v1::ToolAnswer a;
        a.set_call_id(m.call_id);
        a.set_provider(inv->second.provider);
        a.set_output(m.output);
        invocations_.erase(inv);
        ++counters_.tool_answers;
        if (!commands_.PublishToolAnswer(a)) SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
        return;
      }
      v1::DialogRequest cmd;
      auto* t = cmd.mutable_tool_output();
      std::string turn = m.turn_id;
      if (turn.empty()) {
        // The asker's own text chat waiting for tools, else the voice turn.
        for (const auto& [tid, tr] : turns_)
          if (tr.text_chat && tr.owner == id) turn = tid;
        if (turn.empty()) turn = current_turn_;
      }
      t->set_turn_id(turn);
      t->set_call_id(m.call_id);
      t->set_output(m.output);
      if (!PublishCommand(cmd)) SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
      return;
    }
    case ClientType::kPushToTalk: {
      v1::DialogRequest cmd;
      cmd.mutable_push_to_talk()->set_down(m.down);
      if (!m.down) NoteSpeechEnd(now_ns);
      if (!PublishCommand(cmd)) SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
      return;
    }
    case ClientType::kSetMode: {
      v1::DialogRequest cmd;
      cmd.mutable_set_mode()->set_mode(m.mode == "continuous"  ? v1::MODE_CONTINUOUS
                                       : m.mode == "wake_word" ? v1::MODE_WAKE_WORD
                                                               : v1::MODE_PUSH_TO_TALK);
      if (!PublishCommand(cmd)) SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
      return;
    }
    case ClientType::kDashboardSubscribe: {
      if (!conn.dashboard) ++dashboards_;
      conn.dashboard = true;
      Json r = snapshot_ ? snapshot_() : Json::object();
      r.update(reply("dashboard_snapshot"));
      r["latency"] = latency_;
      r["conversation_id"] = conversation_id_;
      r["session_status"] = session_status_;
      SendTo(id, r);
      // The turns before the page was opened (or reloaded).
      Json h = ServerMessage("dashboard_history");
      h["turns"] = history_.Turns();
      h["max_turns"] = history_.options().max_turns;
      SendTo(id, h);
      return;
    }
  }
}

bool GatewayCore::PublishCommand(const v1::DialogRequest& cmd) {
  if (commands_.Publish(cmd)) return true;
  ++counters_.commands_failed;
  return false;
}

void GatewayCore::HandleChat(ConnId id, Conn& conn, const ClientMessage& m, int64_t now_ns) {
  if (pending_.size() >= options_.max_pending_requests) {
    SendTo(id, ErrorMessage(500, "too many chat messages waiting for the session", m.id));
    return;
  }
  std::string request_id = NewUuid();
  // Asked: remembered until its turn starts, and shown at once on the other
  // dashboards (the asking page shows its own), whoever asked.
  auto asked = [&](Pending p) {
    p.question = m.content;
    p.asker = m.user_id.empty() ? conn.connection_id : m.user_id;
    if (dashboards_ > 0) {
      Json q = ServerMessage("chat_question");
      q["asker"] = p.asker;
      q["question"] = TurnHistory::Cap(p.question, history_.options().max_text_bytes);
      q["at_ms"] = WallMs();
      Frame f = Serialize(q);
      for (const auto& [cid, c] : conns_)
        if (cid != id && c.dashboard && c.authorized) transport_.Send(cid, f);
    }
    pending_[request_id] = std::move(p);
  };
  if (options_.per_client_conversations) {
    const std::string key = ClientKey(conn, m);
    conn.client_key = key;
    ClientConversation& cc = Conversation(key);
    cc.user_id = m.user_id;
    if (cc.conversation_id.empty() && !m.session_id.empty()) {
      // A session_id this gateway gave the same user (stream_start.session_id) continues that conversation.
      auto it = issued_.find(m.session_id);
      if (it != issued_.end() && it->second == m.user_id) cc.conversation_id = m.session_id;
    }
    v1::TextChatRequest r;
    r.set_request_id(request_id);
    auto* st = r.mutable_start();
    st->set_text(m.content);
    st->set_conversation_id(cc.conversation_id);
    st->set_conversation_key("gateway:" + key + "#" + std::to_string(cc.generation));
    st->set_user_id(m.user_id);
    if (!commands_.PublishChat(r)) {
      ++counters_.commands_failed;
      SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
      return;
    }
    ++counters_.chats;
    ++counters_.text_chats;
    Pending p{id, m.id, now_ns, false};
    p.text_chat = true;
    p.client_key = key;
    p.generation = cc.generation;
    asked(std::move(p));
    return;
  }
  v1::DialogRequest cmd;
  cmd.mutable_text_input()->set_text(m.content);
  cmd.mutable_text_input()->set_request_id(request_id);
  if (!PublishCommand(cmd)) {
    SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
    return;
  }
  ++counters_.chats;
  asked(Pending{id, m.id, now_ns, false});
}

void GatewayCore::HandleInterrupt(ConnId id, Conn& conn, const ClientMessage& m) {
  ++counters_.interrupts;
  std::vector<std::string> ended;
  bool cancelled_pending = false;
  auto mine = [&](const Turn& t) {
    return t.owner == id || (!conn.client_key.empty() && t.client_key == conn.client_key);
  };
  if (!m.turn_id.empty()) {
    Turn* t = FindTurn(m.turn_id);
    if (t && t->text_chat && !mine(*t)) {
      SendTo(id, ErrorMessage(403, "turn " + m.turn_id + " is another client's chat", m.id));
      return;
    }
    if (t && t->text_chat) {
      CancelChat(t->request_id);
    } else if (t || !options_.per_client_conversations) {
      v1::DialogRequest cmd;
      cmd.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
      cmd.mutable_interrupt()->set_turn_id(m.turn_id);
      PublishCommand(cmd);
    }
    if (t) {
      ended.push_back(m.turn_id);
      EndTurn(m.turn_id, "interrupted", "");
    }
  } else {
    bool voice_running = false;
    for (const auto& [tid, t] : turns_) {
      if (t.text_chat && !mine(t)) continue;  // another client's chat: never touched
      if (t.text_chat) CancelChat(t.request_id);
      else voice_running = true;
      ended.push_back(tid);
    }
    if (voice_running || !options_.per_client_conversations) {
      v1::DialogRequest cmd;
      cmd.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
      cmd.mutable_interrupt()->set_turn_id("");
      PublishCommand(cmd);
    }
    for (const auto& tid : ended) EndTurn(tid, "interrupted", "");
    // Chats not started yet are cancelled as soon as their turn appears
    // (the asker's only, when each client has its own conversation).
    for (auto& [rid, p] : pending_) {
      if (options_.per_client_conversations && p.conn != id) continue;
      p.cancelled = true;
      cancelled_pending = true;
      if (p.text_chat) CancelChat(rid);
    }
  }
  Json ack = ServerMessage("interrupt_ack");
  if (!m.id.empty()) ack["reply_to"] = m.id;
  ack["turn_ids"] = ended;
  ack["outcome"] = ended.empty() && !cancelled_pending ? "nothing_running" : "interrupted";
  SendTo(id, ack);
}

void GatewayCore::HandleNewConversation(ConnId id, Conn& conn, const ClientMessage& m) {
  ++counters_.new_conversations;
  Json r = ServerMessage("new_conversation_started");
  if (!m.id.empty()) r["reply_to"] = m.id;
  if (!options_.per_client_conversations || m.device) {
    // The voice dialog's conversation (conversation.clear): the one shared
    // conversation, or the device's when asked (the dashboard's button).
    v1::DialogRequest cmd;
    cmd.mutable_new_conversation();
    if (!PublishCommand(cmd)) {
      SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
      return;
    }
    r["device"] = true;
    if (!options_.per_client_conversations) {
      SendTo(id, r);
      return;
    }
  }
  std::string key = !m.user_id.empty() || !m.session_id.empty() ? ClientKey(conn, m) : conn.client_key;
  if (!key.empty()) {
    ClientConversation& cc = Conversation(key);
    ++cc.generation;  // the next chat_message gets a new conversation
    cc.conversation_id.clear();
  }
  SendTo(id, r);
}

std::string GatewayCore::ClientKey(const Conn& conn, const ClientMessage& m) const {
  // user_id first: two users never share a conversation, whatever session_id they send.
  return m.user_id + "\x1f" + (m.session_id.empty() ? "conn:" + conn.connection_id : m.session_id);
}

GatewayCore::ClientConversation& GatewayCore::Conversation(const std::string& key) {
  auto it = client_convs_.find(key);
  if (it != client_convs_.end()) return it->second;
  while (client_convs_.size() >= options_.max_client_conversations && !client_order_.empty()) {
    client_convs_.erase(client_order_.front());
    client_order_.pop_front();
  }
  client_order_.push_back(key);
  return client_convs_[key];
}

void GatewayCore::CancelChat(const std::string& request_id) {
  v1::TextChatRequest r;
  r.set_request_id(request_id);
  r.mutable_cancel();
  if (!commands_.PublishChat(r)) ++counters_.commands_failed;
}

void GatewayCore::FailTextChats(const std::string& reason) {
  std::vector<std::string> running;
  for (const auto& [tid, t] : turns_)
    if (t.text_chat) running.push_back(tid);
  for (const auto& tid : running) EndTurn(tid, "failed", reason);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!it->second.text_chat) {
      ++it;
      continue;
    }
    if (!it->second.cancelled) SendTo(it->second.conn, ErrorMessage(500, reason, it->second.reply_to));
    it = pending_.erase(it);
  }
}

size_t GatewayCore::running_text_chats() const {
  size_t n = 0;
  for (const auto& [tid, t] : turns_) n += t.text_chat;
  for (const auto& [rid, p] : pending_) n += p.text_chat;
  return n;
}

void GatewayCore::OnChatEvent(const v1::TextChatEvent& ev, int64_t now_ns) {
  const std::string& rid = ev.request_id();
  const std::string& tid = ev.chat_id();
  switch (ev.event_case()) {
    case v1::TextChatEvent::kStarted: {
      auto p = pending_.find(rid);
      if (p == pending_.end() || !p->second.text_chat) return;  // not ours, or given up (start timeout)
      if (tid.empty() || FindTurn(tid)) return;
      if (p->second.cancelled) {
        pending_.erase(p);
        CancelChat(rid);
        Retire(tid);
        return;
      }
      const std::string key = p->second.client_key;
      const ConnId owner = p->second.conn;
      auto cc = client_convs_.find(key);
      if (cc != client_convs_.end() && cc->second.generation == p->second.generation && !ev.conversation_id().empty()) {
        cc->second.conversation_id = ev.conversation_id();
        if (issued_.size() >= options_.max_client_conversations) issued_.erase(issued_.begin());
        issued_[ev.conversation_id()] = cc->second.user_id;
      }
      Turn* t = StartTurn(tid, ev.conversation_id(), false, rid, now_ns, true);
      t->text_chat = true;
      t->request_id = rid;
      t->owner = owner;
      t->client_key = key;
      return;
    }
    case v1::TextChatEvent::kText:
    case v1::TextChatEvent::kToolCall:
    case v1::TextChatEvent::kToolResult: {
      Turn* t = FindTurn(tid);
      if (!t || !t->text_chat) return;  // not a chat of this gateway's clients
      t->last_event_ns = now_ns;
      if (ev.has_text()) OnAgentText(*t, ev.text(), now_ns);
      else if (ev.has_tool_call()) SendToolCall(*t, ev.tool_call());
      else SendToolResult(*t, ev.tool_result());
      return;
    }
    case v1::TextChatEvent::kEnded: {
      const auto& te = ev.ended();
      if (te.outcome() == v1::TurnEnded::REQUIRES_ACTION) return;
      if (Turn* t = FindTurn(tid); t && t->text_chat) {
        EndTurn(tid, OutcomeName(te.outcome()), te.error());
        return;
      }
      // Ended before it started: the asker hears why.
      auto p = pending_.find(rid);
      if (p == pending_.end() || !p->second.text_chat) return;
      if (!p->second.cancelled)
        SendTo(p->second.conn,
               ErrorMessage(500,
                            "the chat could not run: " +
                                (te.error().empty() ? std::string(OutcomeName(te.outcome())) : te.error()),
                            p->second.reply_to));
      pending_.erase(p);
      return;
    }
    case v1::TextChatEvent::EVENT_NOT_SET: return;
  }
}

void GatewayCore::HandleSwitchAvatar(ConnId id, Conn& conn, const ClientMessage& m) {
  AvatarConfig c;
  if (Status st = library_.Load(m.file, &c); !st.ok()) {
    SendTo(id, ErrorMessage(st.code() == Status::Code::kInvalid ? 400 : 500, st.message(), m.id));
    return;
  }
  v1::DialogRequest cmd;
  auto* sc = cmd.mutable_session_config();
  sc->set_bot_id(c.bot_id);
  sc->set_voice_id(c.voice_id);
  if (c.speech_rate) {
    sc->set_speech_rate(*c.speech_rate);
    sc->set_has_speech_rate(true);
  }
  sc->set_persona_prompt(c.persona_prompt);
  if (!PublishCommand(cmd)) {
    SendTo(id, ErrorMessage(500, "the gateway cannot reach the bus", m.id));
    return;
  }
  Json switched = ServerMessage("avatar_config_switched");
  switched["file"] = c.filename;
  if (!m.id.empty()) switched["reply_to"] = m.id;
  SendTo(id, switched);
  Json conf = ServerMessage("set_model_and_conf");
  conf["model_info"] = {{"model_path", c.model_path}, {"expressions", c.expressions}, {"motions", c.motions}};
  conf["conf_name"] = c.name;
  conf["conf_uid"] = c.conf_uid;
  conf["client_uid"] = conn.connection_id;
  conf["persona_prompt"] = c.persona_prompt;
  SendTo(id, conf);
  Json note = ServerMessage("avatar_switched");
  note["file"] = c.filename;
  note["name"] = c.name;
  SendToDashboards(note);
}

// ---- session events ------------------------------------------------------

void GatewayCore::OnDialogState(const v1::DialogState& state) {
  if (!state.conversation_id().empty()) conversation_id_ = state.conversation_id();
}

void GatewayCore::OnSessionEvent(const v1::SessionEvent& ev, std::string_view header_turn_id, int64_t now_ns) {
  std::string tid(header_turn_id);
  auto turn_for_event = [&]() -> Turn* {
    if (tid.empty()) tid = current_turn_;
    if (tid.empty()) return nullptr;
    if (Turn* t = FindTurn(tid)) {
      t->last_event_ns = now_ns;
      return t;
    }
    if (std::find(retired_.begin(), retired_.end(), tid) != retired_.end()) return nullptr;
    // A turn already running when we joined, or whose start we missed:
    // show it to everyone from here on.
    return StartTurn(tid, conversation_id_, true, "", now_ns);
  };
  switch (ev.event_case()) {
    case v1::SessionEvent::kStatus: {
      const auto& s = ev.status();
      if (!s.conversation_id().empty()) conversation_id_ = s.conversation_id();
      Json d = ServerMessage("session_status");
      d["connected"] = s.connected();
      d["conversation_id"] = s.conversation_id();
      d["service"] = s.service();
      d["reconnects"] = s.reconnects();
      session_status_ = d;
      SendToDashboards(d);
      return;
    }
    case v1::SessionEvent::kTurnStarted: {
      const auto& ts = ev.turn_started();
      if (!ts.turn_id().empty()) tid = ts.turn_id();
      if (tid.empty() || FindTurn(tid) || std::find(retired_.begin(), retired_.end(), tid) != retired_.end()) return;
      if (!ts.conversation_id().empty()) conversation_id_ = ts.conversation_id();
      std::string rid = ts.request_id();
      auto p = rid.empty() ? pending_.end() : pending_.find(rid);
      if (p != pending_.end() && p->second.cancelled) {
        pending_.erase(p);
        v1::DialogRequest cmd;
        cmd.mutable_interrupt()->set_reason(v1::Interrupt::USER_REQUEST);
        cmd.mutable_interrupt()->set_turn_id(tid);
        PublishCommand(cmd);
        Retire(tid);
        return;
      }
      StartTurn(tid, conversation_id_, p == pending_.end(), p == pending_.end() ? "" : rid, now_ns);
      return;
    }
    case v1::SessionEvent::kUserTranscript: {
      Json m = ServerMessage("user_transcript");
      m["text"] = ev.user_transcript().text();
      m["final"] = ev.user_transcript().final();
      m["turn_id"] = tid;
      SendToAuthorized(m);
      if (ev.user_transcript().final()) {
        // The question of the voice turn it belongs to (running, or about to start).
        if (Turn* t = tid.empty() ? nullptr : FindTurn(tid); t && t->voice) t->question = ev.user_transcript().text();
        last_transcript_ = TurnHistory::Cap(ev.user_transcript().text(), history_.options().max_text_bytes);
        last_transcript_ns_ = now_ns;
      }
      return;
    }
    case v1::SessionEvent::kAgentText: {
      Turn* turn = turn_for_event();
      if (!turn || turn->text_chat) return;
      OnAgentText(*turn, ev.agent_text(), now_ns);
      return;
    }
    case v1::SessionEvent::kToolCall: {
      // A text chat's calls are also here (for vb-tools); its client hears them from chat.event.
      Turn* turn = turn_for_event();
      if (!turn || turn->text_chat) return;
      SendToolCall(*turn, ev.tool_call());
      return;
    }
    case v1::SessionEvent::kToolResult: {
      Turn* turn = turn_for_event();
      if (!turn || turn->text_chat) return;
      SendToolResult(*turn, ev.tool_result());
      return;
    }
    case v1::SessionEvent::kTurnEnded: {
      const auto& te = ev.turn_ended();
      if (te.outcome() == v1::TurnEnded::REQUIRES_ACTION) return;  // continues after tool outputs
      if (tid.empty()) tid = current_turn_;
      if (Turn* t = FindTurn(tid); t && t->text_chat) return;
      EndTurn(tid, OutcomeName(te.outcome()), te.error());
      return;
    }
    case v1::SessionEvent::kError: {
      const auto& e = ev.error();
      Json d = ServerMessage("session_error");
      d["code"] = e.code();
      d["message"] = e.message();
      d["fatal"] = e.fatal();
      SendToDashboards(d);
      if (!e.fatal() && !tid.empty()) {
        // About one turn (e.g. vb-control: its spoken reply was cut because
        // the playback died): the people in that conversation see it.
        Json err = ErrorMessage(e.code() > 0 ? e.code() : 500, e.message());
        err["turn_id"] = tid;
        if (Turn* t = FindTurn(tid)) SendToAudience(*t, err);
        else SendToAuthorized(err);
      }
      if (e.fatal()) {
        for (const auto& [rid, p] : pending_)
          SendTo(p.conn, ErrorMessage(500, "session error: " + e.message(), p.reply_to));
        pending_.clear();
      }
      return;
    }
    case v1::SessionEvent::kUserSpeech: {
      if (!ev.user_speech().started()) NoteSpeechEnd(now_ns);
      Json d = ServerMessage("user_speech");
      d["started"] = ev.user_speech().started();
      SendToDashboards(d);
      return;
    }
    case v1::SessionEvent::kAudioCaption:
    case v1::SessionEvent::kAgentAudioEnd:
    case v1::SessionEvent::EVENT_NOT_SET: return;
  }
}

void GatewayCore::OnAgentText(Turn& turn, const v1::AgentText& a, int64_t now_ns) {
  std::string& so_far = turn.message_text[a.message_id()];
  if (!a.final()) {
    so_far += a.text();
    EmitText(turn, a.text(), now_ns);
  } else if (a.text().size() > so_far.size() && a.text().compare(0, so_far.size(), so_far) == 0) {
    // The whole text: stream only what the deltas did not carry.
    std::string rest = a.text().substr(so_far.size());
    so_far = a.text();
    EmitText(turn, rest, now_ns);
  }
}

void GatewayCore::SendToolCall(Turn& turn, const v1::ToolCall& call) {
  if (turn.tools.size() < history_.options().max_tools)
    turn.tools.push_back(Json{{"name", call.name()},
                              {"args", TurnHistory::Cap(call.arguments_json(), history_.options().max_text_bytes)},
                              {"call_id", call.call_id()}});
  Json m = ServerMessage("tool_call");
  m["tool_name"] = call.name();
  m["args"] = call.arguments_json();
  m["call_id"] = call.call_id();
  m["turn_id"] = turn.turn_id;
  Frame f = Serialize(m);
  for (ConnId id : turn.audience) {
    auto it = conns_.find(id);
    if (it != conns_.end() && it->second.authorized && FirstCallTo(id, call.call_id())) transport_.Send(id, f);
  }
}

bool GatewayCore::FirstCallTo(ConnId conn, const std::string& call_id) {
  for (const auto& [c, id] : calls_sent_)
    if (c == conn && id == call_id) return false;
  calls_sent_.emplace_back(conn, call_id);
  while (calls_sent_.size() > 512) calls_sent_.pop_front();
  return true;
}

void GatewayCore::OfferTools(const Conn& conn) {
  v1::ToolOffer o;
  o.set_provider(options_.tool_provider + ":" + conn.connection_id);
  for (const auto& t : conn.tools) *o.add_tools() = t;
  o.set_ttl_ms(5000);
  if (!commands_.PublishToolOffer(o)) ++counters_.commands_failed;
}

void GatewayCore::OnToolInvocation(const v1::ToolInvocation& inv, int64_t now_ns) {
  const std::string prefix = options_.tool_provider + ":";
  if (inv.provider().rfind(prefix, 0) != 0) return;  // another provider's (or another gateway's) call
  const std::string cid = inv.provider().substr(prefix.size());
  for (auto& [id, c] : conns_) {
    if (c.connection_id != cid) continue;
    ++counters_.tool_invocations;
    if (invocations_.size() >= 256) invocations_.erase(invocations_.begin());
    int64_t timeout = int64_t(inv.timeout_ms() ? inv.timeout_ms() : 8000) * 1'000'000;
    invocations_[inv.call_id()] = {id, inv.provider(), now_ns + timeout + 1'000'000'000};
    if (!FirstCallTo(id, inv.call_id())) return;  // it already has this call as its turn's tool_call
    Json m = ServerMessage("tool_call");
    m["tool_name"] = inv.name();
    m["args"] = inv.arguments_json();
    m["call_id"] = inv.call_id();
    m["turn_id"] = inv.turn_id();
    SendTo(id, m);
    return;
  }
  // The client left: the registry hears so at once rather than at its timeout.
  v1::ToolAnswer a;
  a.set_call_id(inv.call_id());
  a.set_provider(inv.provider());
  a.set_error("the gateway client serving " + inv.name() + " has disconnected");
  commands_.PublishToolAnswer(a);
}

void GatewayCore::SendToolResult(Turn& turn, const v1::ToolResult& result) {
  for (Json& t : turn.tools)
    if (t["call_id"] == result.call_id())
      t["result"] = TurnHistory::Cap(result.output(), history_.options().max_text_bytes);
  Json m = ServerMessage("tool_result");
  m["result"] = result.output();
  m["call_id"] = result.call_id();
  m["turn_id"] = turn.turn_id;
  SendToAudience(turn, m);
}

GatewayCore::Turn* GatewayCore::FindTurn(std::string_view turn_id) {
  auto it = turns_.find(turn_id);
  return it == turns_.end() ? nullptr : &it->second;
}

GatewayCore::Turn* GatewayCore::StartTurn(const std::string& turn_id, const std::string& conversation_id, bool voice,
                                          const std::string& request_id, int64_t now_ns, bool text_chat) {
  if (turns_.size() >= options_.max_turns) EndTurn(turns_.begin()->first, "evicted", "too many running turns");
  Turn& t = turns_.emplace(turn_id, Turn{}).first->second;
  t.turn_id = turn_id;
  t.session_id = conversation_id;
  t.voice = voice;
  t.last_event_ns = now_ns;
  t.segmenter = TtsSegmenter(options_.segmenter);
  std::string reply_to;
  ConnId asker = 0;
  if (!voice) {
    auto p = pending_.find(request_id);
    asker = p->second.conn;
    reply_to = p->second.reply_to;
    t.origin_ns = p->second.sent_ns;
    t.question = p->second.question;
    t.asker = p->second.asker;
    latency_["text_turn_start_ms"] = double(now_ns - p->second.sent_ns) / 1e6;
    pending_.erase(p);
  } else if (speech_end_ns_ > 0 && now_ns - speech_end_ns_ < 30'000'000'000) {
    t.origin_ns = speech_end_ns_;
    speech_end_ns_ = 0;
  }
  t.started_ms = WallMs();
  if (t.origin_ns > 0 && t.origin_ns <= now_ns) t.asked_ms = t.started_ms - (now_ns - t.origin_ns) / 1'000'000;
  if (voice) {
    t.asker = "voice";
    // Its transcript came just before the turn started.
    if (!last_transcript_.empty() && now_ns - last_transcript_ns_ < 30'000'000'000) t.question = last_transcript_;
    last_transcript_.clear();
  }
  for (const auto& [id, c] : conns_) {
    if (!c.authorized) continue;
    if (voice || options_.mirror_text_turns || c.dashboard || id == asker) t.audience.push_back(id);
  }
  if (!text_chat) current_turn_ = turn_id;  // events without a turn id are the voice dialog's
  ++counters_.turns;
  Json m = ServerMessage("stream_start");
  m["turn_id"] = turn_id;
  m["session_id"] = conversation_id;
  m["input"] = voice ? "voice" : "text";
  if (!reply_to.empty()) m["reply_to"] = reply_to;
  SendToAudience(t, m);
  return &t;
}

void GatewayCore::EmitText(Turn& turn, const std::string& chunk, int64_t now_ns) {
  if (chunk.empty()) return;
  turn.content += chunk;
  ++counters_.tokens;
  Json m = ServerMessage("stream_token");
  m["chunk"] = chunk;
  m["turn_id"] = turn.turn_id;
  SendToAudience(turn, m);
  if (!turn.first_token) {
    turn.first_token = true;
    turn.first_token_at_ms = WallMs();
    if (turn.origin_ns > 0) {
      turn.first_token_ms = double(now_ns - turn.origin_ns) / 1e6;
      latency_[turn.voice ? "voice_first_token_ms" : "text_first_token_ms"] = turn.first_token_ms;
      Json l = ServerMessage("latency");
      l["figures"] = latency_;
      SendToDashboards(l);
    }
  }
  for (auto& unit : turn.segmenter.Push(chunk)) {
    Json u = ServerMessage("tts_ready_chunk");
    u["chunk"] = unit;
    u["turn_id"] = turn.turn_id;
    SendToAudience(turn, u);
  }
}

void GatewayCore::EndTurn(std::string turn_id, std::string_view outcome, std::string_view error) {
  Turn* t = FindTurn(turn_id);
  if (!t) return;
  bool interrupted = outcome == "interrupted";
  if (!interrupted) {
    for (auto& unit : t->segmenter.Flush()) {
      Json u = ServerMessage("tts_ready_chunk");
      u["chunk"] = unit;
      u["turn_id"] = t->turn_id;
      SendToAudience(*t, u);
    }
  }
  Json m = ServerMessage("stream_end");
  m["turn_id"] = t->turn_id;
  m["session_id"] = t->session_id;
  m["content"] = t->content;
  m["outcome"] = outcome;
  if (interrupted) m["interrupted"] = true;
  if (!error.empty()) m["error"] = error;
  SendToAudience(*t, m);
  Remember(*t, outcome, error);
  Retire(turn_id);
}

void GatewayCore::Remember(const Turn& t, std::string_view outcome, std::string_view error) {
  Json r{{"turn_id", t.turn_id},
         {"session_id", t.session_id},
         {"input", t.voice ? "voice" : "text"},
         {"asker", t.asker},
         {"question", TurnHistory::Cap(t.question, history_.options().max_text_bytes)},
         {"answer", TurnHistory::Cap(t.content, history_.options().max_text_bytes)},
         {"outcome", outcome},
         {"started_ms", t.started_ms},
         {"ended_ms", WallMs()},
         {"tools", t.tools}};
  if (!error.empty()) r["error"] = error;
  if (t.first_token_ms >= 0) r["first_token_ms"] = t.first_token_ms;
  // The turn's waterfall (wall clock ms): asked (typed / speech end) → started → first token → ended.
  Json w{{"started", t.started_ms}, {"ended", r["ended_ms"]}};
  if (t.asked_ms > 0) w["asked"] = t.asked_ms;
  if (t.first_token_at_ms > 0) w["first_token"] = t.first_token_at_ms;
  r["stages"] = w;
  history_.Add(std::move(r));
  if (history_.size() == 0) return;       // history_turns: 0
  Json m = ServerMessage("turn_record");  // live dashboards append it too (timestamps, tools)
  m["turn"] = history_.last();
  SendToDashboards(m);
}

void GatewayCore::Retire(std::string turn_id) {
  turns_.erase(turn_id);
  if (current_turn_ == turn_id) current_turn_.clear();
  retired_.push_back(std::move(turn_id));
  while (retired_.size() > 256) retired_.pop_front();
}

// ---- time ----------------------------------------------------------------

void GatewayCore::Tick(int64_t now_ns) {
  if (now_ns >= next_offer_ns_) {
    // Offers live ttl_ms (5 s): renewed well within it.
    next_offer_ns_ = now_ns + 1'500'000'000;
    for (const auto& [id, c] : conns_)
      if (!c.tools.empty()) OfferTools(c);
  }
  for (auto it = invocations_.begin(); it != invocations_.end();)
    it = now_ns > it->second.deadline_ns ? invocations_.erase(it) : std::next(it);
  if (now_ns >= next_ping_ns_) {
    next_ping_ns_ = now_ns + options_.ping_interval_ns;
    // Only authorized clients are pinged: before that, a pong would be a
    // message other than authorize (401), and auth_timeout bounds the wait.
    Frame ping = Serialize(ServerMessage("ping"));
    for (const auto& [id, c] : conns_)
      if (c.authorized) transport_.Send(id, ping);
  }
  std::vector<ConnId> idle;
  for (const auto& [id, c] : conns_)
    if (now_ns - c.last_rx_ns > options_.idle_timeout_ns) idle.push_back(id);
  for (ConnId id : idle) {
    ++counters_.idle_closed;
    Drop(id, "no pong within the idle timeout");
  }
  std::vector<ConnId> unauthorized;
  for (const auto& [id, c] : conns_)
    if (!c.authorized && now_ns - c.opened_ns > options_.auth_timeout_ns) unauthorized.push_back(id);
  for (ConnId id : unauthorized) {
    ++counters_.auth_timeouts;
    Drop(id, "not authorized in time");
  }
  std::vector<std::string> silent;
  for (const auto& [tid, t] : turns_)
    if (now_ns - t.last_event_ns > options_.turn_idle_timeout_ns) silent.push_back(tid);
  for (const auto& tid : silent) {
    ++counters_.turns_timed_out;
    EndTurn(tid, "failed", "no event from the session in time");
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now_ns - it->second.sent_ns > options_.turn_start_timeout_ns) {
      ++counters_.start_timeouts;
      SendTo(it->second.conn,
             ErrorMessage(500, "the session did not answer the chat message in time", it->second.reply_to));
      if (it->second.text_chat) CancelChat(it->first);  // if it starts after all, it is not left running
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- output --------------------------------------------------------------

void GatewayCore::SendTo(ConnId conn, const Json& message) { SendTo(conn, Serialize(message)); }

void GatewayCore::SendTo(ConnId conn, const Frame& frame) {
  if (conns_.count(conn)) transport_.Send(conn, frame);
}

void GatewayCore::SendToAudience(const Turn& turn, const Json& message) {
  Frame f = Serialize(message);
  for (ConnId id : turn.audience) {
    auto it = conns_.find(id);
    if (it != conns_.end() && it->second.authorized) transport_.Send(id, f);
  }
}

void GatewayCore::SendToAuthorized(const Json& message) {
  Frame f = Serialize(message);
  for (const auto& [id, c] : conns_)
    if (c.authorized) transport_.Send(id, f);
}

void GatewayCore::SendToDashboards(const Json& message) {
  if (dashboards_ == 0) return;
  Frame f = Serialize(message);
  for (const auto& [id, c] : conns_)
    if (c.dashboard && c.authorized) transport_.Send(id, f);
}

}  // namespace vb::gateway
