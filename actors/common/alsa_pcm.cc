// ALSA PCM sources and sinks (see alsa_pcm.h).
#include "actors/common/alsa_pcm.h"

#include <alsa/asoundlib.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace vb::audio {
namespace {

// libasound prints its own errors to stderr on every failed open (e.g. each
// retry while a sound server is down). The caller reports failures once from
// the returned Status, so its lines only go to the debug log.
void QuietAlsaErrors(const char* file, int line, const char* function, int err, const char* fmt, ...) {}

void InstallQuietErrorHandler() {
  static bool done = [] {
    snd_lib_error_set_handler(&QuietAlsaErrors);
    return true;
  }();
  (void)done;
}

}  // namespace

Status AlsaPcm::Fail(const char* what, int err) {
  std::string msg =
      std::string(capture_ ? "capture " : "playback ") + config_.device + ": " + what + ": " + snd_strerror(err);
  Close();
  return Status::Unavailable(msg);
}

Status AlsaPcm::Open() {
  InstallQuietErrorHandler();
  Close();
  int err = snd_pcm_open(&pcm_, config_.device.c_str(), capture_ ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK,
                         SND_PCM_NONBLOCK);
  if (err < 0) {
    pcm_ = nullptr;
    return Fail("open", err);
  }
  snd_pcm_hw_params_t* hw;
  snd_pcm_hw_params_alloca(&hw);
  unsigned rate = config_.sample_rate, channels = config_.channels;
  unsigned period_us = config_.period_us, buffer_us = config_.buffer_us;
  int dir = 0;
  if ((err = snd_pcm_hw_params_any(pcm_, hw)) < 0) return Fail("hw_params_any", err);
  if ((err = snd_pcm_hw_params_set_access(pcm_, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0) return Fail("set access", err);
  if ((err = snd_pcm_hw_params_set_format(pcm_, hw, SND_PCM_FORMAT_S16_LE)) < 0) return Fail("set format S16_LE", err);
  // Capture converts in our code (speexdsp) when the device cannot give the
  // rate; playback lets ALSA resample so the engine's clock stays exact.
  snd_pcm_hw_params_set_rate_resample(pcm_, hw, capture_ ? 0 : 1);
  if ((err = snd_pcm_hw_params_set_channels_near(pcm_, hw, &channels)) < 0) return Fail("set channels", err);
  if ((err = snd_pcm_hw_params_set_rate_near(pcm_, hw, &rate, &dir)) < 0) return Fail("set rate", err);
  if ((err = snd_pcm_hw_params_set_buffer_time_near(pcm_, hw, &buffer_us, &dir)) < 0)
    return Fail("set buffer time", err);
  if ((err = snd_pcm_hw_params_set_period_time_near(pcm_, hw, &period_us, &dir)) < 0)
    return Fail("set period time", err);
  if ((err = snd_pcm_hw_params(pcm_, hw)) < 0) return Fail("hw_params", err);
  snd_pcm_uframes_t period = 0, buffer = 0;
  snd_pcm_hw_params_get_period_size(hw, &period, &dir);
  snd_pcm_hw_params_get_buffer_size(hw, &buffer);
  period_frames_ = period;
  buffer_frames_ = buffer;
  format_ = {rate, channels};

  snd_pcm_sw_params_t* sw;
  snd_pcm_sw_params_alloca(&sw);
  if ((err = snd_pcm_sw_params_current(pcm_, sw)) < 0) return Fail("sw_params_current", err);
  snd_pcm_sw_params_set_avail_min(pcm_, sw, period);
  // Playback starts once two periods are queued (the caller fills the
  // buffer at once, so that is microseconds after the first write): after
  // an underrun on a stalled machine the stream does not restart with one
  // period to spare and underrun again at once, over and over. Capture is
  // started explicitly below.
  snd_pcm_sw_params_set_start_threshold(pcm_, sw, capture_ ? buffer * 2 : std::min(buffer, 2 * period));
  if ((err = snd_pcm_sw_params(pcm_, sw)) < 0) return Fail("sw_params", err);
  if ((err = snd_pcm_prepare(pcm_)) < 0) return Fail("prepare", err);
  if (capture_ && (err = snd_pcm_start(pcm_)) < 0) return Fail("start", err);
  return Status::Ok();
}

void AlsaPcm::Close() {
  if (pcm_) {
    snd_pcm_drop(pcm_);
    snd_pcm_close(pcm_);
    pcm_ = nullptr;
  }
}

std::vector<pollfd> AlsaPcm::PollFds() {
  std::vector<pollfd> fds;
  if (!pcm_) return fds;
  int n = snd_pcm_poll_descriptors_count(pcm_);
  if (n <= 0) return fds;
  fds.resize(size_t(n));
  n = snd_pcm_poll_descriptors(pcm_, fds.data(), unsigned(n));
  fds.resize(size_t(std::max(n, 0)));
  return fds;
}

bool AlsaPcm::Ready(std::span<const pollfd> fds) {
  if (!pcm_) return false;
  revents_fds_.assign(fds.begin(), fds.end());
  unsigned short revents = 0;
  if (snd_pcm_poll_descriptors_revents(pcm_, revents_fds_.data(), unsigned(revents_fds_.size()), &revents) < 0)
    return true;
  return (revents & (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLNVAL)) != 0;
}

bool AlsaPcm::Recover(int err) {
  if (err != -EPIPE && err != -ESTRPIPE) return false;
  ++xruns_;
  if (snd_pcm_recover(pcm_, err, 1) < 0) return false;
  if (capture_ && snd_pcm_start(pcm_) < 0) return false;
  return true;
}

Status AlsaPcm::AvailDelay(size_t* avail, int64_t* delay) {
  *avail = 0;
  *delay = 0;
  if (!pcm_) return Status::Unavailable("device not open");
  snd_pcm_sframes_t a = snd_pcm_avail_update(pcm_);
  if (a < 0) {
    if (!Recover(int(a))) return Fail("avail", int(a));
    a = snd_pcm_avail_update(pcm_);
    if (a < 0) return Fail("avail after recovery", int(a));
  }
  // A device that vanished while its state stays "running" (ioplug/pulse).
  if (snd_pcm_state(pcm_) == SND_PCM_STATE_DISCONNECTED) return Fail("state", -ENODEV);
  *avail = size_t(a);
  // The delay is not an error source: some plugins (pulse) cannot tell it
  // until the stream has timing information; estimate it from the fill.
  snd_pcm_sframes_t d = 0;
  const snd_pcm_sframes_t fill = std::max<snd_pcm_sframes_t>(snd_pcm_sframes_t(buffer_frames_) - a, 0);
  if (snd_pcm_delay(pcm_, &d) < 0 || d < 0) d = capture_ ? a : fill;
  // Playback: what is queued has not played, whatever a plugin says (pulse
  // reports too little for a stream it has just restarted).
  if (!capture_) d = std::max(d, fill);
  *delay = d;
  return Status::Ok();
}

Status AlsaPcm::Read(int16_t* out, size_t max_frames, size_t* frames, int64_t* delay_frames) {
  *frames = 0;
  size_t avail;
  int64_t delay;
  if (Status st = AvailDelay(&avail, &delay); !st.ok()) return st;
  if (capture_ && buffer_frames_ > 0 && avail + 1 >= buffer_frames_ && !dropping_) {
    // A full buffer is an overrun even where the plugin (pulse) keeps
    // buffering behind it instead of saying so (it shows buffer - 1 frames
    // available, again and again): that backlog is stale. Drop it, across
    // reads, until what is queued fits the buffer again.
    ++xruns_;
    dropping_ = true;
  }
  if (dropping_) {
    std::vector<int16_t> scratch(std::max<size_t>(avail, 1) * format_.channels);
    if (avail > 0 && snd_pcm_readi(pcm_, scratch.data(), avail) < 0) return Fail("read", -EIO);
    snd_pcm_sframes_t d = 0;
    if (snd_pcm_delay(pcm_, &d) < 0 || d <= int64_t(buffer_frames_) / 2) dropping_ = false;
    if (delay_frames) *delay_frames = 0;
    return Status::Ok();
  }
  size_t want = std::min(avail, max_frames);
  if (want == 0) {
    if (delay_frames) *delay_frames = delay;
    return Status::Ok();
  }
  snd_pcm_sframes_t n = snd_pcm_readi(pcm_, out, want);
  if (n == -EAGAIN) n = 0;
  if (n < 0) {
    if (!Recover(int(n))) return Fail("read", int(n));
    n = 0;
  }
  *frames = size_t(n);
  if (delay_frames) *delay_frames = std::max<int64_t>(delay - n, 0);
  return Status::Ok();
}

Status AlsaPcm::Write(const int16_t* in, size_t frames, size_t* written, int64_t* delay_frames) {
  *written = 0;
  if (!pcm_) return Status::Unavailable("device not open");
  // The delay only when asked: through a plugin (pulse) each query locks
  // and asks the sound server's stream, at every period.
  snd_pcm_sframes_t d = 0;
  if (delay_frames && snd_pcm_delay(pcm_, &d) < 0) d = 0;
  snd_pcm_sframes_t n = snd_pcm_writei(pcm_, in, frames);
  if (n == -EAGAIN) n = 0;
  if (n < 0) {
    if (!Recover(int(n))) return Fail("write", int(n));
    d = 0;
    n = snd_pcm_writei(pcm_, in, frames);
    if (n == -EAGAIN) n = 0;
    if (n < 0) return Fail("write after recovery", int(n));
  }
  *written = size_t(n);
  if (delay_frames) *delay_frames = std::max<snd_pcm_sframes_t>(d, 0);
  return Status::Ok();
}

Status AlsaPcm::Drop() {
  if (!pcm_) return Status::Unavailable("device not open");
  int err = snd_pcm_drop(pcm_);
  if (err < 0) return Fail("drop", err);
  if ((err = snd_pcm_prepare(pcm_)) < 0) return Fail("prepare after drop", err);
  return Status::Ok();
}

}  // namespace vb::audio
