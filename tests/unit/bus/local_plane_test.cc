// The stream plane's same-host shortcut (bus/local_plane.h), over a real
// ipc:// bus in a temporary folder: frames go straight from publisher to
// reader, the broker carries none of them, nothing is lost or doubled around
// the switch, a ZeroMQ listener (the sniffer) still hears everything, a
// publisher that dies and comes back is heard again, a stalled reader's
// losses are counted, and a hostile peer in the rendezvous folder is
// counted and cut off without stopping the real stream.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "bus/broker/broker.h"
#include "bus/node.h"
#include "tests/support/process.h"

namespace vb::bus {
namespace {

using std::chrono::milliseconds;

class LocalPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Broker>(ctx_, loop_, Config());
    ASSERT_TRUE(broker_->Bind().ok());
    pub_ = MakeNode("capture");
    pub_->SetActive(true);
    mic_ = pub_->Advertise(topics::kAudioMic);
    sub_ = MakeNode("afe");
    sub_->Subscribe<v1::AudioFrame>(topics::kAudioMic, [this](const auto& m) { seqs_.push_back(m.header.seq()); });
  }
  BusConfig Config() const {
    BusConfig c;
    c.endpoint = "ipc://" + dir_.File("bus");
    return c;
  }
  std::unique_ptr<Node> MakeNode(const std::string& source, Loop* loop = nullptr) {
    auto n = std::make_unique<Node>(ctx_, loop ? *loop : loop_, source, "local", Config());
    EXPECT_TRUE(n->Connect().ok());
    return n;
  }
  // Publishes a frame every `every` until pred holds (or timeout).
  bool PublishUntil(const std::function<bool()>& pred, milliseconds every = milliseconds(2),
                    milliseconds timeout = milliseconds(10000)) {
    const auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      if (pred()) return true;
      v1::AudioFrame f;
      f.set_pcm(std::string(640, '\x01'));
      mic_.Publish(f);
      // The loop serves what arrives meanwhile (at least once); the next
      // frame waits its turn.
      const auto next = Clock::now() + every;
      do {
        loop_.RunOnce(std::max<std::chrono::nanoseconds>(next - Clock::now(), std::chrono::nanoseconds(0)));
      } while (Clock::now() < next);
    }
    return pred();
  }
  bool Local(const Node& n) const { return n.local() && n.local()->counters().received > 0; }
  // A reader of audio.mic that made it lazy, once both readers read the
  // local path and ZeroMQ's leftovers have passed.
  std::unique_ptr<Node> SettledLazyReader(std::vector<uint64_t>* got) {
    auto lazy = MakeNode("afe2");
    lazy->Subscribe<v1::AudioFrame>(topics::kAudioMic, [got](const auto& m) { got->push_back(m.header.seq()); });
    lazy->SetLazy(topics::kAudioMic, true);
    EXPECT_TRUE(PublishUntil([&] {
      lazy->DrainLazy();
      return Local(*lazy) && Local(*sub_) && !pub_->HasBrokerSubscriber(Plane::kStream, "audio.mic/local");
    }));
    return lazy;
  }
  // A listening socket in the rendezvous folder, as a publisher's: readers
  // connect to it at their next rescan. -1 on failure.
  int FakePublisher() {
    const std::string path = dir_.File("bus.local") + "/999999.0.0badf00d";
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) {
      if (fd >= 0) ::close(fd);
      return -1;
    }
    return fd;
  }
  // Every seq from the first one heard, once, in order.
  static void ExpectContiguous(const std::vector<uint64_t>& seqs) {
    ASSERT_FALSE(seqs.empty());
    for (size_t i = 1; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], seqs[i - 1] + 1) << "at " << i << " of " << seqs.size();
  }

  vb::testing::TempDir dir_;
  zmq::context_t ctx_{1};
  Loop loop_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Node> pub_, sub_;
  Publisher<v1::AudioFrame> mic_;
  std::vector<uint64_t> seqs_;
};

