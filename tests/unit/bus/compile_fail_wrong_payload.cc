// Compile-time check: a topic takes exactly its payload type. This file is
// compiled twice by ctest: with VB_EXPECT_OK it must compile; without, the
// line below must be rejected by the compiler (publishing a VadEvent on an
// audio topic).
#include "bus/node.h"

void Check(vb::bus::Node& node) {
  auto mic = node.Advertise(vb::bus::topics::kAudioMic);
#ifdef VB_EXPECT_OK
  mic.Publish(vb::v1::AudioFrame());
#else
  mic.Publish(vb::v1::VadEvent());
#endif
}
