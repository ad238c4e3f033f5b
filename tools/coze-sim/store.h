// Conversations, messages and chats for the server's life, shared by the REST
// API and every WebSocket session (a conversation made over REST can be
// continued over a voice session and vice versa). Bounded: the oldest
// conversation is evicted past kMaxConversations, and a conversation keeps at
// most kMaxMessages. Used from the event loop thread only; not thread-safe.
//
// Optionally kept in a state file (`--state-file`), as the real service keeps
// its conversations: a simulator restarted with the same file still knows
// every conversation id and its history, so a client's conversation id does
// not change because the server restarted. A new conversation is written at
// once (a client may hold its id the next moment); other changes at most
// every kSaveIntervalMs. Writes are atomic (temporary file + rename).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vb::cozesim {

using Json = nlohmann::json;

struct Message {
  std::string id, conversation_id, bot_id, chat_id, section_id;
  std::string role = "user";  // user | assistant
  std::string type =
      "question";  // question | answer | function_call | tool_output | tool_response | verbose | follow_up
  std::string content;
  std::string content_type = "text";
  int64_t created_at = 0, updated_at = 0;
  Json meta_data = Json::object();
  Json ToJson() const;
};

struct Chat {
  std::string id, conversation_id, bot_id, section_id;
  int64_t created_at = 0, completed_at = 0, failed_at = 0;
  std::string status = "created";
  Json last_error;       // {code,msg} when failed
  Json required_action;  // when requires_action
  int64_t input_tokens = 0, output_tokens = 0;
  bool auto_save = true;
  Json ToJson() const;
  bool Running() const { return status == "created" || status == "in_progress" || status == "requires_action"; }
};

struct Conversation {
  std::string id, bot_id, name, last_section_id;
  int64_t created_at = 0;
  Json meta_data = Json::object();
  std::deque<Message> messages;  // oldest first
  std::map<std::string, Chat> chats;
  Json ToJson() const;
};

class Store {
 public:
  static constexpr size_t kMaxConversations = 10000;
  static constexpr size_t kMaxMessages = 2000;
  static constexpr size_t kMaxChats = 2000;

  Conversation& CreateConversation(const std::string& bot_id, const Json& meta_data = Json::object());
  Conversation* FindConversation(const std::string& id);
  // Stores a copy with id, section and timestamps filled in; returns it.
  Message& AddMessage(Conversation& conv, Message m);
  Chat& CreateChat(Conversation& conv, const std::string& bot_id);
  Chat* FindChat(const std::string& conversation_id, const std::string& chat_id);
  // Messages of one chat (question excluded unless it carries the chat id).
  std::vector<const Message*> ChatMessages(const Conversation& conv, const std::string& chat_id) const;
  // A chat still running in the conversation, if any (Coze allows one).
  Chat* RunningChat(Conversation& conv);
  // Starts a new section; returns its id.
  std::string Clear(Conversation& conv);
  // User texts of the current section, oldest first (for recall).
  std::vector<std::string> UserTexts(const Conversation& conv) const;
  size_t size() const { return conversations_.size(); }

  static constexpr int64_t kSaveIntervalMs = 200;
  // Reads `path` if it exists (chats that were running when the server died
  // are marked failed) and keeps it up to date from then on. False with
  // *error if the file exists but cannot be read.
  bool Open(const std::string& path, std::string* error);
  // Writes the file if something changed and the last write is older than
  // kSaveIntervalMs (or `force`). No-op without a state file. Call after
  // each turn of the event loop and at shutdown.
  void Flush(bool force = false);
  uint64_t save_errors() const { return save_errors_; }
  bool dirty() const { return dirty_; }

 private:
  Json ToStateJson() const;
  void FromStateJson(const Json& j);
  void Touch() { dirty_ = true; }

  std::map<std::string, Conversation> conversations_;
  std::deque<std::string> order_;
  std::string path_;  // "" = not persisted
  bool dirty_ = false;
  int64_t last_save_ms_ = 0;
  uint64_t save_errors_ = 0;
};

}  // namespace vb::cozesim
