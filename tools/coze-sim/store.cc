// Implementation of store.h.
#include "tools/coze-sim/store.h"

#include "tools/coze-sim/ids.h"

namespace vb::cozesim {

Json Message::ToJson() const {
  Json j = {{"id", id},           {"conversation_id", conversation_id},
            {"bot_id", bot_id},   {"chat_id", chat_id},
            {"section_id", section_id}, {"role", role},
            {"type", type},       {"content", content},
            {"content_type", content_type}, {"meta_data", meta_data}};
  if (created_at) j["created_at"] = created_at;
  if (updated_at) j["updated_at"] = updated_at;
  return j;
}

Json Chat::ToJson() const {
  Json j = {{"id", id},
            {"conversation_id", conversation_id},
            {"bot_id", bot_id},
            {"created_at", created_at},
            {"status", status},
            {"section_id", section_id}};
  if (completed_at) j["completed_at"] = completed_at;
  if (failed_at) j["failed_at"] = failed_at;
  if (!last_error.is_null()) j["last_error"] = last_error;
  if (!required_action.is_null()) j["required_action"] = required_action;
  if (status == "completed") {
    j["usage"] = {{"token_count", input_tokens + output_tokens},
                  {"output_count", output_tokens},
                  {"input_count", input_tokens}};
  }
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
  c.id = NewNumericId();
  c.bot_id = bot_id;
  c.last_section_id = c.id;  // section_id = conversation_id until the first clear
  c.created_at = NowEpochSeconds();
  c.meta_data = meta_data.is_object() ? meta_data : Json::object();
  order_.push_back(c.id);
  auto [it, _] = conversations_.emplace(c.id, std::move(c));
  return it->second;
}

Conversation* Store::FindConversation(const std::string& id) {
  auto it = conversations_.find(id);
  return it == conversations_.end() ? nullptr : &it->second;
}

Message& Store::AddMessage(Conversation& conv, Message m) {
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
  for (auto& [id, c] : conv.chats)
    if (c.Running()) return &c;
  return nullptr;
}

std::string Store::Clear(Conversation& conv) {
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

}  // namespace vb::cozesim
