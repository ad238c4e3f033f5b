// The topic table: every topic of the bus, its payload type and its plane.
// This is the one header where topic names live. A topic on the wire is
// "<base>/<device>"; subscribing to "<base>/" hears every device.
//
// Typing: Topic<M> carries its payload type, so publishing the wrong payload
// on a topic does not compile (see tests/unit/bus/compile_fail_*.cc).
#pragma once

#include <array>
#include <string_view>

#include "vb/v1/audio.pb.h"
#include "vb/v1/chat.pb.h"
#include "vb/v1/dialog.pb.h"
#include "vb/v1/health.pb.h"
#include "vb/v1/tools.pb.h"
#include "vb/v1/voice.pb.h"

namespace vb::bus {

// Streams may drop stale messages under load (small high-water mark);
// control messages may not (large high-water mark, separate sockets).
enum class Plane { kStream = 0, kControl = 1 };

template <class M>
struct Topic {
  using Payload = M;
  std::string_view base;
  Plane plane;
};

namespace topics {
// Audio: PCM s16le 16 kHz mono 20 ms frames unless the frame says otherwise.
inline constexpr Topic<v1::AudioFrame> kAudioMic{"audio.mic", Plane::kStream};
inline constexpr Topic<v1::AudioFrame> kAudioClean{"audio.clean", Plane::kStream};
inline constexpr Topic<v1::AudioFrame> kAudioRef{"audio.ref", Plane::kStream};
inline constexpr Topic<v1::AudioFrame> kAudioOut{"audio.out", Plane::kStream};
// Downlink: one encoded packet per message as the agent sent it.
inline constexpr Topic<v1::EncodedAudio> kSessionAudio{"session.audio", Plane::kStream};
// Events and commands: never dropped on purpose.
inline constexpr Topic<v1::SessionEvent> kSessionEvent{"session.event", Plane::kControl};
inline constexpr Topic<v1::VadEvent> kVoiceVad{"voice.vad", Plane::kControl};
inline constexpr Topic<v1::WakeEvent> kVoiceWake{"voice.wake", Plane::kControl};
inline constexpr Topic<v1::DialogState> kDialogState{"dialog.state", Plane::kControl};
// Requests to vb-control and vb-session from everyone else; vb-control's
// orders to the session, playback and decoder (proto/vb/v1/dialog.proto).
inline constexpr Topic<v1::DialogRequest> kDialogRequest{"dialog.request", Plane::kControl};
inline constexpr Topic<v1::DialogCommand> kDialogOrder{"dialog.order", Plane::kControl};
inline constexpr Topic<v1::CommandAck> kDialogAck{"dialog.ack", Plane::kControl};
inline constexpr Topic<v1::PlaybackEvent> kPlaybackEvent{"playback.event", Plane::kControl};
inline constexpr Topic<v1::Heartbeat> kHeartbeat{"actor.heartbeat", Plane::kControl};
// Backfill: a restarted session asks (control plane) for the audio.clean it
// missed; the holder of the ring answers with the frames (stream plane).
inline constexpr Topic<v1::BackfillRequest> kSessionBackfill{"session.backfill", Plane::kControl};
inline constexpr Topic<v1::AudioBackfill> kAudioBackfill{"audio.backfill", Plane::kStream};
// Tools (proto/vb/v1/tools.proto): providers offer tools, the registry
// (vb-tools) invokes them and publishes what it can answer.
inline constexpr Topic<v1::ToolOffer> kToolOffer{"tool.offer", Plane::kControl};
inline constexpr Topic<v1::ToolInvocation> kToolInvoke{"tool.invoke", Plane::kControl};
inline constexpr Topic<v1::ToolAnswer> kToolAnswer{"tool.answer", Plane::kControl};
inline constexpr Topic<v1::ToolCatalog> kToolCatalog{"tool.catalog", Plane::kControl};
// Speaker volume: commands to vb-playback, and its level.
inline constexpr Topic<v1::VolumeCommand> kPlaybackVolume{"playback.volume", Plane::kControl};
inline constexpr Topic<v1::VolumeLevel> kPlaybackLevel{"playback.level", Plane::kControl};
// Text chats (proto/vb/v1/chat.proto): a client asks vb-session for a chat in
// its own conversation; the chat's events come back correlated by request_id.
inline constexpr Topic<v1::TextChatRequest> kChatRequest{"chat.request", Plane::kControl};
inline constexpr Topic<v1::TextChatEvent> kChatEvent{"chat.event", Plane::kControl};

// All bases, for the compile-time checks below and for tools.
inline constexpr std::array<std::string_view, 24> kAllBases = {
    kAudioMic.base,       kAudioClean.base,    kAudioRef.base,    kAudioOut.base,    kSessionAudio.base,
    kSessionEvent.base,   kVoiceVad.base,      kVoiceWake.base,   kDialogState.base, kDialogRequest.base,
    kDialogOrder.base,    kPlaybackEvent.base, kHeartbeat.base,   kDialogAck.base,   kSessionBackfill.base,
    kAudioBackfill.base,  kToolOffer.base,     kToolInvoke.base,  kToolAnswer.base,  kToolCatalog.base,
    kPlaybackVolume.base, kPlaybackLevel.base, kChatRequest.base, kChatEvent.base};
}  // namespace topics

namespace detail {
constexpr bool StartsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(0, p.size()) == p;
}
// No base may be a prefix of another (ZeroMQ filters by prefix) and none may
// contain the device separator.
constexpr bool TopicTableIsSound() {
  for (size_t i = 0; i < topics::kAllBases.size(); ++i) {
    if (topics::kAllBases[i].find('/') != std::string_view::npos) return false;
    for (size_t j = 0; j < topics::kAllBases.size(); ++j) {
      if (i != j && StartsWith(topics::kAllBases[i], topics::kAllBases[j])) return false;
    }
  }
  return true;
}
}  // namespace detail
static_assert(detail::TopicTableIsSound(), "topic table: a base is a prefix of another, repeated, or contains '/'");

}  // namespace vb::bus
