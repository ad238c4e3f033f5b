// Implementation of store.h.
#include "tools/coze-sim/store.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tools/coze-sim/ids.h"

namespace vb::cozesim {

Json Message::ToJson() const {
  Json j = {{"id", id},
            {"conversation_id", conversation_id},
            {"bot_id", bot_id},
            {"chat_id", chat_id},
            {"section_id", section_id},
            {"role", role},
            {"type", type},
            {"content", content},
            {"content_type", content_type},
            {"meta_data", meta_data},
            {"created_at", created_at},
            // A string, as seed 003's message/create shows it (the SDK's
            // types say number; its code does not read it).
            {"updated_at", std::to_string(updated_at ? updated_at : created_at)},
            {"reasoning_content", ""}};
  return j;
}

Json Chat::ToJson() const {
  Json j = {{"id", id},         {"conversation_id", conversation_id},
            {"bot_id", bot_id}, {"created_at", created_at},
            {"status", status}, {"section_id", section_id}};
  if (completed_at) j["completed_at"] = completed_at;
  if (failed_at) j["failed_at"] = failed_at;
  // As seed 003 shows them: last_error and usage on every chat object
  // ({code: 0, msg: ""} and zero counts until the chat fails or completes).
  j["last_error"] = last_error.is_object() ? last_error : Json{{"code", 0}, {"msg", ""}};
  if (!required_action.is_null()) j["required_action"] = required_action;
  j["usage"] = {
      {"token_count", input_tokens + output_tokens}, {"output_count", output_tokens}, {"input_count", input_tokens}};
  return j;
}

Json Conversation::ToJson() const {
  return {{"id", id}, {"created_at", created_at}, {"meta_data", meta_data}, {"last_section_id", last_section_id}};
}

Conversation& Store::CreateConversation(const std::string& bot_id, const Json& meta_data) {
  while (conversations_.size() >= kMaxConversations && !order_.empty()) {
    conversations_.erase(order_.front());
    order_.pop_front();
  }
  Conversation c;
  Touch();
  c.id = NewNumericId();
  c.bot_id = bot_id;
  c.last_section_id = c.id;  // section_id = conversation_id until the first clear
  c.created_at = NowEpochSeconds();
  c.meta_data = meta_data.is_object() ? meta_data : Json::object();
  order_.push_back(c.id);
  auto [it, _] = conversations_.emplace(c.id, std::move(c));
  Flush(true);  // the id is about to be handed out: it must survive a kill -9
  return it->second;
}

Conversation* Store::FindConversation(const std::string& id) {
  auto it = conversations_.find(id);
  if (it == conversations_.end()) return nullptr;
  Touch();  // the caller may change what it gets
  return &it->second;
}

Message& Store::AddMessage(Conversation& conv, Message m) {
  Touch();
  if (m.id.empty()) m.id = NewNumericId();
  m.conversation_id = conv.id;
  m.section_id = conv.last_section_id;
  if (m.bot_id.empty()) m.bot_id = conv.bot_id;
  if (!m.created_at) m.created_at = NowEpochSeconds();
  m.updated_at = m.created_at;
  while (conv.messages.size() >= kMaxMessages) conv.messages.pop_front();
  conv.messages.push_back(std::move(m));
  return conv.messages.back();
}

Chat& Store::CreateChat(Conversation& conv, const std::string& bot_id) {
  Touch();
  if (conv.chats.size() >= kMaxChats) {
    for (auto it = conv.chats.begin(); it != conv.chats.end(); ++it)
      if (!it->second.Running()) {
        conv.chats.erase(it);
        break;
      }
  }
  Chat c;
  c.id = NewNumericId();
  c.conversation_id = conv.id;
  c.bot_id = bot_id.empty() ? conv.bot_id : bot_id;
  c.section_id = conv.last_section_id;
  c.created_at = NowEpochSeconds();
  auto [it, _] = conv.chats.emplace(c.id, std::move(c));
  return it->second;
}

Chat* Store::FindChat(const std::string& conversation_id, const std::string& chat_id) {
  Conversation* conv = FindConversation(conversation_id);
  if (!conv) return nullptr;
  auto it = conv->chats.find(chat_id);
  return it == conv->chats.end() ? nullptr : &it->second;
}

std::vector<const Message*> Store::ChatMessages(const Conversation& conv, const std::string& chat_id) const {
  std::vector<const Message*> out;
  for (const auto& m : conv.messages)
    if (m.chat_id == chat_id && m.type != "question") out.push_back(&m);
  return out;
}

Chat* Store::RunningChat(Conversation& conv) {
  Touch();
  for (auto& [id, c] : conv.chats)
    if (c.Running()) return &c;
  return nullptr;
}

std::string Store::Clear(Conversation& conv) {
  Touch();
  conv.last_section_id = NewNumericId();
  return conv.last_section_id;
}

std::vector<std::string> Store::UserTexts(const Conversation& conv) const {
  std::vector<std::string> out;
  for (const auto& m : conv.messages)
    if (m.section_id == conv.last_section_id && m.role == "user" && m.content_type == "text" && !m.content.empty())
      out.push_back(m.content);
  return out;
}

// ------------------------------------------------------------ state file

namespace {

int64_t MonoMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Every field, not the API's view of it (ToJson() leaves some out).
Json MessageState(const Message& m) {
  return {{"id", m.id},
          {"conversation_id", m.conversation_id},
          {"bot_id", m.bot_id},
          {"chat_id", m.chat_id},
          {"section_id", m.section_id},
          {"role", m.role},
          {"type", m.type},
          {"content", m.content},
          {"content_type", m.content_type},
          {"created_at", m.created_at},
          {"updated_at", m.updated_at},
          {"meta_data", m.meta_data}};
}

Json ChatState(const Chat& c) {
  return {{"id", c.id},
          {"conversation_id", c.conversation_id},
          {"bot_id", c.bot_id},
          {"section_id", c.section_id},
          {"created_at", c.created_at},
          {"completed_at", c.completed_at},
          {"failed_at", c.failed_at},
          {"status", c.status},
          {"last_error", c.last_error},
          {"required_action", c.required_action},
          {"input_tokens", c.input_tokens},
          {"output_tokens", c.output_tokens},
          {"auto_save", c.auto_save}};
}

template <class T>
T Get(const Json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace

Json Store::ToStateJson() const {
  Json convs = Json::array();
  for (const auto& id : order_) {
    auto it = conversations_.find(id);
    if (it == conversations_.end()) continue;
    const Conversation& c = it->second;
    Json msgs = Json::array(), chats = Json::array();
    for (const auto& m : c.messages) msgs.push_back(MessageState(m));
    for (const auto& [_, ch] : c.chats) chats.push_back(ChatState(ch));
    convs.push_back({{"id", c.id},
                     {"bot_id", c.bot_id},
                     {"name", c.name},
                     {"last_section_id", c.last_section_id},
                     {"created_at", c.created_at},
                     {"meta_data", c.meta_data},
                     {"messages", std::move(msgs)},
                     {"chats", std::move(chats)}});
  }
  return {{"version", 1}, {"conversations", std::move(convs)}};
}

void Store::FromStateJson(const Json& j) {
  conversations_.clear();
  order_.clear();
  const int64_t now = NowEpochSeconds();
  for (const auto& cj : j.value("conversations", Json::array())) {
    if (!cj.is_object()) continue;
    Conversation c;
    c.id = Get<std::string>(cj, "id", "");
    if (c.id.empty() || conversations_.count(c.id)) continue;
    c.bot_id = Get<std::string>(cj, "bot_id", "");
    c.name = Get<std::string>(cj, "name", "");
    c.last_section_id = Get<std::string>(cj, "last_section_id", c.id);
    c.created_at = Get<int64_t>(cj, "created_at", 0);
    c.meta_data = Get<Json>(cj, "meta_data", Json::object());
    for (const auto& mj : Get<Json>(cj, "messages", Json::array())) {
      if (!mj.is_object() || c.messages.size() >= kMaxMessages) continue;
      Message m;
      m.id = Get<std::string>(mj, "id", "");
      m.conversation_id = c.id;
      m.bot_id = Get<std::string>(mj, "bot_id", c.bot_id);
      m.chat_id = Get<std::string>(mj, "chat_id", "");
      m.section_id = Get<std::string>(mj, "section_id", c.last_section_id);
      m.role = Get<std::string>(mj, "role", "user");
      m.type = Get<std::string>(mj, "type", "question");
      m.content = Get<std::string>(mj, "content", "");
      m.content_type = Get<std::string>(mj, "content_type", "text");
      m.created_at = Get<int64_t>(mj, "created_at", 0);
      m.updated_at = Get<int64_t>(mj, "updated_at", 0);
      m.meta_data = Get<Json>(mj, "meta_data", Json::object());
      c.messages.push_back(std::move(m));
    }
    for (const auto& hj : Get<Json>(cj, "chats", Json::array())) {
      if (!hj.is_object() || c.chats.size() >= kMaxChats) continue;
      Chat h;
      h.id = Get<std::string>(hj, "id", "");
      if (h.id.empty()) continue;
      h.conversation_id = c.id;
      h.bot_id = Get<std::string>(hj, "bot_id", c.bot_id);
      h.section_id = Get<std::string>(hj, "section_id", c.last_section_id);
      h.created_at = Get<int64_t>(hj, "created_at", 0);
      h.completed_at = Get<int64_t>(hj, "completed_at", 0);
      h.failed_at = Get<int64_t>(hj, "failed_at", 0);
      h.status = Get<std::string>(hj, "status", "completed");
      h.last_error = Get<Json>(hj, "last_error", Json());
      h.required_action = Get<Json>(hj, "required_action", Json());
      h.input_tokens = Get<int64_t>(hj, "input_tokens", 0);
      h.output_tokens = Get<int64_t>(hj, "output_tokens", 0);
      h.auto_save = Get<bool>(hj, "auto_save", true);
      // Its worker died with the server: it will never finish, and a running
      // chat would refuse every new one (4016).
      if (h.Running()) {
        h.status = "failed";
        h.failed_at = now;
        h.last_error = {{"code", 5000}, {"msg", "the server restarted during the chat"}};
        h.required_action = Json();
      }
      c.chats.emplace(h.id, std::move(h));
    }
    order_.push_back(c.id);
    conversations_.emplace(c.id, std::move(c));
    if (conversations_.size() >= kMaxConversations) break;
  }
}

bool Store::Open(const std::string& path, std::string* error) {
  path_ = path;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return true;  // first start: written on the first change
    *error = path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  Json j = Json::parse(buf.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = path + ": not a JSON object (remove it to start afresh)";
    return false;
  }
  FromStateJson(j);
  dirty_ = true;  // the chats marked failed
  return true;
}

void Store::Flush(bool force) {
  if (path_.empty() || !dirty_) return;
  const int64_t now = MonoMs();
  if (!force && now - last_save_ms_ < kSaveIntervalMs) return;
  last_save_ms_ = now;
  dirty_ = false;
  const std::string text = ToStateJson().dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  if (fd >= 0) ::close(fd);
  // rename is atomic: a kill -9 leaves the old file or the new one. No
  // fsync: the simulator survives its own death, not a power cut.
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    ++save_errors_;
    dirty_ = true;
  }
}

}  // namespace vb::cozesim
