// Worker threads for the slow work of every session: one thread for speech
// synthesis (espeak-ng is not thread-safe) and a few for recognition (each
// with its own pocketsphinx decoder). Jobs wait in bounded queues; results
// wait in a completion list that the event loop drains after being woken by
// `wake` (the server passes a lambda calling lws_cancel_service).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tools/coze-sim/recognizer.h"
#include "tools/coze-sim/services.h"

namespace vb::cozesim {

struct WorkResult {
  enum Kind { kSynth, kRecognize } kind;
  uint64_t session_id = 0, job = 0;
  std::vector<int16_t> pcm;  // kSynth
  int rate = 0;
  RecognitionResult recognition;  // kRecognize
};

class Worker : public Services {
 public:
  static constexpr size_t kMaxSynthJobs = 256;
  static constexpr size_t kMaxRecognizeJobs = 64;

  Worker(RecognizerOptions opts, int recognizer_threads, std::function<void()> wake);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  bool SubmitSynth(uint64_t session_id, uint64_t job, const std::string& text, int speech_rate) override;
  bool SubmitRecognize(uint64_t session_id, uint64_t job, std::vector<int16_t> pcm16k) override;
  void Drain(std::vector<WorkResult>* out);
  // Blocks until every recognizer has loaded its model (or failed).
  std::string WaitReady();

 private:
  struct SynthJob {
    uint64_t session_id, job;
    std::string text;
    int rate;
  };
  struct RecogJob {
    uint64_t session_id, job;
    std::vector<int16_t> pcm;
  };
  void SynthLoop();
  void RecogLoop();
  void Complete(WorkResult r);

  RecognizerOptions opts_;
  std::function<void()> wake_;
  std::mutex mu_;
  std::condition_variable cv_synth_, cv_recog_, cv_ready_;
  std::deque<SynthJob> synth_q_;
  std::deque<RecogJob> recog_q_;
  std::vector<WorkResult> done_;
  int loading_ = 0;
  std::string load_error_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace vb::cozesim
