// packet_loss: a tc (clsact) classifier that drops a share of the packets
// leaving a device, in the kernel, for links where sch_netem is missing.
// Real loss: TCP sees it and retransmits, as over a lossy Wi-Fi link.
//
// The share is set when compiling, in parts per million:
//   clang -O2 -target bpf -I/usr/include/$(clang -print-multiarch) \
//         -DLOSS_PPM=20000 -c packet_loss.bpf.c -o packet_loss.o   (2 %)
//   tc qdisc add dev DEV clsact
//   tc filter add dev DEV egress bpf da obj packet_loss.o sec classifier
// Dropped packets are counted by the clsact qdisc: `tc -s qdisc show dev DEV`
// ("dropped N"). Used by tests/e2e/satellites/netns_test.sh.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#ifndef LOSS_PPM
#error "define LOSS_PPM, the share of packets dropped in parts per million (20000 = 2 %)"
#endif
#if LOSS_PPM < 0 || LOSS_PPM > 1000000
#error "LOSS_PPM must be 0..1000000"
#endif

static unsigned int (*bpf_get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;

__attribute__((section("classifier"), used)) int drop_share(struct __sk_buff *skb) {
  (void)skb;
  return (bpf_get_prandom_u32() % 1000000u) < (unsigned int)LOSS_PPM ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
