// `vb tune afe` as a user runs it, on a dialog recording the test writes:
// the same command twice prints the same audio.clean hash and events, --set
// prints other figures beside them, --out writes each run's audio.clean,
// and wrong keys, files and options are clear errors with their exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "actors/common/wav.h"
#include "tests/support/process.h"
#include "tests/unit/tune/scene_recording.h"
#include "tools/tune/tune.h"

namespace vb::tune {
namespace {

class TuneCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rec_ = dir_.File("dialog.mcap");
    ASSERT_TRUE(testing::WriteDialogRecording(rec_).ok());
  }
  int Tune(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {vb::testing::Bin("vb"), "tune", "afe"});
    return vb::testing::RunCommand(args, out);
  }
  nlohmann::json TuneJson(std::vector<std::string> args) {
    std::string out;
    args.push_back("--json");
    EXPECT_EQ(Tune(args, &out), 0) << out;
    try {
      return nlohmann::json::parse(out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << out;
      return {};
    }
  }
  vb::testing::TempDir dir_;
  std::string rec_;
};

TEST_F(TuneCliTest, SameRecordingAndConfigPrintTheSameHashAndEventsTwice) {
  nlohmann::json a = TuneJson({rec_}), b = TuneJson({rec_});
  ASSERT_TRUE(a.contains("recorded")) << a.dump();
  EXPECT_FALSE(a.contains("tuned"));  // no --set: one run
  EXPECT_EQ(a["recorded"]["clean_hash"], b["recorded"]["clean_hash"]);
  EXPECT_EQ(a["recorded"]["vad"], b["recorded"]["vad"]);
  EXPECT_EQ(a["recorded"]["wakes"], b["recorded"]["wakes"]);
  EXPECT_EQ(a["recorded"]["clean_samples"], 300 * 320);
  EXPECT_FALSE(a["recorded"]["vad"].empty());
}

TEST_F(TuneCliTest, SetPrintsTheOtherConfigBesideAndOutWritesBothCleanStreams) {
  const std::string out_dir = dir_.File("out");
  nlohmann::json j = TuneJson({rec_, "--set", "afe.backend=bypass", "--out", out_dir});
  ASSERT_TRUE(j.contains("tuned")) << j.dump();
  EXPECT_EQ(j["recorded"]["backend"], "speex");
  EXPECT_EQ(j["tuned"]["backend"], "bypass");
  EXPECT_NE(j["recorded"]["clean_hash"], j["tuned"]["clean_hash"]);
  EXPECT_GT(j["recorded"]["erle_db"].get<double>(), j["tuned"]["erle_db"].get<double>() + 6);
  for (const char* run : {"recorded", "tuned"}) {
    audio::PcmBuffer wav;
    ASSERT_TRUE(audio::ReadWav(out_dir + "/" + run + ".wav", &wav).ok()) << run;
    EXPECT_EQ(wav.sample_rate, 16000u);
    EXPECT_EQ(HashPcm(wav.samples), j[run]["clean_hash"].get<std::string>()) << run;
  }
  // The table: both columns, every figure named.
  const std::string hash = j["recorded"]["clean_hash"].get<std::string>();
  std::string table;
  ASSERT_EQ(Tune({rec_, "--set", "afe.backend=bypass"}, &table), 0) << table;
  for (const char* s :
       {"recorded", "tuned", "ERLE", "VAD speech segments", "wake events", "gated blocks", hash.c_str()})
    EXPECT_NE(table.find(s), std::string::npos) << s << " missing in:\n" << table;
}

TEST_F(TuneCliTest, WrongKeysFilesAndOptionsAreClearErrors) {
  std::string out;
  EXPECT_EQ(Tune({rec_, "--set", "afe.bakend=webrtc"}, &out), 78);
  EXPECT_NE(out.find("afe.bakend"), std::string::npos) << out;
  EXPECT_EQ(Tune({rec_, "--set", "afe.backend=neural"}, &out), 78);
  EXPECT_NE(out.find("neural"), std::string::npos) << out;
  EXPECT_EQ(Tune({dir_.File("none.mcap")}, &out), 66);
  EXPECT_NE(out.find("none.mcap"), std::string::npos) << out;
  dir_.Write("text.mcap", "not a recording");
  EXPECT_EQ(Tune({dir_.File("text.mcap")}, &out), 66) << out;
  EXPECT_EQ(Tune({rec_, "--device", "kitchen"}, &out), 66);
  EXPECT_NE(out.find("audio.mic/kitchen"), std::string::npos) << out;
  EXPECT_EQ(Tune({rec_, "--bogus"}, &out), 64);
  EXPECT_NE(out.find("--bogus"), std::string::npos) << out;
  EXPECT_EQ(vb::testing::RunCommand({vb::testing::Bin("vb"), "tune", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: vb tune afe"), std::string::npos) << out;
}

}  // namespace
}  // namespace vb::tune
