// vb-wakevad-eval: measures vb-wakevad's logic on a labelled corpus made by
// make_corpus.sh, and prints one JSON document.
//
//   vb-wakevad-eval vad  --corpus DIR [--detectors energy,speex,webrtc]
//       frame accuracy, onset/offset latency, misses and false starts per
//       detector and SNR (labels come from each file's clean speech track)
//   vb-wakevad-eval wake --corpus DIR [--phrases "hey computer,…"]
//       [--thresholds 1e-20,1e-12,…] [--phone-loop 1e-10] [--max-neg-s N]
//       [--conditions pink10,…] [--neg-conditions clean,…] [--comfort-noise-dbfs -50] [--spot-all 1]
//       [--verify 0|1] [--verify-margins -1e9,-80,…] [--verify-pad-ms 300]
//       [--verify-word-beam 1e-48] [--end-settle-ms 600]
//       [--afe speex|webrtc [--afe-agc 0] [--afe-ns 0]]
//       detection rate per SNR, false accepts per hour on the non-wake
//       speech, detection latency (the spotter's, and when the event goes
//       out), per phrase, threshold and verifier margin
//   vb-wakevad-eval spot --wav FILE [--phrase P] [--threshold T] …
//       detections in one file (for listening to what fired)
//
// The corpus manifest (manifest.tsv) has one line per file:
//   kind<TAB>phrase<TAB>condition<TAB>snr_db<TAB>mix.wav<TAB>clean.wav<TAB>labels.tsv
// kind is pos (wake phrases, labels = phrase start/end samples), neg (no
// wake phrase: ordinary speech, for false accepts per hour) or near (near-miss
// phrases, counted apart). Paths are relative to DIR.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "actors/afe/front_end.h"
#include "actors/common/wav.h"
#include "actors/wakevad/voice_pipeline.h"

namespace vb::wakevad {
namespace {

using nlohmann::json;

struct Item {
  std::string kind, phrase, condition;
  double snr_db = 0;
  std::string mix, clean, labels;
};

struct Args {
  std::map<std::string, std::string> kv;
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  double Num(const std::string& k, double def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::stod(it->second);
  }
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep))
    if (!part.empty()) out.push_back(part);
  return out;
}

bool LoadManifest(const std::string& dir, std::vector<Item>* items) {
  std::ifstream in(dir + "/manifest.tsv");
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    auto f = Split(line, '\t');
    if (f.size() < 7 || f[0][0] == '#') continue;
    items->push_back({f[0], f[1], f[2], std::stod(f[3]), dir + "/" + f[4], dir + "/" + f[5], dir + "/" + f[6]});
  }
  return true;
}

bool Load(const std::string& path, std::vector<int16_t>* pcm) {
  audio::PcmBuffer b;
  Status s = audio::ReadWav(path, &b);
  if (!s.ok() || b.sample_rate != uint32_t(kSampleRate) || b.channels != 1) {
    std::cerr << "cannot use " << path << ": " << (s.ok() ? "not 16 kHz mono" : s.message()) << "\n";
    return false;
  }
  *pcm = std::move(b.samples);
  return true;
}

std::vector<std::pair<uint64_t, uint64_t>> LoadLabels(const std::string& path) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::ifstream in(path);
  uint64_t a, b;
  while (in >> a >> b) out.push_back({a, b});
  return out;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(q * (v.size() - 1) + 0.5));
  return v[i];
}

json Stats(const std::vector<double>& v) {
  if (v.empty()) return json{{"n", 0}};
  return json{
      {"n", v.size()}, {"median", Percentile(v, 0.5)}, {"p90", Percentile(v, 0.9)}, {"max", Percentile(v, 1.0)}};
}