TEST_F(LocalPlaneTest, FramesGoStraightAndTheBrokerCarriesNone) {
  // Publishing from before the reader's subscription reached anyone: the
  // switch from the broker's path to the local one happens mid-stream.
  ASSERT_TRUE(PublishUntil([&] { return Local(*sub_) && sub_->local()->Covered("audio.mic/local"); }));
  // The reader's ZeroMQ subscription is withdrawn; once that has reached the
  // publisher and what it sent before has passed (20 frames later), 200
  // more frames: none through the broker.
  ASSERT_TRUE(PublishUntil([&] { return !pub_->HasBrokerSubscriber(Plane::kStream, "audio.mic/local"); }));
  const size_t settled = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= settled + 20; }));
  const uint64_t forwarded = broker_->counters().forwarded[int(Plane::kStream)];
  const size_t start = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= start + 200; }));
  EXPECT_EQ(broker_->counters().forwarded[int(Plane::kStream)], forwarded) << "stream frames went through the broker";
  ExpectContiguous(seqs_);
  EXPECT_EQ(sub_->seq_tracker().total_lost(), 0u);
  EXPECT_EQ(sub_->seq_tracker().total_restarts(), 0u);
  EXPECT_GE(pub_->local()->counters().sent, 200u);
}

TEST_F(LocalPlaneTest, NothingLostOrDoubledAroundTheSwitchAtAnyRate) {
  // As fast as the loop goes (no wait between frames): the two paths race.
  ASSERT_TRUE(PublishUntil([&] { return Local(*sub_) && seqs_.size() > 500; }, milliseconds(0)));
  const size_t n = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= n + 500; }, milliseconds(0)));
  ExpectContiguous(seqs_);
  EXPECT_EQ(sub_->seq_tracker().total_lost(), 0u);
  EXPECT_EQ(sub_->seq_tracker().total_restarts(), 0u);
  EXPECT_EQ(sub_->counters().malformed.total(), 0u);
}

// A reply's audio comes as a burst (session.audio: ~130 packets at once):
// a switch that begins inside one holds the whole burst, not part of it.
TEST_F(LocalPlaneTest, ASwitchInsideABurstLosesNothing) {
  uint64_t published = 0;
  auto burst = [&] {
    for (int i = 0; i < 90; ++i) {  // under the stream high-water mark (100) of ZeroMQ's path
      v1::AudioFrame f;
      f.set_pcm(std::string(640, '\x03'));
      mic_.Publish(f);
      ++published;
    }
  };
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return pub_->HasSubscriber(mic_); }, milliseconds(3000)));
  const auto end = Clock::now() + milliseconds(10000);
  while (Clock::now() < end && !(Local(*sub_) && sub_->local()->Covered("audio.mic/local"))) {
    burst();
    ASSERT_TRUE(vb::testing::RunUntil(
        loop_, [&] { return !seqs_.empty() && seqs_.back() == published; }, milliseconds(5000)));
  }
  burst();
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return !seqs_.empty() && seqs_.back() == published; }, milliseconds(5000)));
  ExpectContiguous(seqs_);
  EXPECT_EQ(sub_->seq_tracker().total_lost(), 0u);
  EXPECT_EQ(sub_->seq_tracker().total_restarts(), 0u);
}

TEST_F(LocalPlaneTest, TheSnifferStillHearsEveryFrame) {
  auto sniffer = MakeNode("sniffer");
  std::vector<uint64_t> sniffed;
  sniffer->SubscribeRaw(Plane::kStream, "audio.mic/", [&](const RawMessage& m) {
    if (m.header) sniffed.push_back(m.header->seq());
  });
  // At the audio's own rate (a frame every 20 ms): ten times faster, a
  // loaded machine can starve ZeroMQ's I/O threads long enough for the
  // stream plane's high-water mark (100) to drop stale frames on the
  // broker's path, by design and counted (1 run in 10 beside two busy
  // loops lost 10 frames at a frame every 2 ms).
  constexpr milliseconds kAudioRate(20);
  ASSERT_TRUE(PublishUntil([&] { return Local(*sub_) && !sniffed.empty(); }, kAudioRate));
  const size_t from = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= from + 100; }, kAudioRate));
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return sniffed.back() >= seqs_.back(); }, milliseconds(3000)));
  ExpectContiguous(sniffed);
  ExpectContiguous(seqs_);
}

