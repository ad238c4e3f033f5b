// PlaybackCore: the logic of vb-playback, with no bus and no ZeroMQ. Decoded
// speech (any rate, any channels) goes into a PlaybackEngine (jitter buffer,
// flush with a fade, prompts); a PcmPump (pacing, watchdog, device loss and
// recovery) pulls it out to one PcmSink (ALSA device, PulseAudio with a
// rewritable queue, or WAV file; tests: a fault-injecting fake) at the device's pace, scaled by the volume. What
// reached the speaker comes out as 16 kHz reference frames stamped with when
// they leave it, and the engine's events as PlaybackEvents. The adapter
// (playback_actor.cc) maps all of it to and from the bus.
//
// Loop thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/common/alsa_pcm.h"
#include "actors/common/pcm_framer.h"
#include "actors/common/pcm_pump.h"
#include "actors/common/pulse_pcm.h"
#include "actors/common/resampler.h"
#include "actors/playback/playback_engine.h"
#include "actors/playback/prompts.h"
#include "vb/v1/dialog.pb.h"
#include "vb/v1/tools.pb.h"

namespace vb::playback {

struct PlaybackOptions {
  enum class Sink { kAlsa, kPulse, kWav };
  Sink sink = Sink::kAlsa;
  EngineConfig engine;  // its rate is the playback rate
  uint32_t period_ms = 5;
  int volume = 100;  // percent
  std::vector<std::pair<std::string, std::string>> prompt_files;
  audio::AlsaConfig alsa;
  audio::PulseConfig pulse;  // sink: pulse (its period_us is the render block and the wake-up)
  bool drop_on_flush = false;
  // ALSA: stop the device after this long with nothing to play (0: never;
  // it then plays silence between turns).
  uint32_t idle_stop_ms = 0;
  std::string wav_path;
  bool wav_realtime = true, wav_keep_idle = false;
  int reopen_min_ms = 250, reopen_max_ms = 2000;
};

class PlaybackCore {
 public:
  struct Outputs {
    std::function<void(const v1::AudioFrame& frame, int64_t origin_ns)> ref;  // audio.ref
    std::function<void(const v1::PlaybackEvent& event)> event;                // playback.event
    std::function<void(const std::string& why)> lost;  // the device is gone (the actor is degraded)
    std::function<void()> back;
    std::function<void()> error;  // one error (malformed input, a refused write)
  };
  // `sink`: tests pass a fake; otherwise made from the options.
  PlaybackCore(PlaybackOptions options, audio::PumpLoop& loop, Outputs out,
               std::unique_ptr<audio::PcmSink> sink = nullptr);

  // Loads the prompt files and opens a WAV sink (errors are config errors).
  Status Init();
  void Start();
  void Stop();

  // audio.out: a frame of `turn_id`. False: malformed (counted, dropped).
  bool OnAudio(const v1::AudioFrame& frame, const std::string& turn_id, int64_t origin_ns);
  // Interrupt, Flush, PlayPrompt (other commands are not playback's).
  void OnCommand(const v1::DialogCommand& cmd);
  // TurnEnded CANCELLED: as an Interrupt of that turn.
  void OnTurnCancelled(const std::string& turn_id);
  // playback.volume: returns the volume now (percent).
  uint32_t OnVolume(const v1::VolumeCommand& cmd);
  uint32_t volume() const { return uint32_t(volume_); }

  void Figures(std::map<std::string, int64_t>* out) const;
  std::string Describe() const;
  std::string DeviceName() const;
  const PlaybackEngine& engine() const { return *engine_; }
  const audio::PcmPump& pump() const { return *pump_; }

 private:
  bool offline() const { return options_.sink == PlaybackOptions::Sink::kWav && !options_.wav_realtime; }
  bool Render(int16_t* out, size_t n, int64_t now, int64_t play_ns);
  void Played(const int16_t* pcm, size_t n, int64_t play_ns);
  void RenderOffline();
  void TrackIdle(bool audible, int64_t now);
  void Wake();
  void ApplyVolume(int16_t* pcm, size_t n) const;
  void PublishEvents();
  void PublishEvent(v1::PlaybackEvent::Kind kind, const std::string& turn, const std::string& detail,
                    int64_t latency = 0);

  PlaybackOptions options_;
  audio::PumpLoop& loop_;
  uint32_t rate_;
  int volume_;
  Outputs out_;
  std::unique_ptr<PlaybackEngine> engine_;
  PromptLibrary prompts_;
  audio::PcmFramer ref_framer_;
  audio::Resampler in_resampler_;
  std::vector<int16_t> mono_, resampled_;
  std::unique_ptr<audio::PcmPump> pump_;
  bool last_audible_ = false;
  // Rewritable sink: frames at the end of what was written that are only
  // the engine's silence (no speech, fade or prompt): new audio replaces
  // them instead of waiting behind them.
  size_t filler_tail_ = 0;
  int64_t idle_since_ns_ = 0;  // first render of only silence with nothing to play (0: playing)
  bool park_posted_ = false;
  int64_t last_origin_ns_ = 0;
  uint64_t malformed_ = 0, unknown_prompts_ = 0;
  bool logged_format_ = false;
  RateLimit rate_log_;
};

}  // namespace vb::playback