// Speech segments of a clean track: 20 ms frames above -50 dBFS, gaps
// shorter than the tracker's min_silence_ms closed (by definition a pause
// that short does not end a segment: the labels are what a perfect frame
// detector with the same hysteresis would report).
std::vector<std::pair<uint64_t, uint64_t>> SpeechLabels(const std::vector<int16_t>& clean, int min_silence_ms) {
  std::vector<std::pair<uint64_t, uint64_t>> segs;
  for (size_t i = 0; i + kFrameSamples <= clean.size(); i += kFrameSamples) {
    double sum = 0;
    for (int k = 0; k < kFrameSamples; ++k) sum += double(clean[i + k]) * clean[i + k];
    double db = 10 * std::log10(sum / kFrameSamples / (32768.0 * 32768.0) + 1e-12);
    if (db < -50) continue;
    if (!segs.empty() && i - segs.back().second < uint64_t(min_silence_ms) * 16) segs.back().second = i + kFrameSamples;
    else segs.push_back({i, i + kFrameSamples});
  }
  std::erase_if(segs, [](auto& s) { return s.second - s.first < 60 * 16; });
  return segs;
}

// ---- VAD ----------------------------------------------------------------

struct VadTally {
  uint64_t frames = 0, correct = 0, speech_frames = 0, speech_hit = 0, noise_frames = 0, noise_hit = 0;
  int segments = 0, missed = 0, false_starts = 0;
  std::vector<double> onset_ms, offset_ms, start_error_ms;
};

void EvalVadFile(const std::string& detector, const PipelineOptions& base, const std::vector<int16_t>& mix,
                 const std::vector<int16_t>& clean, VadTally* t) {
  PipelineOptions o = base;
  o.detector = detector;
  o.wake_enabled = false;
  std::vector<VadDecision> ds;
  VoicePipeline p;
  Status s = p.Init(
      o, [&](const VadOutput& v) { ds.push_back(v.decision); }, nullptr);
  if (!s.ok()) {
    std::cerr << s.message() << "\n";
    return;
  }
  p.Feed(0, mix);
  p.Finish();
  auto labels = SpeechLabels(clean, o.vad.min_silence_ms);
  // Frame states from the events (speech between start and end sample).
  const size_t nframes = mix.size() / kFrameSamples;
  std::vector<uint8_t> det(nframes, 0), ref(nframes, 0);
  uint64_t open = 0;
  bool in = false;
  for (const auto& d : ds) {
    if (d.start) {
      open = d.sample_index;
      in = true;
    } else if (in) {
      for (uint64_t f = open / kFrameSamples; f < std::min<uint64_t>(nframes, d.sample_index / kFrameSamples); ++f)
        det[f] = 1;
      in = false;
    }
  }
  for (auto [a, b] : labels)
    for (uint64_t f = a / kFrameSamples; f < std::min<uint64_t>(nframes, b / kFrameSamples); ++f) ref[f] = 1;
  for (size_t f = 0; f < nframes; ++f) {
    ++t->frames;
    t->correct += det[f] == ref[f];
    if (ref[f]) ++t->speech_frames, t->speech_hit += det[f];
    else ++t->noise_frames, t->noise_hit += det[f];
  }
  // Segment events: each labelled segment should open with one START.
  std::vector<bool> used(ds.size(), false);
  for (auto [a, b] : labels) {
    ++t->segments;
    bool found = false;
    for (size_t i = 0; i < ds.size(); ++i) {
      if (!ds[i].start || used[i]) continue;
      if (ds[i].sample_index + 300 * 16 >= a && ds[i].sample_index < b) {
        used[i] = found = true;
        t->onset_ms.push_back((double(ds[i].decided_at) - double(a)) / 16);
        t->start_error_ms.push_back((double(ds[i].sample_index) - double(a)) / 16);
        // Its END: the first after this start.
        for (size_t j = i + 1; j < ds.size(); ++j) {
          if (ds[j].start) break;
          if (ds[j].decided_at >= b) t->offset_ms.push_back((double(ds[j].decided_at) - double(b)) / 16);
          break;
        }
        break;
      }
    }
    if (!found) ++t->missed;
  }
  for (size_t i = 0; i < ds.size(); ++i)
    if (ds[i].start && !used[i]) ++t->false_starts;
}

