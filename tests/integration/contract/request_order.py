#!/usr/bin/python3
"""Requests reach vb-control on dialog.request; its orders go on dialog.order, never back on dialog.request.

  request_order.py BUILD/bin

A private vb-broker and vb-control; an actor written with the Python SDK (sdk/python) asks for an
interrupt every 200 ms on dialog.request with a command_id, and `vb interrupt` (the CLI) asks once.
Checks: vb-control answers the SDK's request and the CLI's on dialog.ack (the CLI exits 0); it orders
the interrupt on dialog.order (the turn the SDK named); it publishes nothing on dialog.request.
Every process it starts is stopped.
"""
import os, shutil, signal, subprocess, sys, tempfile, time
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "sdk", "python"))
import voicebus as vb
import zmq

ASKER = '''
import sys
sys.path.insert(0, %r)
import voicebus as vb
M = vb.MESSAGES

class Asker(vb.Actor):
    kind = "asker"
    def configure(self, bus):
        self.ask, self.n = bus.advertise("dialog.request"), 0
        self.timer(0.2, self.tick)
    def tick(self):
        self.n += 1
        self.ask(M["vb.v1.DialogRequest"](interrupt=M["vb.v1.Interrupt"](reason=4, turn_id="sdk-turn"),
                                          command_id="sdk-%%d" %% self.n))

vb.run(Asker)
''' % os.path.join(REPO, "sdk", "python")

from checks import check, fails


def main():
    bindir = sys.argv[1]
    d = tempfile.mkdtemp(prefix="vb-reqord-")
    ep = "ipc://%s/bus" % d
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        f.write("bus:\n  endpoint: %s\n  heartbeat_ms: 200\ncontrol:\n  health:\n    watch: []\n" % ep)
    with open(os.path.join(d, "asker.py"), "w") as f:
        f.write(ASKER)
    ctx = zmq.Context()
    procs = []
    seen = []  # (base, source, message)
    try:
        procs.append(subprocess.Popen([os.path.join(bindir, "vb-broker"), "--config", cfg]))
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(vb._endpoints(ep)[1][1])  # the control plane's out
        sub.setsockopt(zmq.SUBSCRIBE, b"dialog.")
        procs.append(subprocess.Popen([os.path.join(bindir, "vb-control"), "--config", cfg, "--name", "control"]))
        procs.append(subprocess.Popen([sys.executable, os.path.join(d, "asker.py"), "--config", cfg, "--name", "asker"]))

        def pump(until, deadline_s):
            end = time.monotonic() + deadline_s
            while time.monotonic() < end and not until():
                if sub.poll(50):
                    fr = sub.recv_multipart()
                    if len(fr) != 3:
                        continue
                    h = vb.Header()
                    h.ParseFromString(fr[1])
                    base = fr[0].decode().split("/")[0]
                    if h.type in vb.MESSAGES:
                        m = vb.MESSAGES[h.type]()
                        m.ParseFromString(fr[2])
                        seen.append((base, h.source, m))
            return until()

        def acked(prefix):
            return any(b == "dialog.ack" and s == "control" and m.command_id.startswith(prefix) and
                       m.result == m.ACCEPTED for b, s, m in seen)

        check(pump(lambda: acked("sdk-"), 15), "vb-control answers the SDK actor's request on dialog.ack")
        check(any(b == "dialog.request" and s == "asker" for b, s, _ in seen),
              "the SDK actor's request travels on dialog.request")
        check(pump(lambda: any(b == "dialog.order" and s == "control" and m.HasField("interrupt") and
                               m.interrupt.turn_id == "sdk-turn" for b, s, m in seen), 5),
              "vb-control orders the interrupt on dialog.order")
        cli = subprocess.run([os.path.join(bindir, "vb"), "interrupt", "--config", cfg, "--timeout", "10"],
                             capture_output=True, text=True, timeout=30)
        check(cli.returncode == 0, "vb interrupt is answered by vb-control (exit %d: %s)"
              % (cli.returncode, (cli.stdout + cli.stderr).strip()))
        check(pump(lambda: acked("vb-"), 5), "vb-control's answer to vb interrupt on dialog.ack")
        pump(lambda: False, 0.5)
        from_control = [m for b, s, m in seen if b == "dialog.request" and s == "control"]
        check(not from_control, "vb-control publishes nothing on dialog.request (%d messages)" % len(from_control))
        check(not any(b == "dialog.order" and s != "control" for b, s, _ in seen),
              "only vb-control publishes on dialog.order")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        ctx.destroy(linger=0)
        shutil.rmtree(d, ignore_errors=True)
    print("request/order: %s" % ("PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
