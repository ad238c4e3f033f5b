// FakeSessionActor: a stand-in for vb-session (and the bit of vb-control the
// gateway tests need), so the gateway's protocol is tested against bus
// messages alone. It answers what the gateway asks on dialog.request:
//   TextInput  → session.event TurnStarted(request_id echoed), AgentText
//                deltas paced by a timer, TurnEnded. Special texts:
//                "/stats"  reply = what it has received (interrupts, tool
//                          outputs, session config), for black-box checks
//                "/tool"   a ToolCall, REQUIRES_ACTION, then on ToolOutput a
//                          ToolResult and the rest of the reply
//                "/long N" a reply of N numbered words
//                "/silent" no turn at all;  "/fail" a FAILED turn
//                "/wake"   no turn: a voice.wake event instead
//   PushToTalk → down: dialog.state LISTENING, voice.vad start, a tone on
//                audio.clean; up: a voice turn nobody asked for (user
//                transcript, TurnStarted VOICE, deltas, TurnEnded) with
//                dialog.state THINKING → SPEAKING → IDLE. With
//                interim_transcripts the transcript grows first, as a
//                streaming recogniser's does: interim (final: false)
//                user_transcripts of one more word each, one every
//                interim_interval_ms while the key is held and the rest
//                after release, always all of them before the final one
//   Interrupt  → stops the running turn (TurnEnded CANCELLED), unless
//                ignore_interrupt (to show the gateway drops late tokens)
//   SessionConfig, ToolOutput → recorded for "/stats"
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "bus/actor.h"
#include "bus/dialog_request.h"

namespace vb::testing {

class FakeSessionActor : public bus::Actor {
 public:
  void DeclareConfig(config::Section& s) override {
    s.Key("token_interval_ms", &interval_ms_, 5, {1, 10000}, "time between published events");
    s.Key("conversation_id", &conversation_, std::string("conv-fake-1"), "conversation id");
    s.Key("reply", &reply_, std::string("Sure. Pi is about 3.14, e.g. in geometry. 你好，世界。再见！"),
          "text appended to every echo reply");
    s.Key("voice_transcript", &transcript_, std::string("what is the weather"), "what the user 'said'");
    s.Key("voice_reply", &voice_reply_, std::string("It is sunny today. 今天天气很好。"), "reply to a voice turn");
    s.Key("ignore_interrupt", &ignore_interrupt_, false, "keep streaming after an Interrupt");
    s.Key("interim_transcripts", &interims_, false,
          "a voice turn's transcript comes first as interim user_transcripts of 1, 2, … words (all but the last)");
    s.Key("interim_interval_ms", &interim_interval_ms_, 150, {10, 10000},
          "time between interim transcripts while the key is held");
  }

  Status Configure(bus::Context& ctx) override {
    ctx_ = &ctx;
    events_ = ctx.bus().Advertise(bus::topics::kSessionEvent);
    state_ = ctx.bus().Advertise(bus::topics::kDialogState);
    vad_ = ctx.bus().Advertise(bus::topics::kVoiceVad);
    wake_ = ctx.bus().Advertise(bus::topics::kVoiceWake);
    clean_ = ctx.bus().Advertise(bus::topics::kAudioClean);
    ctx.bus().Subscribe<v1::DialogRequest>(bus::topics::kDialogRequest,
                                           [this](const auto& m) { OnCommand(bus::AsCommand(m.msg)); });
    ctx.loop().AddTimer(std::chrono::milliseconds(interval_ms_), [this] { Step(); });
    ctx.loop().AddTimer(std::chrono::milliseconds(20), [this] { Tone(); });
    ctx.loop().AddTimer(std::chrono::milliseconds(interim_interval_ms_), [this] { InterimWhileHeld(); });
    return Status::Ok();
  }

  Status Activate(bus::Context& ctx) override {
    PublishStatus();
    PublishState(v1::STATE_IDLE, "started");
    return Status::Ok();
  }

  void OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) override {
    // Republished for late joiners, as a state.
    PublishStatus();
    PublishState(state_kind_, "heartbeat");
    ctx.Set("turns", turn_counter_);
  }