int RunVad(const Args& a) {
  std::vector<Item> items;
  if (!LoadManifest(a.Get("corpus"), &items)) return std::cerr << "no manifest in --corpus\n", 2;
  auto detectors = Split(a.Get("detectors", "energy,speex,webrtc"), ',');
  const auto conditions = Split(a.Get("conditions", ""), ',');
  PipelineOptions base;
  // Knobs to tune with (defaults: the actor's).
  base.vad.threshold = std::stod(a.Get("threshold", std::to_string(base.vad.threshold)));
  base.vad.min_speech_ms = std::stoi(a.Get("min-speech-ms", std::to_string(base.vad.min_speech_ms)));
  base.vad.min_silence_ms = std::stoi(a.Get("min-silence-ms", std::to_string(base.vad.min_silence_ms)));
  auto& d = base.detector_options;
  d.energy_margin_db = std::stod(a.Get("energy-margin-db", std::to_string(d.energy_margin_db)));
  d.webrtc_likelihood = std::stoi(a.Get("webrtc-likelihood", std::to_string(d.webrtc_likelihood)));
  json out;
  out["what"] = "vad";
  out["options"] = {{"threshold", base.vad.threshold},
                    {"min_speech_ms", base.vad.min_speech_ms},
                    {"min_silence_ms", base.vad.min_silence_ms},
                    {"energy_margin_db", d.energy_margin_db},
                    {"webrtc_likelihood", d.webrtc_likelihood}};
  for (const auto& det : detectors) {
    std::map<std::string, VadTally> by_cond;
    VadTally all;
    for (const auto& it : items) {
      if (it.kind != "pos" && it.kind != "vad") continue;
      if (!conditions.empty() && std::find(conditions.begin(), conditions.end(), it.condition) == conditions.end())
        continue;
      std::vector<int16_t> mix, clean;
      if (!Load(it.mix, &mix) || !Load(it.clean, &clean)) continue;
      EvalVadFile(det, base, mix, clean, &by_cond[it.condition]);
      EvalVadFile(det, base, mix, clean, &all);
    }
    auto render = [](const VadTally& t) {
      return json{{"frame_accuracy", t.frames ? double(t.correct) / t.frames : NAN},
                  {"speech_recall", t.speech_frames ? double(t.speech_hit) / t.speech_frames : NAN},
                  {"noise_false_rate", t.noise_frames ? double(t.noise_hit) / t.noise_frames : NAN},
                  {"segments", t.segments},
                  {"missed_segments", t.missed},
                  {"false_starts", t.false_starts},
                  {"onset_latency_ms", Stats(t.onset_ms)},
                  {"start_error_ms", Stats(t.start_error_ms)},
                  {"offset_latency_ms", Stats(t.offset_ms)},
                  {"hours", double(t.frames) * kFrameSamples / kSampleRate / 3600}};
    };
    json j = render(all);
    for (auto& [cond, t] : by_cond) j["by_condition"][cond] = render(t);
    out["detectors"][det] = j;
    std::cerr << "vad " << det << " done\n";
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

// ---- wake ---------------------------------------------------------------

// The product's wakevad hears audio.clean: what vb-afe makes of the mic
// (noise suppression, AGC; no far end here, so no echo to cancel). --afe
// BACKEND puts each file through a fresh FrontEnd with the actor's defaults
// first ("" = the raw mix); --afe-agc 0 / --afe-ns 0 turn those stages off.
struct AfeChoice {
  std::string backend;
  bool agc = true, ns = true;
};

AfeChoice AfeFrom(const Args& a) {
  return {a.Get("afe", ""), a.Get("afe-agc", "1") != "0", a.Get("afe-ns", "1") != "0"};
}

bool ThroughAfe(const AfeChoice& choice, std::vector<int16_t>* pcm) {
  if (choice.backend.empty()) return true;
  afe::FrontEndConfig config;
  config.backend = choice.backend;
  config.processor.agc = choice.agc;
  config.processor.noise_suppression = choice.ns;
  std::unique_ptr<afe::FrontEnd> fe;
  if (Status s = afe::FrontEnd::Create(config, &fe); !s.ok()) {
    std::cerr << "afe: " << s.message() << "\n";
    return false;
  }
  std::vector<int16_t> out;
  for (size_t i = 0; i + kFrameSamples <= pcm->size(); i += kFrameSamples) {
    afe::PcmView v{pcm->data() + i, size_t(kFrameSamples), 1, kSampleRate};
    if (!fe->ProcessMic(v, -1, int64_t(i) * 62500, &out).ok()) return false;  // 62500 ns per sample
    std::copy(out.begin(), out.end(), pcm->begin() + i);
  }
  pcm->resize(pcm->size() / kFrameSamples * kFrameSamples);
  return true;
}

struct Spotted {
  uint64_t start, end, at, reported;
  double score, verify_score;
};

// Every first-stage detection with its verifier score (when verifying), so
// one pass over the corpus serves a whole sweep of margins.
std::vector<Spotted> SpotFile(const WakeOptions& w, const std::vector<int16_t>& pcm, bool spot_all, int end_settle_ms) {
  PipelineOptions o;
  o.wake = w;
  o.spot_all = spot_all;
  if (end_settle_ms >= 0) o.wake_end_settle_ms = end_settle_ms;
  if (const char* t = std::getenv("VB_SPOT_THRESHOLD")) o.spot_threshold = std::stod(t);
  o.report_rejected = true;
  std::vector<Spotted> out;
  VoicePipeline p;
  Status s = p.Init(o, nullptr, [&](const WakeOutput& x) {
    // The report point: where the context audio ends (the event goes out then).
    out.push_back({x.detection.start_sample, x.detection.end_sample, x.detection.detected_at,
                   x.context_start + x.context_pcm.size() / 2, x.detection.score, x.detection.verify_score});
  });
  if (!s.ok()) {
    std::cerr << s.message() << "\n";
    return out;
  }
  // In 20 ms frames, as the actor receives them.
  for (size_t i = 0; i < pcm.size(); i += kFrameSamples)
    p.Feed(i, std::span<const int16_t>(pcm.data() + i, std::min<size_t>(kFrameSamples, pcm.size() - i)));
  return out;
}

int RunWake(const Args& a) {
  std::vector<Item> items;
  if (!LoadManifest(a.Get("corpus"), &items)) return std::cerr << "no manifest in --corpus\n", 2;
  std::vector<std::string> phrases = Split(a.Get("phrases"), ',');
  if (phrases.empty())
    for (const auto& it : items)
      if (it.kind == "pos" && std::find(phrases.begin(), phrases.end(), it.phrase) == phrases.end())
        phrases.push_back(it.phrase);
  std::vector<double> thresholds;
  for (const auto& t : Split(a.Get("thresholds", ""), ',')) thresholds.push_back(std::stod(t));
  if (thresholds.empty()) thresholds.push_back(WakeOptions().threshold);  // the actor's default
  const double plp = std::stod(a.Get("phone-loop", "1e-10"));
  const double max_neg_s = std::stod(a.Get("max-neg-s", "1e12"));
  const double comfort = std::stod(a.Get("comfort-noise-dbfs", "-50"));
  // --spot-all 1: the spotter decodes every frame (default: only around speech).
  const bool spot_all = a.Get("spot-all", "0") == "1";
  const int settle_ms = int(a.Num("end-settle-ms", -1));  // -1: the actor's default
  const AfeChoice afe_choice = AfeFrom(a);
  // Second stage: --verify 0 turns it off; --verify-margins sweeps its margin
  // (default: the actor's) over the same first-stage detections.
  const WakeOptions defaults;
  const bool verify = a.Get("verify", defaults.verify ? "1" : "0") == "1";
  const int pad_ms = std::stoi(a.Get("verify-pad-ms", std::to_string(defaults.verify_pad_ms)));
  std::vector<double> margins;
  for (const auto& m : Split(a.Get("verify-margins", std::to_string(defaults.verify_margin)), ','))
    margins.push_back(std::stod(m));
  if (!verify) margins = {0};
  const auto conditions = Split(a.Get("conditions", ""), ',');
  // Conditions of the negatives, if not those of the positives.
  std::set<std::string> neg_conditions;
  for (const auto& c : Split(a.Get("neg-conditions", ""), ',')) neg_conditions.insert(c);
  auto wanted = [&](const Item& it) {
    if (it.kind != "pos" && !neg_conditions.empty()) return false;
    return conditions.empty() || std::find(conditions.begin(), conditions.end(), it.condition) != conditions.end();
  };
  json out;
  out["what"] = "wake";
  out["phone_loop"] = plp;
  out["comfort_noise_dbfs"] = comfort;
  out["verify"] = verify;
  out["spot_all"] = spot_all;
  out["verify_pad_ms"] = pad_ms;
  out["end_settle_ms"] = settle_ms >= 0 ? settle_ms : PipelineOptions{}.wake_end_settle_ms;
  out["afe"] = {{"backend", afe_choice.backend}, {"agc", afe_choice.agc}, {"ns", afe_choice.ns}};
  for (const auto& phrase : phrases) {
    for (double th : thresholds) {
      WakeOptions w;
      w.phrase = phrase;
      w.threshold = th;
      w.phone_loop = plp;
      w.comfort_noise_dbfs = comfort;
      w.verify = verify;
      w.verify_pad_ms = pad_ms;
      w.verify_word_beam = a.Num("verify-word-beam", w.verify_word_beam);
      w.verify_margin = -1e300;  // everything reported; margins applied below
      struct FileResult {
        const Item* item;
        double seconds;
        std::vector<Spotted> found;
      };
      std::vector<FileResult> results;
      double neg_s = 0;
      for (const auto& it : items) {
        if (it.kind == "pos" && it.phrase != phrase) continue;
        if (it.kind != "pos" && it.kind != "neg" && it.kind != "near") continue;
        if (it.kind == "neg" && neg_s >= max_neg_s) continue;
        if (!wanted(it) && !(it.kind != "pos" && neg_conditions.count(it.condition))) continue;
        std::vector<int16_t> mix;
        if (!Load(it.mix, &mix)) continue;
        if (!ThroughAfe(afe_choice, &mix)) return 1;
        if (it.kind == "neg" && mix.size() > (max_neg_s - neg_s) * kSampleRate)
          mix.resize(size_t((max_neg_s - neg_s) * kSampleRate));
        const double secs = double(mix.size()) / kSampleRate;
        if (it.kind == "neg") neg_s += secs;
        results.push_back({&it, secs, SpotFile(w, mix, spot_all, settle_ms)});
      }
      struct Cond {
        int n = 0, hit = 0, extra = 0;
        std::vector<double> latency, report;
        json hits = json::array();
      };
      auto render = [](const Cond& c) {
        json j{{"phrases", c.n},
               {"detected", c.hit},
               {"detection_rate", c.n ? double(c.hit) / c.n : NAN},
               {"false_accepts_in_positives", c.extra},
               {"latency_after_phrase_end_ms", Stats(c.latency)},
               {"event_after_phrase_end_ms", Stats(c.report)}};
        if (!c.hits.empty()) j["hits"] = c.hits;  // per condition only
        return j;
      };
      json scores = {{"pos", json::array()}, {"neg", json::array()}, {"near", json::array()}};
      for (double margin : margins) {
        std::map<std::string, Cond> conds;
        Cond all;
        int neg_fa = 0, near_fa = 0;
        json fa_list = json::array(), near_list = json::array();
        const bool first = margin == margins.front();
        for (const auto& r : results) {
          std::vector<Spotted> found;
          for (const auto& f : r.found)
            if (!verify || f.verify_score >= margin) found.push_back(f);
          const Item& it = *r.item;
          if (it.kind == "near" || it.kind == "neg") {
            auto& n = it.kind == "near" ? near_fa : neg_fa;
            auto& list = it.kind == "near" ? near_list : fa_list;
            n += int(found.size());
            for (auto& f : found)
              list.push_back({{"file", it.mix},
                              {"at_s", double(f.start) / kSampleRate},
                              {"len_ms", double(f.end - f.start) / 16},
                              {"score", f.score},
                              {"verify_score", f.verify_score}});
            if (first)
              for (auto& f : r.found) scores[it.kind].push_back(f.verify_score);
            continue;
          }
          auto labels = LoadLabels(it.labels);
          Cond& c = conds[it.condition];
          std::vector<bool> used(found.size(), false);
          for (auto [s, e] : labels) {
            ++c.n, ++all.n;
            for (size_t i = 0; i < found.size(); ++i) {
              // A hit ends after the phrase began and is reported within 1.5 s of its end.
              if (used[i] || found[i].end < s || found[i].at > e + 24000) continue;
              used[i] = true;
              ++c.hit, ++all.hit;
              c.hits.push_back({{"at_s", double(found[i].start) / kSampleRate},
                                {"len_ms", double(found[i].end - found[i].start) / 16},
                                {"score", found[i].score},
                                {"verify_score", found[i].verify_score}});
              double lat = (double(found[i].at) - double(e)) / 16;
              c.latency.push_back(lat);
              all.latency.push_back(lat);
              const double rep = (double(found[i].reported) - double(e)) / 16;
              c.report.push_back(rep);
              all.report.push_back(rep);
              break;
            }
          }
          for (bool u : used)
            if (!u) ++c.extra, ++all.extra;
          if (first)
            for (auto& f : r.found) scores["pos"].push_back(f.verify_score);
        }
        json j = render(all);
        for (auto& [cond, c] : conds) j["by_condition"][cond] = render(c);
        j["negative_hours"] = neg_s / 3600;
        j["false_accepts"] = neg_fa;
        j["false_accepts_per_hour"] = neg_s > 0 ? neg_fa / (neg_s / 3600) : NAN;
        j["false_accept_list"] = fa_list;
        j["near_miss_accepts"] = near_fa;
        j["near_miss_accept_list"] = near_list;
        char key[64];
        std::snprintf(key, sizeof key, "%g", th);
        std::string mkey = key;
        if (verify) {
          char mk[64];
          std::snprintf(mk, sizeof mk, "%g", margin);
          mkey += std::string(" verify_margin ") + mk;
        }
        out["phrases"][phrase][mkey] = j;
        std::cerr << "wake '" << phrase << "' threshold " << mkey << ": rate " << j["detection_rate"] << ", FA/h "
                  << j["false_accepts_per_hour"] << ", near " << near_fa << "\n";
      }
      if (verify) {
        char key[64];
        std::snprintf(key, sizeof key, "%g", th);
        out["verify_scores"][phrase][key] = scores;
      }
    }
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

int RunSpot(const Args& a) {
  std::vector<int16_t> pcm;
  if (!Load(a.Get("wav"), &pcm)) return 2;
  if (!ThroughAfe(AfeFrom(a), &pcm)) return 1;
  WakeOptions w;
  w.phrase = a.Get("phrase", w.phrase);
  w.threshold = a.Num("threshold", w.threshold);
  w.phone_loop = std::stod(a.Get("phone-loop", "1e-10"));
  w.verify = a.Get("verify", w.verify ? "1" : "0") == "1";
  w.verify_word_beam = a.Num("verify-word-beam", w.verify_word_beam);
  w.verify_pad_ms = std::stoi(a.Get("verify-pad-ms", std::to_string(w.verify_pad_ms)));
  w.verify_margin = -1e300;
  json out = json::array();
  for (auto& f : SpotFile(w, pcm, a.Get("spot-all", "0") == "1", int(a.Num("end-settle-ms", -1))))
    out.push_back({{"start_s", double(f.start) / kSampleRate},
                   {"end_s", double(f.end) / kSampleRate},
                   {"detected_s", double(f.at) / kSampleRate},
                   {"score", f.score},
                   {"verify_score", f.verify_score}});
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace vb::wakevad

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: vb-wakevad-eval vad|wake|spot --corpus DIR | --wav FILE [options]\n";
    return 2;
  }
  vb::wakevad::Args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) == 0) a.kv[k.substr(2)] = argv[i + 1];
  }
  std::string cmd = argv[1];
  if (cmd == "vad") return vb::wakevad::RunVad(a);
  if (cmd == "wake") return vb::wakevad::RunWake(a);
  if (cmd == "spot") return vb::wakevad::RunSpot(a);
  std::cerr << "unknown command " << cmd << "\n";
  return 2;
}
