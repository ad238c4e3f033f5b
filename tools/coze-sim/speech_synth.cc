// Implementation of speech_synth.h.
#include "tools/coze-sim/speech_synth.h"

#include <espeak-ng/speak_lib.h>

#include <algorithm>
#include <mutex>

namespace vb::cozesim {
namespace {

std::mutex g_mutex;
int g_rate = 0;  // 0 = not initialized, <0 = failed

int OnSamples(short* wav, int n, espeak_EVENT* events) {
  auto* out = static_cast<std::vector<int16_t>*>(events ? events->user_data : nullptr);
  if (out && wav && n > 0) out->insert(out->end(), wav, wav + n);
  return 0;
}

bool InitLocked(std::string* error) {
  if (g_rate > 0) return true;
  if (g_rate < 0) {
    if (error) *error = "espeak-ng failed to initialize";
    return false;
  }
  int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, 0);
  if (rate <= 0) {
    g_rate = -1;
    if (error) *error = "espeak-ng failed to initialize (espeak-ng-data missing?)";
    return false;
  }
  espeak_SetSynthCallback(OnSamples);
  g_rate = rate;
  return true;
}

}  // namespace

bool SpeechSynth::Init(std::string* error) {
  std::lock_guard lock(g_mutex);
  return InitLocked(error);
}

int SpeechSynth::SampleRate() {
  std::lock_guard lock(g_mutex);
  return g_rate > 0 ? g_rate : 22050;
}

std::vector<int16_t> SpeechSynth::Speak(const std::string& text, int speech_rate, const std::string& voice) {
  std::lock_guard lock(g_mutex);
  std::vector<int16_t> out;
  if (!InitLocked(nullptr) || text.empty()) return out;
  // Coze's speech_rate is a percentage change; espeak-ng wants words/minute.
  int wpm = std::clamp(175 * (100 + std::clamp(speech_rate, -50, 100)) / 100, 80, 450);
  espeak_SetVoiceByName(voice.c_str());
  espeak_SetParameter(espeakRATE, wpm, 0);
  espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, &out);
  espeak_Synchronize();
  return out;
}

}  // namespace vb::cozesim
