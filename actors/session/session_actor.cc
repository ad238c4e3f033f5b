// SessionActor (see session_actor.h).
#include "actors/session/session_actor.h"

#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "bus/dialog_request.h"
#include "bus/topics.h"

namespace vb::session {
namespace {

const std::vector<std::string> kDefaultSubscriptions = {
    "chat.created",
    "chat.updated",
    "conversation.chat.created",
    "conversation.chat.in_progress",
    "conversation.chat.completed",
    "conversation.chat.failed",
    "conversation.chat.requires_action",
    "conversation.chat.canceled",
    "conversation.message.delta",
    "conversation.message.completed",
    "conversation.audio.sentence_start",
    "conversation.audio.delta",
    "conversation.audio.completed",
    "conversation.audio_transcript.update",
    "conversation.audio_transcript.completed",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.completed",
    "error",
};

v1::DialogMode ModeFromName(const std::string& m) {
  if (m == "wake_word") return v1::MODE_WAKE_WORD;
  if (m == "push_to_talk") return v1::MODE_PUSH_TO_TALK;
  return v1::MODE_CONTINUOUS;
}

std::string ModeName(v1::DialogMode m) {
  switch (m) {
    case v1::MODE_WAKE_WORD: return "wake_word";
    case v1::MODE_PUSH_TO_TALK: return "push_to_talk";
    case v1::MODE_CONTINUOUS: return "continuous";
    default: return "";
  }
}

int64_t WallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// A device id Coze accepts (decimal int64) that stays the same for this
// machine and device name: a hash of /etc/machine-id (else the host name)
// and the device, so the machine id itself is not disclosed.
std::string DefaultDeviceId(const std::string& device) {
  std::string seed;
  for (const char* path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    std::ifstream in(path);
    if (in && std::getline(in, seed) && !seed.empty()) break;
  }
  if (seed.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    seed = host;
  }
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char c : seed + "/" + device) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h &= 0x7fffffffffffffffull;
  return std::to_string(h ? h : 1);
}

// The resume point is written when it changes, and at least this often so
// its age says whether the process that wrote it died just now.
constexpr int64_t kResumeRefreshMs = 10'000;
constexpr int64_t kResumeAdvanceMs = 2'000;

std::string Trim(std::string s) {
  while (!s.empty() && isspace(uint8_t(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(uint8_t(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

SessionActor::SessionActor() = default;
SessionActor::~SessionActor() = default;

void SessionActor::DeclareConfig(config::Section& s) {
  s.Key("bot_id", &bot_id_, std::string(), "Coze bot (agent) id; required");
  s.Key("api_base", &api_base_, std::string("https://api.coze.cn"),
        "REST base URL (https://api.coze.com international; http://127.0.0.1:PORT for vb-cozesim)");
  s.Key("ws_base", &ws_base_, std::string("wss://ws.coze.cn"),
        "WebSocket base URL; /v1/chat is appended (ws://127.0.0.1:PORT for vb-cozesim)");
  s.Key("token_file", &token_file_, std::string(),
        "file holding the Coze token; \"\" = environment variable COZE_API_TOKEN (never put the token here)");
  s.Key("ca_file", &ca_file_, std::string(), "PEM CA bundle for TLS; \"\" = the system CAs");
  s.Key("coze_device_id", &coze_device_id_, std::string(),
        "device_id query parameter (decimal int64); \"\" = derived from /etc/machine-id and the device name "
        "(stable per device)");
  s.Key("user_id", &settings_.user_id, std::string(),
        "chat_config.user_id (whose conversation and memory); \"\" = \"vb-\" + the device id (stable per device)");
  s.Key("meta_data", &settings_.meta_data,
        "chat_config.meta_data: name → value (≤ 16, names 1–64, values 1–512 chars)");
  s.Key("custom_variables", &settings_.custom_variables,
        "chat_config.custom_variables: name → value (the bot's prompt variables)");
  s.Key("parameters", &settings_.parameters, "chat_config.parameters: name → value (chat-flow inputs)");
  {
    auto e = s.Sub("extra_params", "chat_config.extra_params: where the device is");
    e.Key("latitude", &settings_.latitude, std::string(), "decimal degrees, e.g. \"48.8566\"; \"\" = not sent");
    e.Key("longitude", &settings_.longitude, std::string(), "decimal degrees, e.g. \"2.3522\"; \"\" = not sent");
    auto degrees = [&](const char* key, const std::string& v, double limit) {
      if (v.empty()) return;
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (!end || *end || d < -limit || d > limit)
        e.Error(key, "must be decimal degrees within ±" + std::to_string(int(limit)) + " (got '" + v + "')");
    };
    degrees("latitude", settings_.latitude, 90);
    degrees("longitude", settings_.longitude, 180);
    if (settings_.latitude.empty() != settings_.longitude.empty())
      e.Error(settings_.latitude.empty() ? "latitude" : "longitude", "latitude and longitude go together");
    e.Finish();
  }
  {
    auto a = s.Sub("asr_config", "speech recognition hints (asr_config)");
    a.Key("hot_words", &settings_.hot_words, std::vector<std::string>{}, "words the recogniser should prefer");
    a.Key("context", &settings_.asr_context, std::string(), "text that tells the recogniser what the talk is about");
    a.Key("user_language", &settings_.user_language, std::string(),
          "the speaker's language, e.g. en, zh; \"\" = the service's choice");
    a.Finish();
  }
  s.Choice("vad", &settings_.vad_type, "server_vad", {"server_vad", "semantic_vad"},
           "turn detection outside push-to-talk: server_vad (silence ends a turn) or semantic_vad "
           "(the service also judges whether the sentence is finished; enterprise accounts)");
  {
    auto v = s.Sub("semantic_vad", "semantic_vad_config (vad: semantic_vad)");
    v.Key("silence_threshold_ms", &settings_.semantic_silence_threshold_ms, 300, {0, 10000},
          "silence before judging, ms");
    v.Key("unfinished_wait_ms", &settings_.semantic_unfinished_wait_ms, 500, {0, 10000},
          "extra wait when the sentence seems unfinished, ms");
    v.Finish();
  }
  {
    auto i =
        s.Sub("interrupt_config", "which speech may interrupt the agent (server VAD only); no keywords = any speech");
    i.Choice("mode", &settings_.interrupt_mode, "keyword_contains", {"keyword_contains", "keyword_prefix"},
             "keyword_contains: the speech contains a keyword; keyword_prefix: starts with one");
    i.Key("keywords", &settings_.interrupt_keywords, std::vector<std::string>{}, "at most 5 keywords");
    if (settings_.interrupt_keywords.size() > 5) i.Error("keywords", "at most 5 keywords", 5);
    for (size_t k = 0; k < settings_.interrupt_keywords.size(); ++k)
      if (settings_.interrupt_keywords[k].empty()) i.Error("keywords", "a keyword cannot be empty", int(k));
    i.Finish();
  }
  s.Key("prologue_content", &settings_.prologue_content, std::string(),
        "what the bot says first when need_play_prologue is true; \"\" = the bot's own prologue");
  s.Key("conversation_id", &fixed_conversation_, std::string(),
        "use this conversation; \"\" = the persisted one, or a new one created over REST");
  s.Key("state_dir", &state_dir_, std::string(),
        "where session-<device>.json keeps the conversation id; \"\" = $XDG_STATE_HOME/voicebus");
  s.Choice("mode", &mode_name_, "continuous", {"continuous", "wake_word", "push_to_talk"},
           "dialog mode until a SetMode command (server_vad unless push_to_talk)");
  s.Choice("input_codec", &settings_.input_codec, "pcm", {"pcm", "opus"},
           "uplink audio: pcm 16 kHz or opus 20 ms packets");
  s.Key("input_opus_bitrate", &settings_.input_opus_bitrate, 24000, {6000, 128000}, "uplink Opus bitrate, bit/s");
  s.Choice("output_codec", &settings_.output_codec, "opus", {"opus", "pcm"}, "downlink audio codec");
  s.Key("output_sample_rate", &settings_.output_sample_rate, 16000, {8000, 48000}, "downlink sample rate, Hz");
  s.Key("frame_size_ms", &settings_.frame_size_ms, 60, {0, 1000}, "downlink packet duration, ms (opus: 10/20/40/60)");
  s.Key("opus_bitrate", &settings_.opus_bitrate, 16000, {6000, 128000}, "downlink Opus bitrate, bit/s");
  s.Key("limit_period_s", &settings_.limit_period_s, 1, {0, 60}, "limit_config.period, s (0 = no pacing)");
  s.Key("limit_max_frames", &settings_.limit_max_frames, 18, {0, 10000}, "limit_config.max_frame_num per period");
  s.Key("speech_rate", &settings_.speech_rate, 0, {-50, 100}, "agent speech rate");
  s.Key("voice_id", &settings_.voice_id, std::string(), "agent voice; \"\" = the bot's");
  s.Key("prefix_padding_ms", &settings_.prefix_padding_ms, 600, {0, 10000}, "server_vad prefix padding, ms");
  s.Key("silence_duration_ms", &settings_.silence_duration_ms, 500, {100, 10000},
        "server_vad silence ending a turn, ms");
  s.Key("event_subscriptions", &settings_.event_subscriptions, kDefaultSubscriptions,
        "downstream events asked for (empty = all)");
  s.Key("need_play_prologue", &settings_.need_play_prologue, false, "ask the bot to speak its prologue on connect");
  s.Key("outage_buffer_ms", &outage_buffer_ms_, 10000, {0, 60000},
        "mic audio kept while disconnected and sent after reconnecting, ms");
  s.Key("text_queue", &text_queue_, 8, {0, 1000},
        "text inputs kept while disconnected and sent on reconnect (beyond: refused; 0 = refuse all)");
  s.Key("text_queue_max_age_s", &text_queue_max_age_s_, 60, {1, 86400},
        "a queued text not sent within this long is dropped and reported");
  s.Key("resume_max_age_s", &resume_max_age_s_, 30, {1, 3600},
        "after a restart, carry on the mode, listening state and missed audio of a process that died "
        "less than this long ago");
  s.Key("backfill_wait_ms", &backfill_wait_ms_, 2500, {0, 60000},
        "after a restart, wait this long for vb-wakevad's missed audio before streaming live audio (0 = do not ask)");
  s.Key("reconnect_initial_ms", &reconnect_initial_ms_, 1000, {10, 600000}, "first reconnect delay, ms (doubles)");
  s.Key("reconnect_max_ms", &reconnect_max_ms_, 32000, {10, 3600000}, "longest reconnect delay, ms");
  s.Key("reconnect_jitter", &reconnect_jitter_, 0.25, {0, 1}, "± fraction of random jitter on each delay");
  s.Key("ping_s", &ping_s_, 10, {1, 3600}, "WebSocket ping after this many idle seconds");
  s.Key("hangup_s", &hangup_s_, 30, {2, 7200}, "drop the connection after this many seconds without traffic or pong");
  s.Key("stall_timeout_s", &stall_timeout_s_, 20, {1, 3600},
        "a reply owed but no event from the server for this long → reconnect");
  s.Key("max_send_queue", &max_send_queue_, 1024, {16, 100000}, "upstream frames waiting for the socket");
  {
    auto t = s.Sub("text_chats",
                   "text chats for bus clients (chat.request → chat.event): REST v3 streaming, each "
                   "client in its own conversation, beside the voice dialog");
    t.Key("max_running", &text_max_running_, 32, {1, 1024}, "text chats running at once (more are refused)");
    t.Key("tool_timeout_ms", &text_tool_timeout_ms_, 10000, {100, 120000},
          "a tool call of a text chat with no output this long is answered with an error output (vb-tools "
          "usually answers first, within its own timeout)");
    t.Finish();
  }
  if (s.report() && s.report()->describe) return;
  section_.emplace(s);  // Configure() names token_file's line if the file does not open
  if (bot_id_.empty()) s.Error("bot_id", "required: the Coze bot id");
  if (settings_.meta_data.size() > 16)
    s.Error("meta_data", "at most 16 pairs (has " + std::to_string(settings_.meta_data.size()) + ")");
  for (size_t i = 0; i < settings_.meta_data.size(); ++i) {
    const auto& [k, v] = settings_.meta_data[i];
    if (k.empty() || k.size() > 64 || v.empty() || v.size() > 512)
      s.Error("meta_data", "'" + k.substr(0, 64) + "': names have 1–64 characters, values 1–512", int(i));
  }
  if (!Url::Parse(api_base_, &api_url_) || api_url_.path.find("/v1") != std::string::npos ||
      api_base_.rfind("ws", 0) == 0)
    s.Error("api_base", "must be http(s)://host[:port] (got '" + api_base_ + "')");
  if (!Url::Parse(ws_base_, &ws_url_) || ws_base_.rfind("http", 0) == 0)
    s.Error("ws_base", "must be ws(s)://host[:port] (got '" + ws_base_ + "')");
  if (!coze_device_id_.empty() && coze_device_id_.find_first_not_of("0123456789") != std::string::npos)
    s.Error("coze_device_id", "must be a decimal number");
  if (reconnect_max_ms_ < reconnect_initial_ms_) s.Error("reconnect_max_ms", "smaller than reconnect_initial_ms");
  if (hangup_s_ <= ping_s_) s.Error("hangup_s", "must be larger than ping_s");
  if (settings_.output_codec == "opus" && settings_.output_sample_rate != 8000 &&
      settings_.output_sample_rate != 12000 && settings_.output_sample_rate != 16000 &&
      settings_.output_sample_rate != 24000 && settings_.output_sample_rate != 48000)
    s.Error("output_sample_rate", "opus needs 8000, 12000, 16000, 24000 or 48000");
}

Status SessionActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  std::string token;
  if (!token_file_.empty()) {
    std::ifstream in(token_file_);
    if (!in) return section_->ErrorAt("token_file", "cannot read " + token_file_ + ": " + std::strerror(errno));
    std::getline(in, token);  // first line, as vb-cozesim --token-file
    token = Trim(token);
  } else if (const char* env = getenv("COZE_API_TOKEN")) {
    token = Trim(env);
  }
  if (token.empty())
    return Status::Config("no Coze token: set COZE_API_TOKEN in the environment or session.token_file");

  if (coze_device_id_.empty()) coze_device_id_ = DefaultDeviceId(ctx.device());
  if (settings_.user_id.empty()) settings_.user_id = "vb-" + coze_device_id_;
  VB_LOG(kInfo) << "device_id " << coze_device_id_ << ", user_id " << settings_.user_id;
  CoreOptions o;
  o.settings = settings_;
  o.mode = ModeFromName(mode_name_);
  o.outage_buffer_ms = outage_buffer_ms_;
  o.text_queue = text_queue_;
  o.text_queue_max_age_ms = text_queue_max_age_s_ * 1000;
  o.service = "coze " + ws_url_.Display();
  o.device = ctx.device();
  core_ = std::make_unique<SessionCore>(o, static_cast<SessionPort*>(this));
  std::string err;
  if (!core_->Init(&err)) return Status::Config("session: " + err);

  ClientOptions co;
  co.ws = ws_url_;
  co.api = api_url_;
  co.token = std::move(token);
  co.ca_file = ca_file_;
  co.ping_s = ping_s_;
  co.hangup_s = hangup_s_;
  co.max_queued = size_t(max_send_queue_);
  auto& loop = ctx.loop();
  client_ = std::make_unique<CozeClient>(
      std::move(co), [&loop](std::function<void()> fn) { return loop.Post(std::move(fn)); },
      CozeClient::Callbacks{
          .opened = [this](uint64_t gen) { conn_->OnOpened(gen); },
          .text = [this](uint64_t gen, std::string text, int64_t recv_ns) { conn_->OnText(gen, text, recv_ns); },
          .closed = [this](uint64_t gen, std::string reason, int status) { conn_->OnClosed(gen, reason, status); },
      });

  std::string dir = state_dir_.empty() ? StateStore::DefaultDir() : state_dir_;
  store_ = std::make_unique<StateStore>(dir + "/session-" + ctx.device() + ".json");
  ConnectionOptions cm;
  cm.bot_id = bot_id_;
  cm.device_id = coze_device_id_;
  cm.conversation_id = fixed_conversation_;
  cm.ws_service = ws_url_.Display();
  cm.api_service = api_url_.Display();
  cm.state_file = store_->path();
  cm.reconnect_initial = std::chrono::milliseconds(reconnect_initial_ms_);
  cm.reconnect_max = std::chrono::milliseconds(reconnect_max_ms_);
  cm.reconnect_jitter = reconnect_jitter_;
  cm.seed = uint64_t(bus::MonoNs()) ^ uint64_t(getpid());
  cm.stall_timeout = std::chrono::seconds(stall_timeout_s_);
  conn_ = std::make_unique<ConnectionManager>(std::move(cm), core_.get(), static_cast<ConnectionPort*>(this));

  events_ = ctx.bus().Advertise(bus::topics::kSessionEvent);
  audio_ = ctx.bus().Advertise(bus::topics::kSessionAudio);
  acks_ = ctx.bus().Advertise(bus::topics::kDialogAck);
  // Fetches ask session.backfill/<device> (advertised at the first; our own
  // device's now, so the contract names it); the answers to every fetch (a
  // StartListening's, a restart's) come on audio.backfill of any device.
  device_backfill_req_.emplace(ctx.device(), ctx.bus().Advertise(bus::topics::kSessionBackfill));
  ctx.bus().Subscribe<v1::AudioBackfill>(
      bus::topics::kAudioBackfill,
      [this](const bus::Received<v1::AudioBackfill>& m) {
        if (core_->OnBackfillAnswer(m.msg, m.header.origin_ns()) && m.msg.last()) SaveResume(false);
      },
      "*");
  clean_device_ = ctx.device();
  ctx.bus().Subscribe<v1::AudioFrame>(bus::topics::kAudioClean, [this](const auto& m) { OnClean(m); });
  // Issue 16: with several devices, the voice streamed is the one of the
  // device vb-control serves (dialog.state.device, chosen by the signal).
  ctx.bus().Subscribe<v1::DialogState>(bus::topics::kDialogState, [this](const auto& m) {
    ReadHeldBack();  // the frames before the state change, in the old device's numbering
    std::string device = m.msg.device().empty() ? ctx_->device() : m.msg.device();
    core_->DialogDevice(device);  // before the orders that follow it (an UplinkGuard's cut)
    if (device == clean_device_) return;
    // Not from inside the bus's dispatch: the subscriptions change.
    ctx_->loop().AddOneShot(std::chrono::nanoseconds(0), [this, device] { Follow(device); });
  });
  chat_events_ = ctx.bus().Advertise(bus::topics::kChatEvent);
  TextChatOptions to;
  to.bot_id = bot_id_;
  to.default_user_id = settings_.user_id;
  to.tool_timeout_ns = int64_t(text_tool_timeout_ms_) * 1'000'000;
  to.stall_timeout_ns = int64_t(stall_timeout_s_) * 1'000'000'000;
  to.max_chats = size_t(text_max_running_);
  text_chats_ = std::make_unique<TextChats>(to, static_cast<TextChatPort*>(this), [] { return bus::MonoNs(); });
  ctx.bus().Subscribe<v1::TextChatRequest>(bus::topics::kChatRequest,
                                           [this](const bus::Received<v1::TextChatRequest>& m) {
                                             const v1::TextChatRequest r = m.msg;  // a copy: handling publishes
                                             text_chats_->OnRequest(r, bus::MonoNs());
                                           });
  // vb-control's orders (dialog.order) and the requests that are ours
  // (dialog.request: text, tool outputs, settings, speak, new conversation).
  auto command = [this](const v1::DialogCommand& cmd) {
    if (cmd.has_tool_output()) {
      // A tool output for a text chat goes to that chat.
      std::string refusal;
      if (text_chats_->OnToolOutput(cmd.tool_output().turn_id(), cmd.tool_output().call_id(),
                                    cmd.tool_output().output(), bus::MonoNs(), &refusal)) {
        if (!cmd.command_id().empty())
          Ack(cmd.command_id(), refusal.empty() ? v1::CommandAck::ACCEPTED : v1::CommandAck::REFUSED, refusal);
        return;
      }
    }
    core_->OnCommand(cmd);
    UpdateCleanLazy();
  };
  ctx.bus().Subscribe<v1::DialogCommand>(bus::topics::kDialogOrder, [this, command](const auto& m) {
    const v1::DialogCommand cmd = m.msg;  // a copy: handling publishes
    ReadHeldBack();
    command(cmd);
  });
  ctx.bus().Subscribe<v1::DialogRequest>(bus::topics::kDialogRequest, [this, command](const auto& m) {
    if (!bus::ForSession(m.msg)) return;
    ReadHeldBack();
    command(bus::AsCommand(m.msg));
  });
  return Status::Ok();
}

Status SessionActor::Activate(bus::Context& ctx) {
  std::string err;
  if (!client_->Start(&err)) return Status::Unavailable(err);
  started_ns_ = bus::MonoNs();
  if (Status s = store_->Load(&state_); !s.ok()) {
    VB_LOG(kWarn) << "session state unreadable, starting a new conversation: " << s.message();
    state_ = {};
  }
  Resume(state_);
  core_->PublishStatus();
  conn_->Start();
  persist_timer_ = ctx.loop().AddTimer(std::chrono::milliseconds(500), [this] {
    core_->Tick(bus::MonoNs());
    text_chats_->Tick(bus::MonoNs());
    SaveResume(false, true);
  });
  StartupStep();
  return Status::Ok();
}

void SessionActor::OnClean(const bus::Received<v1::AudioFrame>& m) {
  // origin: when the frame was published (the mic-to-wire clock starts there).
  core_->OnAudio(m.msg, m.header.mono_ns(), m.device);
}

void SessionActor::UpdateCleanLazy() {
  // Held at least this far behind, a batch read costs the wire nothing it
  // would notice (the frames go out kGuardReadMs later at most, in order).
  constexpr uint32_t kLazyFromMs = 1000;
  SetCleanLazy(core_->guard_delay_ms() >= kLazyFromMs);
}

void SessionActor::SetCleanLazy(bool lazy) {
  constexpr auto kGuardReadMs = std::chrono::milliseconds(100);
  if (lazy == clean_lazy_) return;
  if (!lazy) ctx_->bus().DrainLazy();  // what came since the last read, before the live frames
  clean_lazy_ = lazy;
  ctx_->bus().SetLazy(bus::topics::kAudioClean, lazy, clean_device_);
  if (!lazy) {
    ctx_->loop().CancelTimer(clean_read_timer_);
    clean_read_timer_ = 0;
    return;
  }
  clean_read_timer_ = ctx_->loop().AddTimer(kGuardReadMs, [this] {
    ctx_->bus().DrainLazy();
    UpdateCleanLazy();  // a hold that lapsed (its control gone) ends at a frame
  });
}

void SessionActor::Follow(const std::string& device) {
  if (device == clean_device_) return;
  SetCleanLazy(false);  // the old device's frames read before its subscription goes
  ctx_->bus().Unsubscribe(bus::topics::kAudioClean, clean_device_);
  ctx_->bus().Subscribe<v1::AudioFrame>(
      bus::topics::kAudioClean, [this](const auto& m) { OnClean(m); }, device);
  VB_LOG(kInfo) << "streaming the voice of device " << device << " (was " << clean_device_ << ")";
  clean_device_ = device;
  UpdateCleanLazy();
}

void SessionActor::Resume(const SessionState& st) {
  if (!st.turn_id.empty()) orphan_turn_ = st.turn_id;
  if (!st.texts.empty()) {
    // Accepted by the previous process, never answered by a chat: sent again
    // first (or reported expired by their first acceptance), whatever else
    // of the old state still applies.
    std::vector<PendingText> texts;
    const int64_t mono = bus::MonoNs(), wall = WallMs();
    for (const auto& t : st.texts)
      texts.push_back(
          {t.text, t.request_id, t.command_id, mono - std::max<int64_t>(0, wall - t.queued_at_ms) * 1'000'000});
    VB_LOG(kInfo) << texts.size() << " text input(s) accepted before the restart and not yet answered: sending again";
    core_->RestoreTexts(texts);
  }
  const int64_t age_ms = WallMs() - st.saved_at_ms;
  if (st.bot_id != bot_id_ || st.service != api_url_.Display() || st.saved_at_ms == 0 || age_ms < 0 ||
      age_ms > int64_t(resume_max_age_s_) * 1000)
    return;
  ResumePoint p;
  p.mode = st.mode.empty() ? v1::MODE_UNSPECIFIED : ModeFromName(st.mode);
  p.listening = st.listening;
  core_->Restore(p);
  // The device streamed before ("" in an older file: our own), if the
  // config still has it: resend_from is in its numbering.
  std::string device = st.device.empty() ? ctx_->device() : st.device;
  const auto& known = ctx_->devices();
  const bool unknown = device != ctx_->device() && std::find(known.begin(), known.end(), device) == known.end();
  if (unknown)
    VB_LOG(kWarn) << "the state file names device '" << device
                  << "', which is not in devices.names: its audio is not fetched";
  const bool backfill = !unknown && st.streaming && st.has_samples && backfill_wait_ms_ > 0;
  VB_LOG(kInfo) << "resuming after a restart (state " << age_ms << " ms old): mode " << ModeName(core_->mode())
                << (st.listening ? ", listening" : "") << (unknown ? "" : ", device " + device)
                << (backfill ? ", asking for the audio from sample " + std::to_string(st.resend_from) : "");
  if (unknown) return;
  Follow(device);
  core_->ResumeStream(device, backfill, st.resend_from, backfill_wait_ms_, bus::MonoNs());
}

// Runs every 50 ms after a restart until the dead turn is ended: once
// someone subscribes (a message published before the broker has passed on
// any subscription is lost), at most 2 s after the start. The missed audio
// is the core's fetch (ResumeStream).
void SessionActor::StartupStep() {
  startup_timer_ = 0;
  if (stopping_) return;
  const int64_t now = bus::MonoNs();
  const int64_t elapsed_ms = (now - started_ns_) / 1'000'000;
  if (!orphan_turn_.empty() && (ctx_->bus().HasSubscriber(events_) || elapsed_ms > 2000)) {
    VB_LOG(kInfo) << "turn " << orphan_turn_ << " died with the previous process: ending it (FAILED)";
    core_->EndTurnAfterRestart(orphan_turn_);
    orphan_turn_.clear();
    SaveResume(false);
  }
  if (!orphan_turn_.empty())
    startup_timer_ = ctx_->loop().AddOneShot(std::chrono::milliseconds(50), [this] { StartupStep(); });
}

void SessionActor::SaveResume(bool durable, bool periodic) {
  if (!store_ || !fixed_conversation_.empty()) return;
  ResumePoint p = core_->Resume();
  SessionState st = state_;
  if (st.bot_id != bot_id_ || st.service != api_url_.Display()) {
    st = {};  // not yet (or no longer) this bot's conversation
    st.bot_id = bot_id_;
    st.service = api_url_.Display();
  }
  st.turn_id = !p.turn_id.empty() ? p.turn_id : orphan_turn_;
  st.mode = ModeName(p.mode);
  st.listening = p.listening;
  // While a fetch has brought nothing yet, the point is its start.
  st.device = p.device == ctx_->device() ? "" : p.device;
  st.streaming = p.streaming;
  st.has_samples = p.has_samples;
  st.resend_from = p.resend_from;
  const int64_t now = WallMs();
  st.texts.clear();
  const int64_t mono = bus::MonoNs();
  for (const auto& t : p.texts) {
    // Kept from the last save when it is the same text: its time does not drift.
    int64_t at = now - std::max<int64_t>(0, mono - t.queued_ns) / 1'000'000;
    for (const auto& old : state_.texts)
      if (old.text == t.text && old.request_id == t.request_id && old.command_id == t.command_id) at = old.queued_at_ms;
    st.texts.push_back({t.text, t.request_id, t.command_id, at});
  }
  const bool changed = st.turn_id != state_.turn_id || st.mode != state_.mode || st.device != state_.device ||
                       st.listening != state_.listening || st.streaming != state_.streaming ||
                       st.has_samples != state_.has_samples || st.texts != state_.texts;
  // The resend point moves on through every silence the service has judged
  // (twice a second while streaming, all the time in continuous mode): an
  // older point on disk only means a restart sends a little more silence
  // again, never that it skips a question, so the timer writes its advance
  // alone at most every kResumeAdvanceMs. A question made a turn or
  // committed (an urgent save, not periodic) is written at once: a restart
  // must not send it again.
  const bool advanced =
      st.resend_from > state_.resend_from && (!periodic || now - state_.saved_at_ms >= kResumeAdvanceMs);
  const bool moved_back = st.resend_from < state_.resend_from;
  if (!changed && !moved_back && !advanced && now - state_.saved_at_ms < kResumeRefreshMs) return;
  st.saved_at_ms = now;
  if (Status s = store_->Save(st, durable); !s.ok()) {
    ctx_->CountError();
    uint64_t suppressed = 0;
    if (problem_log_.Allow(bus::MonoNs(), &suppressed))
      VB_LOG(kWarn) << "cannot persist the session state: " << s.message();
    return;
  }
  state_ = std::move(st);
}

void SessionActor::ResumeChanged(bool urgent) {
  // A kill -9 needs no fsync: the rename alone survives the process.
  if (urgent) SaveResume(false);
}

void SessionActor::Deactivate(bus::Context& ctx) {
  stopping_ = true;
  if (persist_timer_) ctx.loop().CancelTimer(persist_timer_);
  if (startup_timer_) ctx.loop().CancelTimer(startup_timer_);
  if (backfill_timer_) ctx.loop().CancelTimer(backfill_timer_);
  persist_timer_ = startup_timer_ = backfill_timer_ = 0;
  if (conn_) conn_->Stop();  // the connection's timers; its late reports are stale now
  if (client_) client_->Stop();
}

// ConnectionPort: the connection manager's transport, clock and reports.
uint64_t SessionActor::OpenSocket(const std::string& path_and_query) { return client_->Connect(path_and_query); }
void SessionActor::CloseSocket() { client_->Close(); }
void SessionActor::PostJson(const std::string& path, std::string body, ConnectionPort::HttpDone done) {
  client_->HttpPost(path, std::move(body), std::move(done));
}
int64_t SessionActor::Now() { return bus::MonoNs(); }
ConnectionPort::TimerId SessionActor::After(std::chrono::nanoseconds delay, std::function<void()> fn) {
  return ctx_->loop().AddOneShot(delay, std::move(fn));
}
void SessionActor::CancelTimer(ConnectionPort::TimerId id) { ctx_->loop().CancelTimer(id); }
void SessionActor::Count(const char* counter) { ctx_->Count(counter); }
void SessionActor::CountError() { ctx_->CountError(); }
void SessionActor::Healthy() { ctx_->Healthy(); }
void SessionActor::Degraded(const std::string& why) { ctx_->Degraded(why); }

std::string SessionActor::SavedConversation(const std::string& bot_id) {
  const SessionState& st = state_;  // loaded at Activate
  return st.bot_id == bot_id && st.service == api_url_.Display() ? st.conversation_id : "";
}

void SessionActor::BotChanged(const std::string& bot_id) {
  bot_id_ = bot_id;  // the state file's and the text chats' bot from now on
  text_chats_->set_bot_id(bot_id);
}

void SessionActor::PublishError(int code, const std::string& message, bool fatal) {
  v1::SessionEvent e;
  e.mutable_error()->set_code(code);
  e.mutable_error()->set_message(message);
  e.mutable_error()->set_fatal(fatal);
  events_.Publish(e);
}

bool SessionActor::SendText(std::string text, int64_t origin_ns) { return client_->Send(std::move(text), origin_ns); }

void SessionActor::PublishEvent(const v1::SessionEvent& event, const std::string& turn_id) {
  events_.Publish(event, {.turn_id = turn_id});
  if (event.has_error() && conn_) conn_->OnPublished(event);  // 4002: a new conversation
}

void SessionActor::PublishAudio(const v1::EncodedAudio& audio, const std::string& turn_id, int64_t origin_ns) {
  audio_.Publish(audio, {.origin_ns = origin_ns, .turn_id = turn_id});
  if (origin_ns > 0) downlink_us_.Add(double(bus::MonoNs() - origin_ns) / 1000.0);
}

void SessionActor::ConversationChanged(const std::string& conversation_id) {
  if (conversation_id.empty() || !fixed_conversation_.empty()) return;
  SessionState st = state_;
  if (st.bot_id != bot_id_ || st.service != api_url_.Display())
    st = {};  // another bot's resume point means nothing here
  st.conversation_id = conversation_id;
  st.bot_id = bot_id_;
  st.service = api_url_.Display();
  if (Status s = store_->Save(st); !s.ok()) {
    ctx_->CountError();
    VB_LOG(kWarn) << "cannot persist the conversation id: " << s.message();
    return;
  }
  state_ = std::move(st);
}

void SessionActor::Ack(const std::string& command_id, v1::CommandAck::Result result, const std::string& reason) {
  v1::CommandAck a;
  a.set_command_id(command_id);
  a.set_result(result);
  a.set_reason(reason);
  a.set_receiver(ctx_->name());
  acks_.Publish(a);
}

uint64_t SessionActor::PostStream(const std::string& path, std::string body, TextChatPort::Chunk chunk,
                                  TextChatPort::Done done) {
  return client_->HttpPostStream(path, std::move(body), std::move(chunk), std::move(done));
}

void SessionActor::Post(const std::string& path, std::string body, TextChatPort::Done done) {
  client_->HttpPost(path, std::move(body), std::move(done));
}

void SessionActor::Abort(uint64_t stream) { client_->AbortHttp(stream); }

void SessionActor::PublishChatEvent(const v1::TextChatEvent& event) {
  chat_events_.Publish(event, {.turn_id = event.chat_id()});
}

void SessionActor::PublishToolCall(const v1::ToolCall& call, const std::string& chat_id) {
  v1::SessionEvent e;
  *e.mutable_tool_call() = call;
  events_.Publish(e, {.turn_id = chat_id});
}

void SessionActor::PublishTurnEndedWithTools(const v1::TurnEnded& ended, const std::string& chat_id) {
  // vb-control ignores a turn it does not know; vb-tools forgets its calls.
  v1::SessionEvent e;
  *e.mutable_turn_ended() = ended;
  events_.Publish(e, {.turn_id = chat_id});
}

void SessionActor::RequestBackfill(const std::string& device, const v1::BackfillRequest& req) {
  backfill_pending_.emplace(device, req);  // a newer attempt replaces one not yet sent
  SendBackfill();
}

void SessionActor::SendBackfill() {
  if (backfill_pending_ && !core_->backfilling()) backfill_pending_.reset();  // the core gave up waiting
  if (!backfill_pending_ || stopping_) return;
  const auto& [device, req] = *backfill_pending_;
  auto it = device_backfill_req_.find(device);  // session.backfill/<device>: that device's vb-wakevad
  if (it == device_backfill_req_.end())
    it = device_backfill_req_.emplace(device, ctx_->bus().Advertise(bus::topics::kSessionBackfill, device)).first;
  if (ctx_->bus().HasSubscriber(it->second)) {
    it->second.Publish(req);
    backfill_pending_.reset();
  } else if (!backfill_timer_) {
    // Nobody hears it yet (just started, or no vb-wakevad serves the
    // device): sent once someone does; the core asks again or gives up.
    backfill_timer_ = ctx_->loop().AddOneShot(std::chrono::milliseconds(50), [this] {
      backfill_timer_ = 0;
      SendBackfill();
    });
  }
}

void SessionActor::Note(const std::string& what) { VB_LOG(kInfo) << what; }

void SessionActor::Problem(const std::string& what) {
  ctx_->Count("protocol_problems");
  uint64_t suppressed = 0;
  if (problem_log_.Allow(bus::MonoNs(), &suppressed))
    VB_LOG(kWarn) << what.substr(0, 200) << (suppressed ? " (+" + std::to_string(suppressed) + " suppressed)" : "");
}

void SessionActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  // Late joiners learn the session's state from the heartbeat-rate status.
  core_->PublishStatus();
  auto& x = *hb.mutable_extra();
  const auto& c = core_->counters();
  x["connected"] = core_->connected();
  const auto& tc = text_chats_->counters();
  x["text_chats_running"] = int64_t(text_chats_->running());
  x["text_chats_started"] = int64_t(tc.started);
  x["text_chats_completed"] = int64_t(tc.completed);
  x["text_chats_failed"] = int64_t(tc.failed);
  x["text_chats_cancelled"] = int64_t(tc.cancelled);
  x["text_chats_refused"] = int64_t(tc.refused);
  x["text_chat_tool_calls"] = int64_t(tc.tool_calls);
  x["text_chat_tool_timeouts"] = int64_t(tc.tool_timeouts);
  x["text_conversations_created"] = int64_t(tc.conversations_created);
  x["frames_in"] = int64_t(c.frames_in);
  x["frames_sent"] = int64_t(c.frames_sent);
  x["frames_buffered"] = int64_t(c.frames_buffered);
  x["frames_replayed"] = int64_t(c.frames_replayed);
  x["frames_bridged"] = int64_t(c.frames_bridged);
  x["frames_guarded"] = int64_t(c.frames_guarded);
  x["frames_guard_cut"] = int64_t(c.frames_guard_cut);
  x["frames_dropped"] = int64_t(c.frames_dropped);
  x["buffered_ms"] = core_->buffered_ms();
  x["reconnects"] = int64_t(c.reconnects);
  x["texts_queued"] = int64_t(c.texts_queued);
  x["texts_refused"] = int64_t(c.texts_refused);
  x["texts_expired"] = int64_t(c.texts_expired);
  x["texts_resent"] = int64_t(c.texts_resent);
  x["queued_texts"] = int64_t(core_->queued_texts());
  x["frames_backfilled"] = int64_t(c.frames_backfilled);
  x["frames_requeued"] = int64_t(c.frames_requeued);
  for (const auto& [k, v] : StartFigures(c)) x[k] = v;
  const auto& d = core_->downlink().counters();
  x["downlink_events"] = int64_t(d.events);
  x["downlink_malformed"] = int64_t(d.malformed);
  x["downlink_wrong_type"] = int64_t(d.wrong_type);
  x["downlink_unknown"] = int64_t(d.unknown);
  x["late_dropped"] = int64_t(d.late_audio_dropped);
  x["audio_packets"] = int64_t(d.audio_packets);
  x["posts_dropped"] = int64_t(client_->dropped_posts());
  x["oversized"] = int64_t(client_->oversized());
  bus::Histogram up = client_->TakeSendLatency();
  x["mic_to_wire_us_p50"] = int64_t(up.Percentile(50));
  x["mic_to_wire_us_p99"] = int64_t(up.Percentile(99));
  x["mic_to_wire_count"] = int64_t(up.count());
  x["wire_to_bus_us_p50"] = int64_t(downlink_us_.Percentile(50));
  x["wire_to_bus_us_p99"] = int64_t(downlink_us_.Percentile(99));
  x["wire_to_bus_count"] = int64_t(downlink_us_.count());
  downlink_us_.Reset();
}

}  // namespace vb::session
