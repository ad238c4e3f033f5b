// Echo scenes for tests and the bench: a synthetic room (direct path plus an
// exponentially decaying noise tail of a given RT60), a mildly nonlinear
// loudspeaker, a delay, near-end noise and talk; and the measures taken on
// the result (ERLE, attenuation of the near end, convergence). Offline and
// deterministic: every random signal comes from a seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vb::afe::sim {

// Direct path of gain 1 at index 0 and a diffuse tail starting after a few
// ms whose level decays by 60 dB in rt60_s; direct_to_reverb_db sets the
// tail's energy relative to the direct path.
std::vector<float> RoomImpulse(int rate, double rt60_s, double direct_to_reverb_db, uint32_t seed);

// y = x * h (same length as x: the tail past the end is cut).
std::vector<float> Convolve(const std::vector<float>& x, const std::vector<float>& h);

// A loudspeaker driven near its limit: tanh soft clipping, normalised so
// small signals pass with gain 1. drive 0 = linear.
std::vector<float> SoftClip(const std::vector<float>& x, double drive);

// Gaussian white noise with the given RMS.
std::vector<float> Noise(size_t n, double rms, uint32_t seed);

// Speech-like test signal without speech synthesis: voiced syllables
// (harmonics under two formants) in phrases separated by pauses.
std::vector<float> Babble(size_t n, int rate, double rms, uint32_t seed);

std::vector<float> ToFloat(const std::vector<int16_t>& x);  // s16 → [-1, 1)
std::vector<int16_t> ToS16(const std::vector<float>& x);    // saturating
double Rms(const std::vector<float>& x);
void Scale(std::vector<float>* x, double gain);
// x delayed by `samples` (zeros in front), same length.
std::vector<float> Delay(const std::vector<float>& x, size_t samples);

// Mean power (dB re full scale) of x over [from, to) samples, counting only
// the 20 ms frames whose `gate` power is above gate_db (gate empty: all).
double PowerDb(const std::vector<float>& x, size_t from, size_t to, const std::vector<float>& gate = {},
               double gate_db = -200, int rate = 16000);

// Echo return loss enhancement over [from, to): mic power / output power, on
// the frames where the echo alone is above echo_gate_db.
double Erle(const std::vector<float>& mic, const std::vector<float>& out, const std::vector<float>& echo, size_t from,
            size_t to, double echo_gate_db, int rate = 16000);

// Seconds from `from` until the ERLE over a sliding window (window_s of
// echo-active audio) first reaches target_db; negative if it never does.
double ConvergenceSeconds(const std::vector<float>& mic, const std::vector<float>& out, const std::vector<float>& echo,
                          size_t from, size_t to, double target_db, double window_s, double echo_gate_db,
                          int rate = 16000);

}  // namespace vb::afe::sim
