// Implementation of worker.h.
#include "tools/coze-sim/worker.h"

#include "tools/coze-sim/speech_synth.h"

namespace vb::cozesim {

Worker::Worker(RecognizerOptions opts, int recognizer_threads, std::function<void()> wake)
    : opts_(std::move(opts)), wake_(std::move(wake)) {
  loading_ = recognizer_threads;
  threads_.emplace_back([this] { SynthLoop(); });
  for (int i = 0; i < recognizer_threads; ++i) threads_.emplace_back([this] { RecogLoop(); });
}

Worker::~Worker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_synth_.notify_all();
  cv_recog_.notify_all();
  for (auto& t : threads_) t.join();
}

std::string Worker::WaitReady() {
  std::unique_lock lock(mu_);
  cv_ready_.wait(lock, [this] { return loading_ == 0; });
  return load_error_;
}

bool Worker::SubmitSynth(uint64_t session_id, uint64_t job, const std::string& text, int speech_rate) {
  {
    std::lock_guard lock(mu_);
    if (synth_q_.size() >= kMaxSynthJobs) return false;
    synth_q_.push_back({session_id, job, text, speech_rate});
  }
  cv_synth_.notify_one();
  return true;
}

bool Worker::SubmitRecognize(uint64_t session_id, uint64_t job, std::vector<int16_t> pcm) {
  {
    std::lock_guard lock(mu_);
    if (recog_q_.size() >= kMaxRecognizeJobs) return false;
    recog_q_.push_back({session_id, job, std::move(pcm)});
  }
  cv_recog_.notify_one();
  return true;
}

void Worker::Drain(std::vector<WorkResult>* out) {
  std::lock_guard lock(mu_);
  for (auto& r : done_) out->push_back(std::move(r));
  done_.clear();
}

void Worker::Complete(WorkResult r) {
  {
    std::lock_guard lock(mu_);
    done_.push_back(std::move(r));
  }
  wake_();
}

void Worker::SynthLoop() {
  std::string err;
  SpeechSynth::Init(&err);
  for (;;) {
    SynthJob job;
    {
      std::unique_lock lock(mu_);
      cv_synth_.wait(lock, [this] { return stop_ || !synth_q_.empty(); });
      if (stop_) return;
      job = std::move(synth_q_.front());
      synth_q_.pop_front();
    }
    WorkResult r{WorkResult::kSynth, job.session_id, job.job, {}, SpeechSynth::SampleRate(), {}};
    r.pcm = SpeechSynth::Speak(job.text, job.rate);
    Complete(std::move(r));
  }
}

void Worker::RecogLoop() {
  std::string err;
  auto rec = Recognizer::Create(opts_, &err);
  {
    std::lock_guard lock(mu_);
    if (!rec && load_error_.empty()) load_error_ = err;
    --loading_;
  }
  cv_ready_.notify_all();
  for (;;) {
    RecogJob job;
    {
      std::unique_lock lock(mu_);
      cv_recog_.wait(lock, [this] { return stop_ || !recog_q_.empty(); });
      if (stop_) return;
      job = std::move(recog_q_.front());
      recog_q_.pop_front();
    }
    WorkResult r{WorkResult::kRecognize, job.session_id, job.job, {}, 0, {}};
    if (rec) r.recognition = rec->Recognize(job.pcm);
    Complete(std::move(r));
  }
}

}  // namespace vb::cozesim