TEST_F(LocalPlaneTest, APublisherThatDiesIsHeardThroughTheBrokerThenLocallyAgain) {
  ASSERT_TRUE(PublishUntil([&] { return Local(*sub_) && sub_->local()->Covered("audio.mic/local"); }));
  pub_.reset();  // as a kill: its connection ends
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return !sub_->local()->Covered("audio.mic/local"); }, milliseconds(3000)));
  // Its successor (same name, seq from 1 again) is heard at once, first
  // through the broker, then straight.
  pub_ = MakeNode("capture");
  pub_->SetActive(true);
  mic_ = pub_->Advertise(topics::kAudioMic);
  // As any publisher that must not lose its first frames: once someone
  // listens (ZeroMQ's subscription forwarded, or a local reader).
  ASSERT_TRUE(vb::testing::RunUntil(
      loop_, [&] { return pub_->HasSubscriber(mic_); }, milliseconds(3000)));
  const uint64_t received = sub_->local()->counters().received;
  const uint64_t lost = sub_->seq_tracker().total_lost();
  seqs_.clear();
  ASSERT_TRUE(PublishUntil([&] { return sub_->local()->counters().received > received + 50; }));
  ASSERT_FALSE(seqs_.empty());
  EXPECT_EQ(seqs_.front(), 1u);
  ExpectContiguous(seqs_);
  EXPECT_EQ(sub_->seq_tracker().total_lost(), lost);
}

TEST_F(LocalPlaneTest, AudioKeepsFlowingWhileTheBrokerIsDown) {
  ASSERT_TRUE(PublishUntil([&] { return Local(*sub_) && sub_->local()->Covered("audio.mic/local"); }));
  broker_.reset();
  const size_t n = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= n + 100; }));
  ExpectContiguous(seqs_);
}

TEST_F(LocalPlaneTest, AReaderThatFallsBehindLosesFramesAndItIsCounted) {
  // The reader runs its own loop, which this test stops turning.
  Loop reader_loop;
  auto slow = MakeNode("slow", &reader_loop);
  uint64_t got = 0;
  slow->Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto&) { ++got; });
  ASSERT_TRUE(PublishUntil([&] {
    reader_loop.RunOnce(milliseconds(0));
    return slow->local()->counters().received > 0;
  }));
  ASSERT_TRUE(PublishUntil([&] {
    reader_loop.RunOnce(milliseconds(0));
    return slow->local()->Covered("audio.mic/local") && sub_->local()->Covered("audio.mic/local");
  }));
  const uint64_t lost_before = slow->seq_tracker().total_lost() + sub_->seq_tracker().total_lost();
  // 5000 frames while neither reader reads: their sockets' buffers fill,
  // the rest is dropped at the publisher (counted) and seen as gaps.
  for (int i = 0; i < 5000; ++i) {
    v1::AudioFrame f;
    f.set_pcm(std::string(640, '\x02'));
    mic_.Publish(f);
  }
  const uint64_t dropped = pub_->local()->counters().dropped;
  EXPECT_GT(dropped, 0u);
  EXPECT_LT(dropped, 2u * 5000u);  // each kept what its buffer holds
  uint64_t slow_last = 0;
  slow->Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto& m) { slow_last = m.header.seq(); });
  const uint64_t burst_end = seqs_.empty() ? 0 : seqs_.back() + 5000;
  ASSERT_TRUE(PublishUntil([&] {
    reader_loop.RunOnce(milliseconds(0));
    return slow_last > burst_end && !seqs_.empty() && seqs_.back() > burst_end;
  }));
  EXPECT_GT(slow->seq_tracker().total_lost(), 0u);
  // Every frame dropped at the publisher (the burst's, and any while they
  // caught up) is a gap one of them counted; nothing else was lost.
  EXPECT_EQ(slow->seq_tracker().total_lost() + sub_->seq_tracker().total_lost() - lost_before,
            pub_->local()->counters().dropped);
  EXPECT_EQ(slow->seq_tracker().total_restarts(), 0u);  // nothing came out of order
  EXPECT_GT(got, 0u);
}

