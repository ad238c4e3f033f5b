// The main job, as the README's first command runs it: `vb demo` with
// config/demo.yaml — the simulator, every actor, a spoken question, the
// agent's spoken answer in a WAV file.
#include <gtest/gtest.h>

#include <cmath>

#include "actors/common/wav.h"
#include "tests/support/process.h"

namespace vb::testing {
namespace {

double Rms(const audio::PcmBuffer& pcm) {
  double sum = 0;
  for (int16_t s : pcm.samples) sum += double(s) * s;
  return pcm.samples.empty() ? 0 : std::sqrt(sum / double(pcm.samples.size()));
}

TEST(DemoTest, MainJobAnswersAQuestionAloud) {
  TempDir dir;
  std::string out;
  std::string config = SourceDir() + "/config/demo.yaml";
  int code = RunCommand({Bin("vb"), "demo", "--config", config, "--out", dir.path(), "--say", "What time is it?"}, &out,
                        std::chrono::seconds(150));
  ASSERT_EQ(code, 0) << out << "\n--- session log:\n"
                     << ReadFile(dir.File("logs/session.log")) << "\n--- simulator log:\n"
                     << ReadFile(dir.File("logs/cozesim.log")) << "\n--- REST requests the simulator answered:\n"
                     << ReadFile(dir.File("sim/rest.jsonl"));
  // The dialog is shown live: what was heard, what the agent said, and where the audio is.
  EXPECT_NE(out.find("you:   what time is it"), std::string::npos) << out;
  EXPECT_NE(out.find("agent: It is "), std::string::npos) << out;
  EXPECT_NE(out.find("[speaking]"), std::string::npos) << out;
  EXPECT_NE(out.find("the agent's reply is in " + dir.File("reply.wav")), std::string::npos) << out;
  audio::PcmBuffer reply;
  ASSERT_TRUE(audio::ReadWav(dir.File("reply.wav"), &reply).ok());
  EXPECT_GT(double(reply.frames()) / reply.sample_rate, 0.8) << "reply too short to be speech";
  EXPECT_GT(Rms(reply), 300.0) << "reply is (nearly) silent";
  // A throwaway token was used, and it appears nowhere in the output.
  std::string token = ReadFile(dir.File("sim-token"));
  token.erase(token.find_last_not_of("\n") + 1);
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(out.find(token), std::string::npos);
  // The simulator's request log shows the conversation being created.
  EXPECT_NE(ReadFile(dir.File("sim/rest.jsonl")).find("\"path\":\"/v1/conversation/create\",\"status\":200"),
            std::string::npos);
  for (const char* log : {"logs/session.log", "logs/cozesim.log", "logs/control.log", "sim/rest.jsonl"})
    EXPECT_EQ(ReadFile(dir.File(log)).find(token), std::string::npos) << log;
}

TEST(DemoTest, ConfigErrorIsNamedAndExits78) {
  TempDir dir;
  dir.Write("bad.yaml", "launcher:\n  actors: [control]\ncontrol:\n  mode: sometimes\n");
  std::string out;
  EXPECT_EQ(RunCommand({Bin("vb"), "demo", "--config", dir.File("bad.yaml"), "--out", dir.path()}, &out,
                       std::chrono::seconds(60)),
            78)
      << out;
  EXPECT_NE(out.find("control.mode: 'sometimes' is not one of continuous|wake_word|push_to_talk"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace vb::testing
