// vb-control bus adapter (see control_actor.h).
#include "actors/control/control_actor.h"

#include <poll.h>

#include "bus/log.h"

namespace vb::control {
namespace {
// SessionError.code of the error vb-control publishes when a reply was cut
// (HTTP's "service unavailable": a stage of the pipeline went away).
constexpr int kReplyCutCode = 503;
// How often vb-control reads audio.clean (its hearing watch; see Configure).
constexpr std::chrono::milliseconds kHearingBatch{100};

// The person may be speaking to the device now: it listens, or it waits
// for the wake word (which it must hear). Push-to-talk at rest listens only
// after the key, which moves the dialog to LISTENING.
bool ListensOrWould(const v1::DialogState& s) {
  return s.state() == v1::STATE_LISTENING || (s.state() == v1::STATE_IDLE && s.mode() == v1::MODE_WAKE_WORD);
}
}  // namespace

void ControlActor::DeclareConfig(config::Section& s) {
  s.Choice("mode", &mode_, "continuous", {"continuous", "wake_word", "push_to_talk"},
           "dialog mode at start (the gateway and `vb mode` can change it)");
  auto b = s.Sub("barge_in", "what interrupts the agent while it thinks or speaks");
  b.Key("client_vad", &options_.barge_in_client_vad, true,
        "local voice activity (only sensible with the echo canceller on)");
  b.Key("server_vad", &options_.barge_in_server_vad, true, "the service's speech_started");
  b.Key("wake_word", &options_.barge_in_wake_word, true, "the wake word");
  b.Key("wake_guard_ms", &wake_guard_ms_, 2500, {0, 5000},
        "with a wake word spotted, while the agent thinks or speaks the audio to the service runs this far "
        "behind, so a wake phrase said over the reply is cut out before the service hears it (it would "
        "become a turn); other speech over the agent reaches the service this much later. 2500 covers "
        "'OK voice bus'. 0 = off");
  b.Key("client_vad_holdoff_ms", &holdoff_ms_, 2500, {0, 30000},
        "client VAD is ignored this long after the agent starts speaking (echo canceller converging)");
  b.Finish();
  s.Key("listen_timeout_ms", &listen_timeout_ms_, 8000, {500, 120000},
        "wake-word mode: back to idle if nobody speaks this long after the wake word");
  s.Key("reply_timeout_ms", &reply_timeout_ms_, 30000, {1000, 600000},
        "a committed turn with no reply for this long is given up (error tone)");
  auto p = s.Sub("prompts", "prompt sounds");
  p.Key("wake", &options_.wake_prompt, true, "chime when the wake word is heard");
  p.Key("error", &options_.error_prompt, true, "tone on errors and when an actor goes down");
  p.Finish();
  auto h = s.Sub("health", "actor health from heartbeats");
  h.Key("watch", &watch_, {"session", "decoder", "playback"}, "actors whose absence the dialog reports");
  h.Key("timeout_ms", &health_timeout_ms_, 3000, {500, 60000}, "silent this long = down (3 missed heartbeats)");
  h.Key("busy_timeout_ms", &busy_timeout_ms_, 2200, {500, 60000},
        "while the agent thinks or speaks: silent this long = down, so a turn whose session, decoder or "
        "playback died ends within 3 s");
  h.Finish();
  auto hr = s.Sub("hearing", "tell the person when the device does not hear (no audio.clean frames)");
  hr.Key("deaf_after_ms", &deaf_after_ms_, 400, {0, 60000},
         "no microphone audio this long = not hearing (dialog.state deaf); 0 = never judged (no microphone)");
  hr.Key("start_grace_ms", &start_grace_ms_, 5000, {100, 120000},
         "at start, before the first audio: not hearing only after this long (a sound server may take seconds)");
  hr.Key("resume_after_ms", &resume_after_ms_, 100, {0, 5000},
         "hearing again once audio has flowed this long without a gap");
  hr.Key("cue_after_ms", &cue_after_ms_, 1000, {0, 60000},
         "a deaf stretch this long while listening (or waiting for the wake word) may have swallowed speech: "
         "the cue asks the person to repeat when hearing is back");
  hr.Key("cue_min_gap_ms", &cue_min_gap_ms_, 5000, {0, 600000}, "at most one repeat cue per this long");
  hr.Key("cue", &cue_, "error",
         "prompt played as the repeat cue (playback's built-in wake/error, or one of playback.prompts); "
         "empty = none");
  hr.Finish();
  auto a = s.Sub("arbitration",
                 "several devices (devices.names): which one answers when more than one hears the wake word "
                 "(or, in continuous mode, the start of speech)");
  a.Key("window_ms", &arbitration_window_ms_, 200, {0, 2000},
        "reports within this long of the first compete; a device heard alone waits at most this long "
        "(not at all with a single device)");
  a.Key("tie_db", &arbitration_tie_db_, 1.0, {0, 40},
        "speech levels above the noise floor this close are a tie: the higher wake score wins");
  a.Finish();
  auto k = s.Sub("ptt", "push-to-talk key from a Linux input device");
  k.Key("evdev_device", &evdev_path_, "", "e.g. /dev/input/by-id/…-event-kbd; empty = none");
  k.Key("key", &ptt_key_, "KEY_SPACE", "key name (KEY_SPACE, KEY_F12, KEY_RECORD, …) or code");
  k.Finish();
  if (KeyCodeFromName(ptt_key_) < 0) k.Error("key", "unknown key '" + ptt_key_ + "'");
}

Status ControlActor::Configure(bus::Context& ctx) {
  ctx_ = &ctx;
  options_.mode = mode_ == "wake_word"      ? v1::MODE_WAKE_WORD
                  : mode_ == "push_to_talk" ? v1::MODE_PUSH_TO_TALK
                                            : v1::MODE_CONTINUOUS;
  options_.listen_timeout = std::chrono::milliseconds(listen_timeout_ms_);
  options_.client_vad_holdoff = std::chrono::milliseconds(holdoff_ms_);
  options_.wake_guard = std::chrono::milliseconds(wake_guard_ms_);
  options_.reply_timeout = std::chrono::milliseconds(reply_timeout_ms_);
  dialog_ = std::make_unique<Dialog>(options_, *this);
  dialog_->Start(Clock::now());  // a restart must not assume nothing is under way
  hearing_options_.deaf_after = std::chrono::milliseconds(deaf_after_ms_);
  hearing_options_.start_grace = std::chrono::milliseconds(start_grace_ms_);
  hearing_options_.resume_after = std::chrono::milliseconds(resume_after_ms_);
  hearing_options_.cue_after = std::chrono::milliseconds(cue_after_ms_);
  hearing_options_.cue_min_gap = std::chrono::milliseconds(cue_min_gap_ms_);
  hearing_ = std::make_unique<HearingWatch>(hearing_options_, *this);
  hearing_->Start(Clock::now());
  hearing_->Listening(ListensOrWould(dialog_->state()), Clock::now());
  auto& bus = ctx.bus();
  ArbiterOptions ao;
  ao.window = std::chrono::milliseconds(arbitration_window_ms_);
  ao.tie_db = arbitration_tie_db_;
  ao.devices = std::max<size_t>(1, ctx.devices().size());
  arbiter_ = std::make_unique<Arbiter>(ao);
  // Voice reports of every device when there are several (else our own).
  const std::string voices = Arbitrates() ? "*" : "";
  state_pub_ = bus.Advertise(bus::topics::kDialogState);
  command_pub_ = bus.Advertise(bus::topics::kDialogOrder);
  ack_pub_ = bus.Advertise(bus::topics::kDialogAck);
  session_pub_ = bus.Advertise(bus::topics::kSessionEvent);
  Reschedule();

  bus.Subscribe<v1::SessionEvent>(bus::topics::kSessionEvent, [this](const auto& m) {
    if (m.header.source() == ctx_->name()) return;  // what we said on the session's behalf
    auto now = Clock::now();
    const auto& e = m.msg;
    // A copy: the handlers below publish.
    const std::string turn = m.header.turn_id();
    switch (e.event_case()) {
      case v1::SessionEvent::kStatus: dialog_->SessionStatus(e.status(), now); break;
      case v1::SessionEvent::kTurnStarted:
        dialog_->TurnStarted(e.turn_started().turn_id().empty() ? turn : e.turn_started().turn_id(), now);
        break;
      case v1::SessionEvent::kTurnEnded: dialog_->TurnEnded(turn, e.turn_ended().outcome(), now); break;
      case v1::SessionEvent::kAgentAudioEnd: dialog_->AgentAudioEnded(turn, e.agent_audio_end().packets(), now); break;
      case v1::SessionEvent::kUserSpeech:
        dialog_->ServerSpeech(e.user_speech().started(), now,
                              CapturedAt(m.header.origin_ns(), m.header.mono_ns(), now));
        break;
      case v1::SessionEvent::kError:
        VB_LOG(kWarn) << "session error " << e.error().code() << ": " << e.error().message();
        dialog_->SessionError(e.error().message(), e.error().fatal(), now);
        break;
      default: break;
    }
    Reschedule();
  });
  bus.Subscribe<v1::PlaybackEvent>(
      bus::topics::kPlaybackEvent,
      [this](const auto& m) {
        if (Arbitrates() && std::string(m.device) != Served()) return;  // a speaker that is not ours now
        auto now = Clock::now();
        const auto& e = m.msg;
        std::string turn = e.turn_id().empty() ? m.header.turn_id() : e.turn_id();
        if (e.kind() == v1::PlaybackEvent::STARTED) dialog_->PlaybackStarted(turn, now);
        else if (e.kind() == v1::PlaybackEvent::DRAINED) dialog_->PlaybackDrained(turn, now);
        else if (e.kind() == v1::PlaybackEvent::DEVICE_ERROR) {
          VB_LOG(kWarn) << "playback device error: " << e.detail();
        }
        Reschedule();
      },
      voices);
  bus.Subscribe<v1::VadEvent>(
      bus::topics::kVoiceVad,
      [this](const auto& m) {
        const std::string device(m.device);
        const bool start = m.msg.kind() == v1::VadEvent::SPEECH_START;
        // Continuous mode, no turn under way: a speech start picks the device.
        const bool busy = dialog_->kind() == v1::STATE_THINKING || dialog_->kind() == v1::STATE_SPEAKING;
        if (Arbitrates() && start && Known(device) && !busy && dialog_->state().mode() == v1::MODE_CONTINUOUS) {
          Report r;
          r.device = device;
          r.signal = MeasureVad(m.msg);
          r.at = Clock::now();
          r.vad_event = m.msg;
          Offer(std::move(r));
          return;
        }
        if (Arbitrates() && device != Served()) return;  // barge-in is the served device's
        const Clock::time_point at = Clock::now();
        dialog_->ClientVad(start, at, CapturedAt(m.header.origin_ns(), m.header.mono_ns(), at));
        Reschedule();
      },
      voices);
  bus.Subscribe<v1::WakeEvent>(
      bus::topics::kVoiceWake,
      [this](const auto& m) {
        VB_LOG(kInfo) << "wake word '" << m.msg.phrase() << "' (score " << m.msg.score() << ") on " << m.device;
        if (!Known(std::string(m.device))) return;
        Report r;
        r.device = std::string(m.device);
        r.wake = true;
        r.score = m.msg.score();
        r.signal = MeasureWake(m.msg);
        r.at = Clock::now();
        r.wake_event = m.msg;
        Offer(std::move(r));
      },
      voices);
  // Requests (dialog.request): ours are push-to-talk, mode, interrupt and
  // prompts; the session takes the rest itself. A mode, an interrupt or a
  // prompt is handed on as an order (dialog.order; sounds to the device served).
  bus.Subscribe<v1::DialogRequest>(bus::topics::kDialogRequest, [this](const auto& m) {
    if (!bus::ForControl(m.msg)) return;
    auto now = Clock::now();
    const v1::DialogRequest r = m.msg;  // a copy: the dialog publishes before we ack
    ctx_->Count("requests");
    if (r.has_push_to_talk()) Ack(r.command_id(), dialog_->PushToTalk(r.push_to_talk().down(), now));
    else if (r.has_set_mode()) {
      const Verdict v = dialog_->SetMode(r.set_mode().mode(), now);
      if (v.result != v1::CommandAck::REFUSED) {
        v1::DialogCommand order;  // the session streams and detects turns by the mode
        *order.mutable_set_mode() = r.set_mode();
        Command(order);
      }
      Ack(r.command_id(), v);
    } else if (r.has_interrupt()) {
      v1::DialogCommand order;
      *order.mutable_interrupt() = r.interrupt();
      Command(order);
      Ack(r.command_id(), dialog_->InterruptObserved(r.interrupt().turn_id(), now));
    } else if (r.has_play_prompt()) {
      v1::DialogCommand order;
      *order.mutable_play_prompt() = r.play_prompt();
      Command(order);
      Ack(r.command_id(), {});
    }
    Reschedule();
  });
  if (hearing_->enabled()) {
    bus.Subscribe<v1::AudioFrame>(bus::topics::kAudioClean, [this](const auto&) {
      // Read in batches (below): a frame counts from when it was read, at
      // most kHearingBatch late, never early (a publish stamp, earlier by
      // the delivery's delay, made the watch report gaps that were not).
      hearing_->Frame(Clock::now());
      RescheduleHearing();
    });
    // The hearing watch needs to know that audio.clean flows, not each frame
    // at once: the stream plane (audio.clean is all control reads there) is
    // read every kHearingBatch and before each hearing deadline, not 50
    // times a second.
    bus.BatchPlane(bus::Plane::kStream, kHearingBatch);
  }
  bus.Subscribe<v1::Heartbeat>(bus::topics::kHeartbeat, [this](const auto& m) {
    if (m.msg.kind() == "wakevad") {
      auto w = m.msg.extra().find("wake_spotting");
      wakevad_seen_ = Clock::now();
      dialog_->WakeSpotting(w != m.msg.extra().end() && w->second != 0 && m.msg.state() != v1::Heartbeat::STOPPING,
                            Clock::now());
    }
    if (m.msg.actor() == "capture" || m.msg.actor() == "afe")
      hearing_->StageBeat(m.msg.actor(), m.msg.pid(), m.msg.state() == v1::Heartbeat::DEGRADED, Clock::now());
    auto it = health_.find(m.msg.actor());
    if (it == health_.end()) return;
    const std::string name = it->first;
    Health& h = it->second;
    const auto now = Clock::now();
    const bool restarted = h.peer.OnBeat(m.msg.pid(), m.msg.uptime_ms(), now) == PeerHealth::Beat::kRestarted;
    if (!h.alive && m.msg.state() != v1::Heartbeat::STOPPING) {
      h.alive = true;
      VB_LOG(kInfo) << name << " is up (pid " << h.peer.pid() << ")";
      dialog_->ActorHealth(name, true, now);
    }
    if (restarted) {
      VB_LOG(kWarn) << name << " restarted (pid " << h.peer.pid() << ")";
      ctx_->Count("actor_restart_" + name);
      dialog_->ActorRestarted(name, now);
    }
    if (name == "playback") {
      auto s = m.msg.extra().find("speaking");
      if (s != m.msg.extra().end()) dialog_->PlaybackSpeaking(s->second != 0, now);
    }
    Reschedule();
  });
  const PeerRule rule = PeerRule::FromTimeout(std::chrono::milliseconds(ctx.bus().config().heartbeat_ms),
                                              std::chrono::milliseconds(health_timeout_ms_));
  for (const auto& w : watch_) health_.emplace(w, Health{PeerHealth(rule)}).first->second.peer.Expect(Clock::now());
  RescheduleHealth();
  RescheduleHearing();

  if (!evdev_path_.empty()) {
    key_ = std::make_unique<EvdevKeySource>(evdev_path_, KeyCodeFromName(ptt_key_));
    ReopenKey();
    ctx.loop().AddTimer(std::chrono::seconds(2), [this] {
      if (!key_->is_open()) ReopenKey();
    });
  }
  return Status::Ok();
}

void ControlActor::ReopenKey() {
  if (Status st = key_->Open(); !st.ok()) {
    ctx_->Degraded("push-to-talk key device: " + st.message());
    return;
  }
  ctx_->Healthy();
  VB_LOG(kInfo) << "push-to-talk key on " << key_->path();
  key_group_ = ctx_->loop().AddFd(key_->fd(), POLLIN, [this](short) { OnKey(); });
}

void ControlActor::OnKey() {
  bool lost = false;
  auto key = key_->Read(&lost);
  if (key) {
    dialog_->PushToTalk(*key, Clock::now());
    Reschedule();
  }
  if (lost || !key_->is_open()) {
    ctx_->loop().RemovePollGroup(key_group_);
    if (lost) {
      VB_LOG(kWarn) << "push-to-talk key device " << key_->path() << " is gone; will reopen when it is back";
      ctx_->Count("key_device_lost");
      ctx_->Degraded("push-to-talk key device gone");
    }
  }
}

void ControlActor::CheckHealth() {
  auto now = Clock::now();
  if (wakevad_seen_ && now - *wakevad_seen_ > std::chrono::milliseconds(health_timeout_ms_)) {
    wakevad_seen_.reset();  // a silent spotter cannot wake: nothing to hold the uplink for
    dialog_->WakeSpotting(false, now);
    Reschedule();
  }
  const v1::DialogStateKind k = dialog_->kind();
  const int timeout = k == v1::STATE_THINKING || k == v1::STATE_SPEAKING
                          ? std::min(busy_timeout_ms_, health_timeout_ms_)
                          : health_timeout_ms_;
  for (auto& [name, h] : health_) {
    if (h.alive && h.peer.Silent(now, std::chrono::milliseconds(timeout))) {
      h.alive = false;
      VB_LOG(kWarn) << name << " is down: no heartbeat for " << timeout << " ms";
      ctx_->Count("actor_down_" + name);
      dialog_->ActorHealth(name, false, now);
      Reschedule();
    }
  }
}

void ControlActor::EarliestTimer::Set(bus::Loop& loop, std::optional<Clock::time_point> deadline,
                                      std::function<void()> fire) {
  if (id_ && deadline && at_ <= *deadline) return;
  if (id_) loop.CancelTimer(id_);
  id_ = 0;
  if (!deadline) return;
  at_ = *deadline;
  id_ = loop.AddOneShot(std::max(Clock::duration(0), at_ - Clock::now()) + std::chrono::milliseconds(1),
                        [this, fire = std::move(fire)] {
                          id_ = 0;
                          fire();
                        });
}

void ControlActor::RescheduleHealth() {
  const v1::DialogStateKind k = dialog_->kind();
  const auto timeout = std::chrono::milliseconds(k == v1::STATE_THINKING || k == v1::STATE_SPEAKING
                                                     ? std::min(busy_timeout_ms_, health_timeout_ms_)
                                                     : health_timeout_ms_);
  std::optional<Clock::time_point> next;
  auto consider = [&](Clock::time_point t) {
    if (!next || t < *next) next = t;
  };
  if (wakevad_seen_) consider(*wakevad_seen_ + std::chrono::milliseconds(health_timeout_ms_));
  for (const auto& [name, h] : health_)
    if (h.alive) consider(h.peer.last() + timeout);
  health_timer_.Set(ctx_->loop(), next, [this] {
    CheckHealth();
    RescheduleHealth();
  });
}

void ControlActor::Reschedule() {
  RescheduleHealth();
  if (dialog_timer_) ctx_->loop().CancelTimer(dialog_timer_);
  dialog_timer_ = 0;
  auto next = dialog_->NextDeadline();
  if (!next) return;
  auto delay = std::max(Clock::duration(0), *next - Clock::now()) + std::chrono::milliseconds(1);
  dialog_timer_ = ctx_->loop().AddOneShot(delay, [this] {
    dialog_timer_ = 0;
    dialog_->Tick(Clock::now());
    Reschedule();
  });
}

// One timer for the hearing deadline. Frames move the deadline on 50 times
// a second; the timer is not re-armed for each: when it fires early it is
// set again for the deadline of the moment.
void ControlActor::RescheduleHearing() {
  auto next = hearing_->NextDeadline();
  hearing_timer_.Set(ctx_->loop(), next, [this] {
    ctx_->bus().Drain(bus::Plane::kStream);  // the frames of the batch not read yet
    hearing_->Tick(Clock::now());
    RescheduleHearing();
  });
}

void ControlActor::PublishState(const v1::DialogState& state) {
  v1::DialogState s = state;
  if (!hearing_->hearing()) {
    s.set_deaf(true);
    s.set_deaf_reason(hearing_->reason());
    s.set_deaf_since_mono_ns(
        std::chrono::duration_cast<std::chrono::nanoseconds>(hearing_->deaf_since().time_since_epoch()).count());
  }
  s.set_device(Served());
  for (const auto& d : stood_down_) s.add_stood_down(d);
  s.set_arbitration(arbitration_why_);
  state_pub_.Publish(s, {.turn_id = s.turn_id()});
}

void ControlActor::StateChanged(const v1::DialogState& state) {
  VB_LOG(kInfo) << "state " << v1::DialogStateKind_Name(state.state()) << " (" << state.reason() << ")";
  hearing_->Listening(ListensOrWould(state), Clock::now());
  PublishState(state);
}

void ControlActor::HearingChanged(bool hearing, const std::string& reason) {
  if (hearing) {
    VB_LOG(kInfo) << "hearing again";
  } else {
    VB_LOG(kWarn) << reason;
    ctx_->Count("deaf_reports");
  }
  PublishState(dialog_->state());
  RescheduleHearing();
}

void ControlActor::RepeatCue(std::chrono::milliseconds deaf_for) {
  VB_LOG(kInfo) << "deaf for " << deaf_for.count() << " ms while listening: asking the person to repeat";
  ctx_->Count("repeat_cues");
  if (cue_.empty()) return;
  v1::DialogCommand c;
  c.mutable_play_prompt()->set_name(cue_);
  Command(c);
}

void ControlActor::Command(const v1::DialogCommand& in) {
  v1::DialogCommand cmd = in;
  // The session streams the device named, from_sample on in that device's
  // numbering (its own ring, or that device's vb-wakevad ring after a move).
  if (cmd.has_start_listening() && Arbitrates()) cmd.mutable_start_listening()->set_device(Served());
  if (cmd.has_start_listening()) switched_ = false;
  std::string turn = cmd.has_interrupt() ? cmd.interrupt().turn_id() : dialog_->state().turn_id();
  // Sounds and flushes are for the served device's speaker alone; the
  // session and decoder (our device) take the rest; an interrupt goes to both.
  const bool speaker = cmd.has_play_prompt() || cmd.has_flush() || cmd.has_interrupt();
  const bool ours = Served() == ctx_->device();
  if (!speaker || ours || cmd.has_interrupt()) command_pub_.Publish(cmd, {.turn_id = turn});
  if (speaker && !ours) {
    auto it = device_commands_.find(Served());
    if (it == device_commands_.end())
      it = device_commands_.emplace(Served(), ctx_->bus().Advertise(bus::topics::kDialogOrder, Served())).first;
    it->second.Publish(cmd, {.turn_id = turn});
  }
}

const std::string& ControlActor::Served() const { return served_.empty() ? ctx_->device() : served_; }

bool ControlActor::Known(const std::string& device) const {
  if (ctx_->devices().empty()) return device == ctx_->device();
  for (const auto& d : ctx_->devices())
    if (d == device) return true;
  return false;
}

void ControlActor::Offer(Report r) {
  if (auto d = arbiter_->Offer(std::move(r), Clock::now())) Apply(*d);
  RescheduleArbiter();
}

void ControlActor::RescheduleArbiter() {
  if (arbiter_timer_) ctx_->loop().CancelTimer(arbiter_timer_);
  arbiter_timer_ = 0;
  auto next = arbiter_->NextDeadline();
  if (!next) return;
  auto delay = std::max(Clock::duration(0), *next - Clock::now()) + std::chrono::milliseconds(1);
  arbiter_timer_ = ctx_->loop().AddOneShot(delay, [this] {
    arbiter_timer_ = 0;
    if (auto d = arbiter_->Tick(Clock::now())) Apply(*d);
    RescheduleArbiter();
  });
}

void ControlActor::Apply(const Decision& d) {
  const auto now = Clock::now();
  if (Arbitrates()) {
    stood_down_.clear();
    for (const auto& s : d.stood_down) stood_down_.push_back(s.device);
    arbitration_why_ = d.why;
    ctx_->Count("arbitrations");
    ctx_->Set("arbitration_ms", d.waited.count());
    if (!d.stood_down.empty()) ctx_->Count("stood_down", int64_t(d.stood_down.size()));
    VB_LOG(kInfo) << "arbitration after " << d.waited.count() << " ms: " << d.why;
    // A turn under way stays where it is: only a wake (barge-in) moves it.
    const bool busy = dialog_->kind() == v1::STATE_THINKING || dialog_->kind() == v1::STATE_SPEAKING;
    if (d.chosen.device != Served() && (!busy || d.chosen.wake)) {
      if (busy) dialog_->UserInterrupt(now);  // the old device's reply stops there
      served_ = d.chosen.device;
      switched_ = true;
    }
    // The session and decoder follow dialog.state.device: tell them before the dialog acts.
    PublishState(dialog_->state());
    // Continuous mode: the session streamed another device until now; it
    // moves to the chosen one from its speech's pre-roll on.
    if (!d.chosen.wake && switched_ && dialog_->kind() == v1::STATE_LISTENING) {
      v1::DialogCommand c;
      c.mutable_start_listening()->set_from_sample(d.chosen.vad_event.preroll_start_sample());
      Command(c);
    }
  }
  if (d.chosen.wake) dialog_->Wake(d.chosen.wake_event, now);
  // A wake moved the dialog and it opened no stream (continuous mode, or it
  // was streaming already): the session moves from the phrase's end on.
  if (d.chosen.wake && switched_ && dialog_->kind() == v1::STATE_LISTENING) {
    v1::DialogCommand c;
    c.mutable_start_listening()->set_from_sample(d.chosen.wake_event.end_sample());
    Command(c);
  }
  Reschedule();
}

void ControlActor::Ack(const std::string& command_id, const Verdict& verdict) {
  if (command_id.empty()) return;
  v1::CommandAck a;
  a.set_command_id(command_id);
  a.set_result(verdict.result);
  a.set_reason(verdict.reason);
  a.set_receiver(ctx_->name());
  ack_pub_.Publish(a);
  if (verdict.result == v1::CommandAck::REFUSED) VB_LOG(kInfo) << "refused a command: " << verdict.reason;
}

void ControlActor::TurnAbandoned(const std::string& turn_id, const std::string& why) {
  VB_LOG(kWarn) << "turn '" << turn_id << "' failed: " << why;
  ctx_->Count("turns_abandoned");
  v1::SessionEvent e;
  e.mutable_turn_ended()->set_outcome(v1::TurnEnded::FAILED);
  e.mutable_turn_ended()->set_error(why);
  session_pub_.Publish(e, {.turn_id = turn_id});
}

void ControlActor::TransitionRefused(v1::DialogStateKind from, v1::DialogStateKind to, const std::string& reason) {
  VB_LOG(kWarn) << "refused a transition the dialog does not allow: " << v1::DialogStateKind_Name(from) << " -> "
                << v1::DialogStateKind_Name(to) << " (" << reason << "); staying in "
                << v1::DialogStateKind_Name(from);  // counted in the heartbeat (transitions_refused)
}

void ControlActor::ReplyCut(const std::string& turn_id, const std::string& why) {
  VB_LOG(kWarn) << "turn '" << turn_id << "': " << why;
  ctx_->Count("replies_cut");
  v1::SessionEvent e;
  e.mutable_error()->set_code(kReplyCutCode);
  e.mutable_error()->set_message(why);
  e.mutable_error()->set_fatal(false);
  session_pub_.Publish(e, {.turn_id = turn_id});
}

void ControlActor::OnHeartbeat(bus::Context& ctx, v1::Heartbeat& hb) {
  PublishState(dialog_->state());
  (*hb.mutable_extra())["hearing"] = hearing_->hearing() ? 1 : 0;
  (*hb.mutable_extra())["longest_deaf_ms"] = hearing_->longest_deaf_ms();
  (*hb.mutable_extra())["barge_ins"] = int64_t(dialog_->barge_ins());
  (*hb.mutable_extra())["late_speech"] = int64_t(dialog_->late_speech());
  (*hb.mutable_extra())["client_vad_held_off"] = int64_t(dialog_->vad_held_off());
  (*hb.mutable_extra())["recovering"] = dialog_->recovering() ? 1 : 0;
  (*hb.mutable_extra())["wake_cuts"] = int64_t(dialog_->wake_cuts());
  (*hb.mutable_extra())["transitions_refused"] = int64_t(dialog_->transitions_refused());
  (*hb.mutable_extra())["uplink_guard"] = dialog_->guard_on() ? 1 : 0;
  (*hb.mutable_extra())["arbitration_late"] = int64_t(arbiter_->late());
  for (const auto& [name, h] : health_) {
    (*hb.mutable_extra())["alive_" + name] = h.alive ? 1 : 0;
    (*hb.mutable_extra())["restarts_" + name] = int64_t(h.peer.restarts());
  }
}

}  // namespace vb::control
