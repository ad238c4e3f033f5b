// Fuzzes vb-session's text chats over Coze REST v3 (actors/session/text_chats.h):
// the answers of /v1/conversation/create and /v3/chat/cancel, and the SSE
// streams of /v3/chat and /v3/chat/submit_tool_outputs — everything a Coze
// server (or whatever answers on its address) sends back — between the bus
// clients' own requests and tool outputs. One input is one run of the actor:
//   !start RID KEY TEXT     a bus client starts a chat (KEY "#ID" = conversation id)
//   !cancel RID             a bus client cancels it
//   !answer STATUS BODY     the oldest outstanding POST is answered
//   !end STATUS             the newest open stream ends (status, no error)
//   !lost                   the newest open stream breaks (an error)
//   !tool CHAT CALL OUTPUT  vb-tools answers a call
//   !tick MS                time goes on (tool and stall deadlines)
//   any other line          bytes of the newest open stream, with its '\n'
// Fields a bus client sends are made ASCII (protobuf refuses invalid UTF-8).
// Whatever comes in: nothing crashes, a request never gets more `ended`
// events than it had starts, and once every POST is answered and the
// deadlines have passed, no chat is left running (every chat ends).
#include <cstdlib>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "actors/session/text_chats.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using vb::session::TextChatPort;

struct Port : TextChatPort {
  struct Stream {
    uint64_t id;
    Chunk chunk;
    Done done;
  };
  uint64_t next = 1;
  std::vector<Stream> streams;  // open, newest last
  std::deque<Done> posts;       // outstanding, oldest first
  std::map<std::string, int> ended;

  uint64_t PostStream(const std::string&, std::string, Chunk chunk, Done done) override {
    streams.push_back({next, std::move(chunk), std::move(done)});
    return next++;
  }
  void Post(const std::string&, std::string, Done done) override { posts.push_back(std::move(done)); }
  void Abort(uint64_t id) override {
    for (size_t i = 0; i < streams.size(); ++i)
      if (streams[i].id == id) {
        streams.erase(streams.begin() + long(i));
        return;
      }
  }
  void PublishChatEvent(const vb::v1::TextChatEvent& e) override {
    std::string wire;
    e.SerializeToString(&wire);
    if (e.has_ended()) ++ended[e.request_id()];
  }
  void PublishToolCall(const vb::v1::ToolCall& call, const std::string&) override {
    std::string wire;
    call.SerializeToString(&wire);
  }
  void Problem(const std::string&) override {}

  // The newest stream, taken out of the list before its callback runs (the
  // callback may open or abort streams).
  bool TakeNewest(Stream* s) {
    if (streams.empty()) return false;
    *s = std::move(streams.back());
    streams.pop_back();
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Port port;
  int64_t now = 1'000'000'000;
  vb::session::TextChatOptions options;
  options.bot_id = "bot";
  options.max_chats = 4;
  options.max_keys = 4;
  vb::session::TextChats chats(options, &port, [&now] { return now; });
  std::map<std::string, int> starts;

  for (std::string_view line : vb::fuzz::Lines(vb::fuzz::AsView(data, size), 128)) {
    std::string_view rest = line;
    if (line.starts_with("!start ") || line.starts_with("!cancel ")) {
      const bool start = line[1] == 's';
      vb::fuzz::Word(&rest);
      vb::v1::TextChatRequest r;
      r.set_request_id(vb::fuzz::Word(&rest));
      if (start) {
        std::string key = vb::fuzz::Word(&rest);
        if (key.starts_with("#")) r.mutable_start()->set_conversation_id(key.substr(1));
        else r.mutable_start()->set_conversation_key(key);
        r.mutable_start()->set_text(vb::fuzz::Ascii(rest));
        ++starts[r.request_id()];
      } else {
        r.mutable_cancel();
      }
      chats.OnRequest(r, now);
    } else if (line.starts_with("!answer ")) {
      vb::fuzz::Word(&rest);
      int status = int(vb::fuzz::Number(vb::fuzz::Word(&rest)));
      if (port.posts.empty()) continue;
      auto done = std::move(port.posts.front());
      port.posts.pop_front();
      done(status, std::string(rest), "");
    } else if (line.starts_with("!end") || line == "!lost") {
      Port::Stream s;
      if (!port.TakeNewest(&s)) continue;
      vb::fuzz::Word(&rest);
      if (line == "!lost") s.done(0, "", "connection reset");
      else s.done(int(vb::fuzz::Number(rest)), "", "");
    } else if (line.starts_with("!tool ")) {
      vb::fuzz::Word(&rest);
      std::string chat(vb::fuzz::Word(&rest)), call(vb::fuzz::Word(&rest)), refusal;
      chats.OnToolOutput(chat, call, vb::fuzz::Ascii(rest), now, &refusal);
    } else if (line.starts_with("!tick ")) {
      now += vb::fuzz::Number(line.substr(6)) * 1'000'000;
      chats.Tick(now);
    } else if (!port.streams.empty()) {
      // A chunk keeps its stream open: call a copy, the list may change.
      auto chunk = port.streams.back().chunk;
      chunk(std::string(line) + "\n");
    }
  }

  // Every POST answered (with an error), every deadline passed: all chats end.
  for (int round = 0; round < 8 && chats.running() > 0; ++round) {
    while (!port.posts.empty()) {
      auto done = std::move(port.posts.front());
      port.posts.pop_front();
      done(500, "", "");
    }
    now += 3'600'000'000'000;
    chats.Tick(now);
  }
  if (chats.running() != 0) std::abort();
  for (const auto& [rid, n] : port.ended)
    if (n > starts[rid]) std::abort();
  return 0;
}
