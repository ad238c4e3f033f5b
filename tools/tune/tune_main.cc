// vb-tune (`vb tune`): offline tuning of vb-afe and vb-wakevad on a
// recording. Runs the recording's audio.mic + audio.ref through the front end
// and the wake word/VAD pipeline with the recorded run's config and again
// with --set overrides, and prints the figures that matter side by side.
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "actors/common/wav.h"
#include "tools/tune/tune.h"
#include "tools/tune/tune_config.h"

namespace {

constexpr const char* kUsage =
    "usage: vb tune afe RECORDING.mcap [--set SECTION.KEY=VALUE …] [--config FILE] [--device NAME]\n"
    "                  [--out DIR] [--json]\n"
    "\n"
    "Runs the recording's audio.mic and audio.ref (`vb sniff record`) through vb-afe's front end\n"
    "and its output through vb-wakevad's VAD and wake word, offline and deterministic: the same\n"
    "recording and config always give bit-identical audio.clean (its hash is printed) and the same\n"
    "events. Two runs side by side: `recorded` with the config the recording was made with\n"
    "(--config, default the shipped defaults), and `tuned` with the --set overrides on top of it.\n"
    "Keys are the afe: and wakevad: keys of a config file (vb --print-default-config), checked the\n"
    "same way: a wrong key or value is an error naming it (exit 78).\n"
    "\n"
    "Reference rule: before each mic frame, every audio.ref frame the recorder received no later\n"
    "than that frame + afe.ref_wait_ms is given to the front end (what the live actor had when its\n"
    "wait ended).\n"
    "\n"
    "A recording that holds audio.clean adds a first column, `live`: what the live vb-afe made,\n"
    "through the wake/VAD of the recorded config (its hash tells whether offline matches live).\n"
    "\n"
    "Figures: ERLE (mic power / cleaned power over the frames where the reference plays, dB),\n"
    "cleaned level (dBFS of 20 ms frames, p50/p95) while the VAD hears speech and while the agent\n"
    "plays, gated blocks (echo gate), the bulk delay, VAD speech segments and wake events (seconds\n"
    "from the first mic sample).\n"
    "\n"
    "  --set K=V      override (repeatable), e.g. afe.backend=webrtc, wakevad.vad.threshold=0.6\n"
    "  --config FILE  the recorded run's config (default: the shipped defaults)\n"
    "  --device NAME  whose audio.mic/audio.ref (default: the first device with audio.mic)\n"
    "  --out DIR      write live.wav, recorded.wav, tuned.wav (each column's audio.clean) into DIR\n"
    "  --json         one JSON object instead of the table\n"
    "Exit: 0 done, 64 usage, 66 recording unreadable or without mic audio, 78 config error.\n";

int Usage(const std::string& why) {
  std::cerr << "vb tune: " << why << "\n" << kUsage;
  return 64;
}

std::string Fixed(double v, int digits = 1) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string Segments(const vb::tune::TuneResult& r) {
  std::string s;
  for (const auto& v : r.vad)
    s += (s.empty() ? "" : " ") + Fixed(v.start_s, 2) + "-" + (v.end_s < 0 ? std::string("end") : Fixed(v.end_s, 2));
  return s.empty() ? "none" : s;
}

std::string Wakes(const vb::tune::TuneResult& r) {
  std::string s;
  for (const auto& w : r.wakes) s += (s.empty() ? "" : " ") + Fixed(w.time_s, 2) + "s (" + Fixed(w.score, 0) + ")";
  return s.empty() ? "none" : s;
}

nlohmann::json ToJson(const vb::tune::TuneResult& r) {
  nlohmann::json j = {
      {"backend", r.backend},
      {"live", r.live},
      {"live_missing", r.live_missing},
      {"mic_frames", r.mic_frames},
      {"ref_frames", r.ref_frames},
      {"bad_frames", r.bad_frames},
      {"clean_samples", r.clean_samples},
      {"clean_hash", r.clean_hash},
      {"erle_db", std::isnan(r.erle_db) ? nlohmann::json() : nlohmann::json(r.erle_db)},
      {"frames_agent_playing", r.ref_frames_playing},
      {"clean_speaking_dbfs",
       {{"p50", r.clean_speaking.p50}, {"p95", r.clean_speaking.p95}, {"frames", r.clean_speaking.frames}}},
      {"clean_agent_playing_dbfs",
       {{"p50", r.clean_agent_playing.p50},
        {"p95", r.clean_agent_playing.p95},
        {"frames", r.clean_agent_playing.frames}}},
      {"gated_blocks", r.gated_blocks},
      {"late_ref_gated_blocks", r.late_ref_gated_blocks},
      {"delay_changes", r.delay_changes},
      {"bulk_delay_ms", r.bulk_delay_ms},
      {"vad", nlohmann::json::array()},
      {"wakes", nlohmann::json::array()}};
  for (const auto& v : r.vad)
    j["vad"].push_back({{"start_s", v.start_s}, {"end_s", v.end_s < 0 ? nlohmann::json() : nlohmann::json(v.end_s)}});
  for (const auto& w : r.wakes)
    j["wakes"].push_back({{"time_s", w.time_s}, {"score", w.score}, {"verify_score", w.verify_score}});
  return j;
}

void PrintTable(const std::string& path, const vb::tune::RecordedAudio& audio,
                const std::vector<std::pair<std::string, vb::tune::TuneResult>>& runs) {
  std::cout << path << ": device " << audio.device << ", " << audio.mic.size() << " mic frames, " << audio.ref.size()
            << " reference frames\n";
  std::vector<std::pair<std::string, std::vector<std::string>>> rows = {{"backend", {}},
                                                                        {"audio.clean hash", {}},
                                                                        {"ERLE where the agent plays (dB)", {}},
                                                                        {"frames with the agent playing", {}},
                                                                        {"clean dBFS speaking p50/p95", {}},
                                                                        {"clean dBFS agent playing p50/p95", {}},
                                                                        {"gated blocks (late ref)", {}},
                                                                        {"bulk delay ms (moves)", {}},
                                                                        {"VAD speech segments (s)", {}},
                                                                        {"wake events (s, score)", {}},
                                                                        {"bad frames", {}}};
  for (const auto& [name, r] : runs) {
    size_t i = 0;
    rows[i++].second.push_back(r.backend);
    rows[i++].second.push_back(r.clean_hash);
    rows[i++].second.push_back(std::isnan(r.erle_db)  ? "- (mic silent)"
                               : r.ref_frames_playing ? Fixed(r.erle_db)
                                                      : "-");
    rows[i++].second.push_back(std::to_string(r.ref_frames_playing));
    rows[i++].second.push_back(
        r.clean_speaking.frames ? Fixed(r.clean_speaking.p50) + " / " + Fixed(r.clean_speaking.p95) : "-");
    rows[i++].second.push_back(r.clean_agent_playing.frames
                                   ? Fixed(r.clean_agent_playing.p50) + " / " + Fixed(r.clean_agent_playing.p95)
                                   : "-");
    rows[i++].second.push_back(
        r.live ? "-" : std::to_string(r.gated_blocks) + " (" + std::to_string(r.late_ref_gated_blocks) + ")");
    rows[i++].second.push_back(r.live ? "-" : Fixed(r.bulk_delay_ms) + " (" + std::to_string(r.delay_changes) + ")");
    rows[i++].second.push_back(Segments(r));
    rows[i++].second.push_back(Wakes(r));
    rows[i++].second.push_back(std::to_string(r.bad_frames) +
                               (r.live ? " (" + std::to_string(r.live_missing) + " without audio.clean)" : ""));
  }
  std::vector<std::string> head = {""};
  for (const auto& run : runs) head.push_back(run.first);
  std::vector<size_t> width(head.size(), 0);
  for (size_t c = 0; c < head.size(); ++c) width[c] = head[c].size();
  for (const auto& [label, cells] : rows) {
    width[0] = std::max(width[0], label.size());
    for (size_t c = 0; c < cells.size(); ++c) width[c + 1] = std::max(width[c + 1], cells[c].size());
  }
  auto line = [&](const std::string& label, const std::vector<std::string>& cells) {
    std::string out = label + std::string(width[0] - label.size(), ' ');
    for (size_t c = 0; c < cells.size(); ++c)
      out += "  " + cells[c] + (c + 1 < cells.size() ? std::string(width[c + 1] - cells[c].size(), ' ') : "");
    std::cout << out << "\n";
  };
  line("", std::vector<std::string>(head.begin() + 1, head.end()));
  for (const auto& [label, cells] : rows) line(label, cells);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
  if (args.empty()) return Usage("missing what to tune (afe)");
  if (args[0] != "afe") return Usage("unknown target '" + args[0] + "' (only afe: the front end and wake/VAD)");
  std::string recording, config, device, out_dir;
  std::vector<std::string> sets;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= args.size()) return false;
      *v = args[++i];
      return true;
    };
    std::string v;
    if (a == "--set") {
      if (!value(&v)) return Usage("--set needs SECTION.KEY=VALUE");
      sets.push_back(v);
    } else if (a == "--config") {
      if (!value(&config)) return Usage("--config needs a file");
    } else if (a == "--device") {
      if (!value(&device)) return Usage("--device needs a name");
    } else if (a == "--out") {
      if (!value(&out_dir)) return Usage("--out needs a folder");
    } else if (a == "--json") {
      json = true;
    } else if (a.rfind("-", 0) == 0) {
      return Usage("unknown option " + a);
    } else if (recording.empty()) {
      recording = a;
    } else {
      return Usage("one recording only (got '" + recording + "' and '" + a + "')");
    }
  }
  if (recording.empty()) return Usage("missing the recording (RECORDING.mcap)");

  std::vector<std::pair<std::string, vb::tune::TuneConfig>> configs(1);
  configs[0].first = "recorded";
  if (vb::Status st = vb::tune::LoadTuneConfig(config, {}, &configs[0].second); !st.ok()) {
    std::cerr << "vb tune: config error:\n" << st.message() << "\n";
    return 78;
  }
  if (!sets.empty()) {
    configs.emplace_back("tuned", vb::tune::TuneConfig{});
    if (vb::Status st = vb::tune::LoadTuneConfig(config, sets, &configs[1].second); !st.ok()) {
      std::cerr << "vb tune: config error:\n" << st.message() << "\n";
      return 78;
    }
  }
  vb::tune::RecordedAudio audio;
  if (vb::Status st = vb::tune::ReadRecordedAudio(recording, device, &audio); !st.ok()) {
    std::cerr << "vb tune: " << st.message() << "\n";
    return 66;
  }
  if (!audio.problems.empty()) std::cerr << "vb tune: " << recording << ": " << audio.problems;
  if (!out_dir.empty() && mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::cerr << "vb tune: cannot create " << out_dir << ": " << std::strerror(errno) << "\n";
    return 73;
  }
  std::vector<std::pair<std::string, vb::tune::TuneResult>> runs;
  // What the live front end made, if the recording has it: the recorded
  // audio.clean through the wake/VAD of the recorded config.
  std::vector<std::pair<std::string, vb::tune::CleanSource>> plan;
  if (!audio.live_clean.empty()) plan.emplace_back("live", vb::tune::CleanSource::kLive);
  for (const auto& c : configs) plan.emplace_back(c.first, vb::tune::CleanSource::kFrontEnd);
  for (const auto& [name, source] : plan) {
    const vb::tune::TuneConfig& cfg =
        source == vb::tune::CleanSource::kLive || name == "recorded" ? configs[0].second : configs[1].second;
    vb::tune::TuneResult r;
    if (vb::Status st = vb::tune::RunTune(audio, cfg, &r, source); !st.ok()) {
      std::cerr << "vb tune: " << name << ": " << st.message() << "\n";
      return st.code() == vb::Status::Code::kConfig ? 78 : 1;
    }
    if (!out_dir.empty()) {
      vb::audio::PcmBuffer pcm;
      pcm.samples = r.clean;
      const std::string path = out_dir + "/" + name + ".wav";
      if (vb::Status st = vb::audio::WriteWav(path, pcm); !st.ok()) {
        std::cerr << "vb tune: " << path << ": " << st.message() << "\n";
        return 73;
      }
    }
    runs.emplace_back(name, std::move(r));
  }
  if (json) {
    nlohmann::json j = {{"recording", recording}, {"device", audio.device}, {"sets", sets}};
    for (const auto& [name, r] : runs) j[name] = ToJson(r);
    std::cout << j.dump(2) << "\n";
  } else {
    PrintTable(recording, audio, runs);
  }
  return 0;
}