// A peer that listens in the rendezvous folder and answers a reader with
// garbage: counted as malformed, that connection is closed, the reader keeps
// hearing the real publisher.
TEST_F(LocalPlaneTest, AHostilePeerIsCountedAndCutOff) {
  ASSERT_TRUE(PublishUntil([&] { return Local(*sub_); }));
  const int lfd = FakePublisher();
  ASSERT_GE(lfd, 0) << strerror(errno);
  std::vector<int> conns;
  const uint64_t malformed = sub_->counters().malformed.total();
  int attacks = 0;
  // Each connection from the reader gets one kind of garbage; the reader
  // closes it and, at its next rescan, comes back for the next kind.
  using namespace std::string_literals;
  const std::string announce = "A\x01\0\0\0\0\0\0\0"s + "audio.mic/local";
  const std::vector<std::vector<std::string>> garbage = {
      {"Z nonsense"},                    // an unknown packet
      {"M\x0f\0\0\0audio.mic/local"s},   // a message on a topic it never announced
      {announce, "M\xff\xff\xff\xff"s},  // announced, then shorter than its lengths
      {"H"},                             // a hello without a name
  };
  ASSERT_TRUE(PublishUntil(
      [&] {
        int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          conns.push_back(c);
          for (const auto& packet : garbage[size_t(attacks) % garbage.size()])
            ::send(c, packet.data(), packet.size(), MSG_NOSIGNAL);
          ++attacks;
        }
        return attacks >= int(garbage.size()) && sub_->counters().malformed.total() >= malformed + garbage.size();
      },
      milliseconds(2), milliseconds(20000)));
  const size_t n = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= n + 100; }));
  ExpectContiguous(seqs_);
  EXPECT_GE(sub_->local()->counters().bad_packets, garbage.size());
  for (int c : conns) ::close(c);
  ::close(lfd);
}

// vb-control's hearing watch reads audio.clean in batches (BatchPlane):
// local frames wait for the batch too instead of waking it 50 times a second.
TEST_F(LocalPlaneTest, ABatchedPlaneReadsLocalFramesOnlyAtItsBatch) {
  auto batched = MakeNode("control");
  uint64_t got = 0;
  batched->Subscribe<v1::AudioFrame>(topics::kAudioMic, [&](const auto&) { ++got; });
  ASSERT_TRUE(PublishUntil(
      [&] { return batched->local()->Covered("audio.mic/local") && sub_->local()->Covered("audio.mic/local"); }));
  batched->BatchPlane(Plane::kStream, milliseconds(60000));
  const uint64_t before = got;
  const size_t n = seqs_.size();
  // sub_ (not batched) hears 20 frames; the batched reader none until it drains.
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= n + 20; }));
  EXPECT_EQ(got, before);
  batched->Drain(Plane::kStream);
  EXPECT_GE(got, before + 20);
}

// vb-afe reads audio.ref only as each mic frame comes (Node::SetLazy): a
// lazy topic's local frames do not wake the reader; they wait, all of them
// and in order, until DrainLazy(); made eager again, they wake it at once.
TEST_F(LocalPlaneTest, ALazyTopicWaitsForADrainAndLosesNothing) {
  std::vector<uint64_t> got;
  auto lazy = SettledLazyReader(&got);
  ASSERT_FALSE(::testing::Test::HasFailure());
  const size_t settled = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] {
    lazy->DrainLazy();
    return seqs_.size() >= settled + 20;
  }));
  lazy->DrainLazy();
  const size_t before = got.size();
  const size_t n = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= n + 20; }));  // the eager reader hears them
  EXPECT_EQ(got.size(), before) << "a lazy topic woke its reader";
  lazy->DrainLazy();
  EXPECT_GE(got.size(), before + 20);
  lazy->SetLazy(topics::kAudioMic, false);
  const size_t eager = got.size();
  ASSERT_TRUE(PublishUntil([&] { return got.size() >= eager + 20; }));
  ExpectContiguous(got);
  EXPECT_EQ(lazy->seq_tracker().total_lost(), 0u);
}