 private:
  struct Out {
    v1::SessionEvent event;
    std::string turn;
    v1::DialogStateKind state = v1::STATE_UNSPECIFIED;  // publish this state first
    bool pause = false;                                 // wait for a ToolOutput
  };
  struct Job {
    std::string turn;
    std::deque<Out> steps;
    std::deque<Out> after_tool;
  };

  void PublishStatus() {
    v1::SessionEvent e;
    e.mutable_status()->set_connected(true);
    e.mutable_status()->set_conversation_id(conversation_);
    e.mutable_status()->set_service("fake");
    events_.Publish(e);
  }

  void PublishState(v1::DialogStateKind kind, const std::string& reason) {
    state_kind_ = kind;
    v1::DialogState s;
    s.set_state(kind);
    s.set_mode(v1::MODE_PUSH_TO_TALK);
    s.set_conversation_id(conversation_);
    s.set_turn_id(running_.turn);
    s.set_reason(reason);
    s.set_session_connected(true);
    s.set_since_mono_ns(bus::MonoNs());
    state_.Publish(s);
  }

  static std::vector<std::string> Pieces(const std::string& text) {
    // Deltas of up to 3 code points, as a streaming model would send.
    std::vector<std::string> out;
    std::string cur;
    int n = 0;
    for (size_t i = 0; i < text.size();) {
      auto c = static_cast<unsigned char>(text[i]);
      size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      cur += text.substr(i, len);
      i += len;
      if (++n == 3) {
        out.push_back(cur);
        cur.clear();
        n = 0;
      }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
  }

  std::vector<std::string> TranscriptWords() const {
    std::vector<std::string> words;
    size_t i = 0;
    while (i < transcript_.size()) {
      size_t end = std::min(transcript_.find(' ', i), transcript_.size());
      if (end > i) words.push_back(transcript_.substr(i, end - i));
      i = end + 1;
    }
    return words;
  }
  size_t WordCount() const { return TranscriptWords().size(); }
  // The first n words of the voice transcript.
  std::string Words(size_t n) const {
    std::string out;
    for (const auto& w : TranscriptWords()) {
      if (n-- == 0) break;
      out += (out.empty() ? "" : " ") + w;
    }
    return out;
  }
  v1::SessionEvent Interim(size_t words) const {
    v1::SessionEvent e;
    e.mutable_user_transcript()->set_text(Words(words));
    e.mutable_user_transcript()->set_final(false);
    return e;
  }
  // While the key is held the user is still speaking: no turn yet, so no turn id.
  void InterimWhileHeld() {
    if (!talking_ || !interims_ || interims_sent_ + 1 >= WordCount()) return;
    events_.Publish(Interim(++interims_sent_));
  }

  Job NewTurn(const std::string& request_id, bool voice) {
    Job j;
    j.turn = "chat-" + std::to_string(++turn_counter_);
    Out o;
    o.turn = j.turn;
    o.state = v1::STATE_THINKING;
    auto* ts = o.event.mutable_turn_started();
    ts->set_turn_id(j.turn);
    ts->set_conversation_id(conversation_);
    ts->set_request_id(request_id);
    ts->set_input(voice ? v1::TurnStarted::VOICE : v1::TurnStarted::TEXT);
    j.steps.push_back(o);
    return j;
  }
  static void AddText(Job& j, std::deque<Out>& to, const std::string& text) {
    bool first = true;
    for (auto& p : Pieces(text)) {
      Out o;
      o.turn = j.turn;
      if (first) o.state = v1::STATE_SPEAKING;
      first = false;
      o.event.mutable_agent_text()->set_text(p);
      o.event.mutable_agent_text()->set_message_id(j.turn + "-m");
      to.push_back(o);
    }
    Out fin;
    fin.turn = j.turn;
    fin.event.mutable_agent_text()->set_text(text);
    fin.event.mutable_agent_text()->set_final(true);
    fin.event.mutable_agent_text()->set_message_id(j.turn + "-m");
    to.push_back(fin);
  }
  static void AddEnd(Job& j, std::deque<Out>& to, v1::TurnEnded::Outcome outcome, const std::string& error = "") {
    Out o;
    o.turn = j.turn;
    o.event.mutable_turn_ended()->set_outcome(outcome);
    o.event.mutable_turn_ended()->set_error(error);
    to.push_back(o);
  }

  void OnCommand(const v1::DialogCommand& c) {
    if (c.has_text_input()) {
      const std::string& text = c.text_input().text();
      if (text == "/silent") return;
      if (text == "/wake") {
        v1::WakeEvent w;
        w.set_phrase("hey voicebus");
        w.set_score(0.8);
        w.set_detector("fake");
        wake_.Publish(w);
        return;
      }
      Job j = NewTurn(c.text_input().request_id(), false);
      if (text == "/stats") {
        AddText(j, j.steps,
                "interrupts=" + std::to_string(interrupts_) + " last_interrupt_turn=" + last_interrupt_turn_ +
                    " reason=" + v1::Interrupt::Reason_Name(last_reason_) + " tool_outputs=" + tool_outputs_ +
                    " config=" + session_config_ + " ptt=" + ptt_);
      } else if (text == "/tool") {
        Out call;
        call.turn = j.turn;
        call.event.mutable_tool_call()->set_call_id("call-1");
        call.event.mutable_tool_call()->set_name("get_weather");
        call.event.mutable_tool_call()->set_arguments_json("{\"city\":\"Paris\"}");
        j.steps.push_back(call);
        AddEnd(j, j.steps, v1::TurnEnded::REQUIRES_ACTION);
        j.steps.back().pause = true;
        AddText(j, j.after_tool, "The weather in Paris is sunny.");
        AddEnd(j, j.after_tool, v1::TurnEnded::COMPLETED);
      } else if (text.rfind("/long ", 0) == 0) {
        int n = std::atoi(text.c_str() + 6);
        std::deque<Out> words;
        for (int i = 1; i <= n; ++i) {
          Out o;
          o.turn = j.turn;
          o.event.mutable_agent_text()->set_text("w" + std::to_string(i) + (i % 10 == 0 ? ". " : " "));
          o.event.mutable_agent_text()->set_message_id(j.turn + "-m");
          j.steps.push_back(o);
        }
        AddEnd(j, j.steps, v1::TurnEnded::COMPLETED);
      } else if (text == "/fail") {
        AddEnd(j, j.steps, v1::TurnEnded::FAILED, "agent failed");
      } else {
        AddText(j, j.steps, "You said: " + text + ". " + reply_);
      }
      if (text != "/tool" && text != "/fail" && text.rfind("/long ", 0) != 0)
        AddEnd(j, j.steps, v1::TurnEnded::COMPLETED);
      Enqueue(std::move(j));
    } else if (c.has_push_to_talk()) {
      ptt_ += c.push_to_talk().down() ? "D" : "U";
      v1::VadEvent v;
      v.set_kind(c.push_to_talk().down() ? v1::VadEvent::SPEECH_START : v1::VadEvent::SPEECH_END);
      v.set_probability(0.9f);
      v.set_detector("fake");
      vad_.Publish(v);
      if (c.push_to_talk().down()) {
        talking_ = true;
        interims_sent_ = 0;
        PublishState(v1::STATE_LISTENING, "push-to-talk down");
        return;
      }
      talking_ = false;
      Job j = NewTurn("", true);
      Out tr;
      tr.turn = j.turn;
      tr.event.mutable_user_transcript()->set_text(transcript_);
      tr.event.mutable_user_transcript()->set_final(true);
      j.steps.push_front(tr);
      // The interims not sent while the key was held, in order, before the final.
      for (size_t n = WordCount(); interims_ && n > interims_sent_ + 1; --n) {
        Out in;
        in.turn = j.turn;
        in.event = Interim(n - 1);
        j.steps.push_front(in);
      }
      interims_sent_ = 0;
      AddText(j, j.steps, voice_reply_);
      AddEnd(j, j.steps, v1::TurnEnded::COMPLETED);
      Enqueue(std::move(j));
    } else if (c.has_interrupt()) {
      ++interrupts_;
      last_interrupt_turn_ = c.interrupt().turn_id().empty() ? "*" : c.interrupt().turn_id();
      last_reason_ = c.interrupt().reason();
      if (ignore_interrupt_ || running_.turn.empty()) return;
      if (!c.interrupt().turn_id().empty() && c.interrupt().turn_id() != running_.turn) return;
      Job cancelled = running_;
      running_ = Job{};
      paused_ = false;
      cancelled.steps.clear();
      cancelled.after_tool.clear();
      AddEnd(cancelled, cancelled.steps, v1::TurnEnded::CANCELLED);
      Publish(cancelled.steps.front());
      PublishState(v1::STATE_IDLE, "interrupted");
    } else if (c.has_tool_output()) {
      tool_outputs_ += c.tool_output().call_id() + ":" + c.tool_output().output() + ";";
      // The output may come before the REQUIRES_ACTION step is even out.
      if (running_.turn.empty() || running_.after_tool.empty()) return;
      for (auto& o : running_.steps) o.pause = false;
      Out r;
      r.turn = running_.turn;
      r.event.mutable_tool_result()->set_call_id(c.tool_output().call_id());
      r.event.mutable_tool_result()->set_output(c.tool_output().output());
      running_.steps.push_back(r);
      for (auto& o : running_.after_tool) running_.steps.push_back(o);
      running_.after_tool.clear();
      paused_ = false;
    } else if (c.has_session_config()) {
      const auto& s = c.session_config();
      session_config_ =
          s.bot_id() + "|" + s.voice_id() + "|" + std::to_string(s.speech_rate()) + "|" + s.persona_prompt();
    }
  }

  void Enqueue(Job j) {
    if (queue_.size() < 64) queue_.push_back(std::move(j));
  }

  void Publish(const Out& o) {
    if (o.state != v1::STATE_UNSPECIFIED) PublishState(o.state, "turn");
    events_.Publish(o.event, {.turn_id = o.turn});
  }

  void Step() {
    if (paused_) return;
    if (running_.turn.empty() || running_.steps.empty()) {
      if (!running_.turn.empty()) {
        running_ = Job{};
        PublishState(v1::STATE_IDLE, "turn ended");
      }
      if (queue_.empty()) return;
      running_ = std::move(queue_.front());
      queue_.pop_front();
    }
    Out o = running_.steps.front();
    running_.steps.pop_front();
    Publish(o);
    if (o.pause) paused_ = true;
  }

  void Tone() {
    if (!talking_) return;
    v1::AudioFrame f;
    f.set_sample_rate(16000);
    f.set_channels(1);
    std::string pcm(640, '\0');
    for (int i = 0; i < 320; ++i) {
      auto s = int16_t(8000 * std::sin(2 * M_PI * 440 * double(sample_ + i) / 16000));
      std::memcpy(&pcm[i * 2], &s, 2);
    }
    sample_ += 320;
    f.set_pcm(pcm);
    clean_.Publish(f, {.origin_ns = bus::MonoNs()});
  }

  int interval_ms_ = 5;
  std::string conversation_, reply_, transcript_, voice_reply_;
  bool ignore_interrupt_ = false, interims_ = false;
  int interim_interval_ms_ = 150;
  size_t interims_sent_ = 0;  // of the current push-to-talk
  bus::Context* ctx_ = nullptr;
  bus::Publisher<v1::SessionEvent> events_;
  bus::Publisher<v1::DialogState> state_;
  bus::Publisher<v1::VadEvent> vad_;
  bus::Publisher<v1::WakeEvent> wake_;
  bus::Publisher<v1::AudioFrame> clean_;
  std::deque<Job> queue_;
  Job running_;
  bool paused_ = false, talking_ = false;
  int64_t turn_counter_ = 0;
  uint64_t sample_ = 0;
  v1::DialogStateKind state_kind_ = v1::STATE_IDLE;
  int interrupts_ = 0;
  std::string last_interrupt_turn_ = "-", tool_outputs_, session_config_, ptt_;
  v1::Interrupt::Reason last_reason_ = v1::Interrupt::REASON_UNSPECIFIED;
};

}  // namespace vb::testing
