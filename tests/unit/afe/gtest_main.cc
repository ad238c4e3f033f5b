// This binary's main(). Debian's libwebrtc_audio_processing.so.1 (0.3)
// exports a stray main() of its own (a timing tool's); linked before
// libgtest_main.a it would win and no test would run. A main() in an object
// file always takes precedence over both.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