// A hostile same-host "publisher" behind a lazy topic: its connection has
// left the poll set, so its garbage is read only at the next drain — and
// then counted and cut off like any other, the real stream going on whole.
TEST_F(LocalPlaneTest, AHostilePeerBehindALazyTopicIsCutOffAtTheDrain) {
  std::vector<uint64_t> got;
  auto lazy = SettledLazyReader(&got);
  ASSERT_FALSE(::testing::Test::HasFailure());
  const int lfd = FakePublisher();
  ASSERT_GE(lfd, 0) << strerror(errno);
  std::vector<int> conns;  // one from each reader (the eager and the lazy one)
  using namespace std::string_literals;
  // A proper hello and announcement: the connection carries only the lazy
  // topic, and once its switch gives up waiting for ZeroMQ (kHoldMax) it
  // leaves the lazy reader's poll set.
  const std::string hello = "Hbadf00d", announce = "A\x01\0\0\0\0\0\0\0"s + "audio.mic/local";
  std::chrono::steady_clock::time_point announced;  // to the last of them (readers come at their rescan)
  ASSERT_TRUE(PublishUntil(
      [&] {
        lazy->DrainLazy();
        for (int c; (c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
          conns.push_back(c);
          ::send(c, hello.data(), hello.size(), MSG_NOSIGNAL);
          ::send(c, announce.data(), announce.size(), MSG_NOSIGNAL);
          announced = std::chrono::steady_clock::now();
        }
        return conns.size() >= 2 &&
               std::chrono::steady_clock::now() - announced > LocalPlane::kHoldMax + milliseconds(500);
      },
      milliseconds(20), milliseconds(20000)))
      << conns.size() << " readers connected";
  const uint64_t bad = lazy->local()->counters().bad_packets;
  const uint64_t closed = lazy->local()->counters().peers_closed;
  const std::string garbage = "M\xff\xff\xff\xff"s;  // shorter than its lengths
  for (int c : conns) ::send(c, garbage.data(), garbage.size(), MSG_NOSIGNAL);
  const size_t n = seqs_.size();
  ASSERT_TRUE(PublishUntil([&] { return seqs_.size() >= n + 20; }));  // the eager reader goes on
  EXPECT_EQ(lazy->local()->counters().bad_packets, bad) << "the lazy connection woke its reader";
  lazy->DrainLazy();
  EXPECT_GT(lazy->local()->counters().bad_packets, bad) << "the garbage was not counted at the drain";
  EXPECT_GT(lazy->local()->counters().peers_closed, closed) << "the hostile peer was not cut off";
  const size_t before = got.size();
  ASSERT_TRUE(PublishUntil([&] {
    lazy->DrainLazy();
    return got.size() >= before + 20;
  }));
  ExpectContiguous(got);
  EXPECT_EQ(lazy->seq_tracker().total_lost(), 0u);
  for (int c : conns) ::close(c);
  ::close(lfd);
}

TEST_F(LocalPlaneTest, OffByConfigOrOnAnotherTransport) {
  BusConfig off = Config();
  off.local_stream = false;
  Node n(ctx_, loop_, "off", "local", off);
  ASSERT_TRUE(n.Connect().ok());
  EXPECT_EQ(n.local(), nullptr);
  EXPECT_EQ(LocalPlane::DirFor("tcp://127.0.0.1:5560"), "");
  EXPECT_EQ(LocalPlane::DirFor("inproc://x"), "");
  EXPECT_EQ(LocalPlane::DirFor("ipc:///run/vb/bus"), "/run/vb/bus.local");
}

}  // namespace
}  // namespace vb::bus
