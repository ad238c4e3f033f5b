#!/usr/bin/python3
"""vb run supervises an actor given as `command:` like a built-in one.

  launcher_command.py BUILD/bin

A config lists wakevad with `command: [/usr/bin/python3, sdk/python/examples/energy_vad.py]`.
Checks: its heartbeat (kind wakevad, the Python process's pid) arrives; after kill -9 it is
restarted (a new pid heartbeats); vb --print-default-config documents `command`; a
bad key in its section is reported by the actor itself with file:line and vb run goes on
without it (exit 78 when stopped); SIGTERM stops vb run and the actor within 5 s.
"""
import os, shutil, signal, subprocess, sys, tempfile, time
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "sdk", "python"))
import voicebus as vb
import zmq

from checks import check, fails


def run(bindir, extra):
    d = tempfile.mkdtemp(prefix="vb-cmd-")
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        f.write("bus:\n  endpoint: ipc://%s/bus\n  heartbeat_ms: 200\n"
                "launcher:\n  actors: [wakevad]\n  log_dir: %s\n"
                "wakevad:\n  command: [/usr/bin/python3, %s/sdk/python/examples/energy_vad.py]\n%s"
                % (d, d, REPO, extra))
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(vb._endpoints("ipc://%s/bus" % d)[1][1])
    sub.setsockopt(zmq.SUBSCRIBE, b"actor.heartbeat/")
    env = dict(os.environ, VB_RUN_DIR=d)
    p = subprocess.Popen([os.path.join(bindir, "vb"), "run", cfg, "--quiet"], env=env,
                         stdout=open(os.path.join(d, "vb.err"), "w"), stderr=subprocess.STDOUT)

    def beat_from(pred, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if sub.poll(100):
                fr = sub.recv_multipart()
                hb = vb.Heartbeat()
                hb.ParseFromString(fr[2])
                if pred(hb):
                    return hb
        return None
    return d, cfg, ctx, sub, p, beat_from


def stop(p):
    """SIGTERM to vb run; its exit code, or None if it still runs after 5 s."""
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def teardown(p, ctx, d):
    if p.poll() is None:
        p.kill()
    p.wait()
    ctx.destroy(linger=0)
    shutil.rmtree(d, ignore_errors=True)


def main():
    bindir = sys.argv[1]
    out = subprocess.run([os.path.join(bindir, "vb"), "--print-default-config"], capture_output=True, text=True).stdout
    check("command: []" in out, "vb --print-default-config documents every actor's `command`")

    d, cfg, ctx, sub, p, beat_from = run(bindir, "")
    try:
        hb = beat_from(lambda h: h.actor == "wakevad" and h.kind == "wakevad", 15)
        check(hb is not None, "the Python wakevad started by vb run heartbeats")
        if hb:
            with open("/proc/%d/cmdline" % hb.pid) as f:
                cmd = f.read().split("\0")
            check("energy_vad.py" in cmd[1] and "--name" in cmd, "it is the command given, with --config and --name: %s" % cmd[:2])
            os.kill(hb.pid, signal.SIGKILL)
            hb2 = beat_from(lambda h: h.actor == "wakevad" and h.pid != hb.pid, 15)
            check(hb2 is not None, "after kill -9 it is restarted (new pid %s)" % (hb2.pid if hb2 else None))
            pid = hb2.pid if hb2 else hb.pid
        t0 = time.monotonic()
        rc = stop(p)
        check(rc == 0, "SIGTERM: vb run exits 0 within 5 s (%s after %.1f s)" % (rc, time.monotonic() - t0))
        check(hb is None or not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
              "the actor is gone")
    finally:
        teardown(p, ctx, d)

    d, cfg, ctx, sub, p, beat_from = run(bindir, "  threshold_dbfs: loud\n")
    try:
        # The actor exits 78 at once; vb run reports it and keeps running without it.
        end = time.monotonic() + 15
        log = ""
        while time.monotonic() < end and "not restarted" not in log:
            log = open(os.path.join(d, "vb.err")).read()
            if "not restarted" not in log:
                sub.poll(100)  # a bounded wait for vb run to report the exit
        check("c.yaml:9:19: wakevad.threshold_dbfs" in log and "threshold_dbfs" in log, "a bad key is reported by the actor with file:line on vb run's console: %r" % log.strip()[-160:])
        check(p.poll() is None, "vb run goes on without it")
        rc = stop(p)
        check(rc == 78, "vb run exits 78 when stopped (%s)" % rc)
    finally:
        teardown(p, ctx, d)
    print("launcher command: %s" % ("PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
