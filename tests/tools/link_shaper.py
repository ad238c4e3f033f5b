#!/usr/bin/env python3
"""link_shaper: a TCP relay that makes a link Wi-Fi-like in user space, and
counts its bytes. An EMULATION, for kernels without sch_netem (tc netem):
it delays each chunk it relays by DELAY ± JITTER ms (uniform), in order, as
TCP delivers; a lost packet is stood in for by stalling a chunk by a
retransmission-like delay (STALL ms, Linux's least RTO is 200 ms) with
probability LOSS. TCP hides loss from the application as exactly such a
stall, so the bus sees what it would see over a lossy link, though the
kernel's own congestion control never sees a loss. For REAL loss, drop
packets in the kernel instead (tests/tools/packet_loss.bpf.c, a clsact
egress filter) and pass --loss 0 here, as e2e_satellites_netns does: the
shaper then only delays.

  link_shaper.py --listen HOST:PORT --to HOST:PORT [--delay-ms 30]
                 [--jitter-ms 20] [--loss 0.02] [--stall-ms 200] [--seed N]
                 [--ports N] [--stats FILE]

--ports N relays N consecutive ports: listen PORT+i to the target's PORT+i
(a voicebus tcp:// endpoint uses 4: two per plane).
--delay-ms 0 --jitter-ms 0 --loss 0: a counting proxy only. Prints
"listening HOST:PORT" once it accepts; --stats FILE gets a JSON object
(bytes and chunks each way, stalls, connections), rewritten each second and
at exit (SIGTERM/SIGINT). One connection to --to per accepted connection;
either side closing closes the other.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got '{s}'")
    return host, int(port)


class Shaper:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.stats = {"emulation": "userspace TCP relay (no sch_netem)", "delay_ms": a.delay_ms,
                      "jitter_ms": a.jitter_ms, "loss": a.loss, "stall_ms": a.stall_ms,
                      "bytes_up": 0, "bytes_down": 0, "chunks_up": 0, "chunks_down": 0,
                      "stalls": 0, "connections": 0, "started": time.time()}

    def delay(self):
        d = self.a.delay_ms + self.rng.uniform(-self.a.jitter_ms, self.a.jitter_ms)
        if self.a.loss > 0 and self.rng.random() < self.a.loss:
            self.stats["stalls"] += 1
            d += self.a.stall_ms
        return max(0.0, d) / 1000.0

    async def pipe(self, reader, writer, way):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        shaping = self.a.delay_ms > 0 or self.a.jitter_ms > 0 or self.a.loss > 0

        async def send():
            try:
                while True:
                    at, data = await queue.get()
                    if data is None:
                        break
                    wait = at - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)  # the link's delay itself
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        sender = asyncio.ensure_future(send())
        last = 0.0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.stats["bytes_" + way] += len(data)
                self.stats["chunks_" + way] += 1
                at = loop.time() + (self.delay() if shaping else 0)
                last = max(last, at)  # in order, as TCP delivers
                queue.put_nowait((last, data))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((0, None))
        await sender

    async def client(self, reader, writer, i):
        self.stats["connections"] += 1
        to = (self.a.to[0], self.a.to[1] + i)
        try:
            ur, uw = await asyncio.open_connection(*to)
        except OSError as e:
            print(f"link_shaper: cannot reach {to[0]}:{to[1]}: {e}", file=sys.stderr)
            writer.close()
            return
        await asyncio.gather(self.pipe(reader, uw, "up"), self.pipe(ur, writer, "down"))

    def write_stats(self):
        if not self.a.stats:
            return
        s = dict(self.stats, seconds=round(time.time() - self.stats["started"], 3))
        tmp = self.a.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(s, f)
        os.replace(tmp, self.a.stats)

    async def main(self):
        servers = []
        for i in range(self.a.ports):
            servers.append(await asyncio.start_server(lambda r, w, i=i: self.client(r, w, i), self.a.listen[0],
                                                      self.a.listen[1] + i, reuse_address=True))
        print(f"listening {self.a.listen[0]}:{self.a.listen[1]}", flush=True)
        stop = asyncio.Event()
        for s in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(s, stop.set)
        while not stop.is_set():
            self.write_stats()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        for server in servers:
            server.close()
        self.write_stats()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--listen", type=hostport, required=True)
    p.add_argument("--to", type=hostport, required=True)
    p.add_argument("--delay-ms", type=float, default=30)
    p.add_argument("--jitter-ms", type=float, default=20)
    p.add_argument("--loss", type=float, default=0.02, help="probability a chunk stalls as if lost")
    p.add_argument("--stall-ms", type=float, default=200, help="the stall standing in for a retransmission")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--ports", type=int, default=1, help="consecutive ports relayed (voicebus tcp://: 4)")
    p.add_argument("--stats", default="")
    a = p.parse_args()
    if a.jitter_ms > a.delay_ms or a.delay_ms < 0 or not 0 <= a.loss <= 1 or a.stall_ms < 0 or a.ports < 1:
        p.error("need 0 <= jitter-ms <= delay-ms, 0 <= loss <= 1, stall-ms >= 0, ports >= 1")
    try:
        asyncio.run(Shaper(a).main())
    except OSError as e:
        print(f"link_shaper: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
