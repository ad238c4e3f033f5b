"""voicebus actor library for Python (Debian: python3-zmq, python3-protobuf, python3-yaml).

An actor is a process on the bus, like the C++ vb-KIND binaries: it takes
`--config FILE --name NAME` (the launcher passes both), `--print-default-config`
and `--help`; validates its own config section (errors name file:line:key,
exit 78); stamps every message with a vb.v1.Header (type, per-topic seq from
1, CLOCK_MONOTONIC times, source, device); checks and counts malformed
frames; counts sequence gaps as drops; publishes vb.v1.Heartbeat every
bus.heartbeat_ms; and stops on SIGTERM/SIGINT (STOPPING heartbeat, exit 0).
The wire is described in docs/wire.md. Topics and payload types are read
from bus/topics.h, the protobuf modules generated from proto/ by the build
(sdk/CMakeLists.txt), so neither can drift from the C++ runtime.
"""
import os, re, signal, socket, sys, time, importlib

EXIT_USAGE, EXIT_CONFIG = 64, 78
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.environ.get("VB_SOURCE_DIR", os.path.normpath(os.path.join(_HERE, "..", "..")))


def _load_protos():
    """vb.v1 *_pb2 modules, generated from proto/ by the build (BUILD/sdk/python; installed
    beside this file): VB_PROTO_PY if set (ctest, `vb run` and `vb contract test` set it),
    else the vb/ folder next to voicebus.py."""
    out = os.environ.get("VB_PROTO_PY") or _HERE
    if not os.path.exists(os.path.join(out, "vb", "v1", "header_pb2.py")):
        sys.stderr.write("voicebus: no generated protobuf modules in %s: build them (cmake --build BUILD --target "
                         "sdk_python_protos) and set VB_PROTO_PY=BUILD/sdk/python, or use the installed library "
                         "(share/voicebus/sdk/python)\n" % out)
        sys.exit(EXIT_CONFIG)
    if out not in sys.path:
        sys.path.insert(0, out)
    mods = {}
    for f in sorted(os.listdir(os.path.join(out, "vb", "v1"))):
        if f.endswith("_pb2.py"):
            mods[f[:-3]] = importlib.import_module("vb.v1." + f[:-3])
    return mods


_PB = _load_protos()
MESSAGES = {}  # "vb.v1.AudioFrame" -> class
for _m in _PB.values():
    for _name in _m.DESCRIPTOR.message_types_by_name:
        _cls = getattr(_m, _name)
        MESSAGES[_cls.DESCRIPTOR.full_name] = _cls
Header = MESSAGES["vb.v1.Header"]
Heartbeat = MESSAGES["vb.v1.Heartbeat"]

STREAM, CONTROL = 0, 1


def _topic_table():
    """base -> (payload full name, plane), parsed from bus/topics.h."""
    path = os.environ.get("VB_TOPICS_H", os.path.join(_REPO, "bus", "topics.h"))
    pat = re.compile(r'Topic<v1::(\w+)>\s+k\w+\{"([\w.]+)",\s*Plane::k(Stream|Control)\}')
    with open(path) as f:
        return {b: ("vb.v1." + t, STREAM if p == "Stream" else CONTROL) for t, b, p in pat.findall(f.read())}


TOPICS = _topic_table()
MALFORMED = ("frame_count", "topic", "header", "type_mismatch", "payload", "oversized")


class ConfigError(Exception):
    pass


class Section:
    """One config section; key() declares a key, its default and documentation."""

    def __init__(self, name, node, file, describe=False):
        self.name, self.node, self.file, self.describe = name, node, file, describe
        self.declared, self.errors, self.doc = [], [], []

    def _where(self, key):
        n = self.node
        if n is not None and hasattr(n, "value") and isinstance(n.value, list):
            for k, v in n.value:
                if k.value == key:
                    return "%s:%d:%d: %s.%s" % (self.file, v.start_mark.line + 1, v.start_mark.column + 1, self.name, key)
        line = n.start_mark.line + 1 if n is not None else 0
        return "%s:%d: %s.%s" % (self.file, line, self.name, key)

    def error(self, key, message):
        self.errors.append("%s: %s" % (self._where(key), message))

    def key(self, key, default, doc, allowed=None):
        self.declared.append(key)
        self.doc.append("  # %s\n  %s: %r" % (doc, key, default))
        value = default
        if self.node is not None and hasattr(self.node, "value") and isinstance(self.node.value, list):
            for k, v in self.node.value:
                if k.value == key:
                    import yaml
                    value = yaml.safe_load(yaml.serialize(v))
                    if isinstance(value, str):
                        value = os.path.expandvars(value)
                    ok = type(value) is type(default) or (isinstance(default, float) and type(value) is int)
                    if not ok:
                        self.error(key, "expected %s, got %r" % (type(default).__name__, value))
                        return default
                    if allowed is not None and value not in allowed:
                        self.error(key, "must be one of %s" % ", ".join(map(str, allowed)))
                        return default
                    value = type(default)(value)
        return value

    def finish(self):
        if self.node is not None and hasattr(self.node, "value") and isinstance(self.node.value, list):
            for k, _ in self.node.value:
                if k.value not in self.declared:
                    self.error(k.value, "unknown key")


def _endpoints(endpoint):
    """[(in, out) for stream, control] as docs/wire.md says."""
    if endpoint.startswith("ipc://") or endpoint.startswith("inproc://"):
        return [(endpoint + ".%s.in" % p, endpoint + ".%s.out" % p) for p in ("stream", "control")]
    if endpoint.startswith("tcp://"):
        host, port = endpoint.rsplit(":", 1)
        port = int(port)
        return [("%s:%d" % (host, port + 2 * p), "%s:%d" % (host, port + 2 * p + 1)) for p in (0, 1)]
    raise ConfigError("bus.endpoint: '%s' must start with ipc://, tcp:// or inproc://" % endpoint)


class Bus:
    """Publish and subscribe with the runtime's duties (Header, seq, checks, counters)."""

    def __init__(self, actor):
        import zmq
        self.a, self.zmq = actor, zmq
        self.ctx = zmq.Context()
        self.pub, self.sub = [], []
        for plane, (ein, eout) in enumerate(_endpoints(actor.endpoint)):
            hwm = actor.stream_hwm if plane == STREAM else actor.control_hwm
            p = self.ctx.socket(zmq.PUB)
            s = self.ctx.socket(zmq.SUB)
            for sock in (p, s):
                sock.setsockopt(zmq.SNDHWM if sock is p else zmq.RCVHWM, hwm)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(eout if sock is s else ein)
            self.pub.append(p)
            self.sub.append(s)
        self.seq, self.handlers, self.last_seq = {}, {}, {}
        self.counters = dict(msgs_in=0, msgs_out=0, drops=0, malformed=0, errors=0)
        self.malformed = {}
        self.lost = {}  # (source, topic) -> lost

    def advertise(self, base, device=None):
        if base not in TOPICS:
            raise ValueError("unknown topic base '%s' (bus/topics.h)" % base)
        topic = "%s/%s" % (base, device or self.a.device)
        return lambda msg, origin_ns=0, turn_id="": self.publish(topic, msg, origin_ns, turn_id)

    def publish(self, topic, msg, origin_ns=0, turn_id=""):
        base = topic.split("/", 1)[0]
        type_name, plane = TOPICS[base]
        if msg.DESCRIPTOR.full_name != type_name:
            raise TypeError("%s carries %s, not %s" % (base, type_name, msg.DESCRIPTOR.full_name))
        self.seq[topic] = self.seq.get(topic, 0) + 1
        h = Header(type=type_name, seq=self.seq[topic], mono_ns=time.monotonic_ns(), origin_ns=origin_ns,
                   source=self.a.name, device=topic.split("/", 1)[1], turn_id=turn_id)
        try:
            self.pub[plane].send_multipart([topic.encode(), h.SerializeToString(), msg.SerializeToString()],
                                           flags=self.zmq.NOBLOCK)
            self.counters["msgs_out"] += 1
            return True
        except self.zmq.Again:
            return False

    def subscribe(self, base, fn, device=None):
        """fn(msg, header, topic); device "*" hears every device."""
        if base not in TOPICS:
            raise ValueError("unknown topic base '%s' (bus/topics.h)" % base)
        prefix = base + "/" + ("" if device == "*" else (device or self.a.device))
        self.handlers[prefix] = (base, fn)
        self.sub[TOPICS[base][1]].setsockopt(self.zmq.SUBSCRIBE, prefix.encode())

    def _reject(self, why):
        self.counters["malformed"] += 1
        self.malformed[why] = self.malformed.get(why, 0) + 1

    def receive(self, plane):
        for _ in range(256):
            try:
                frames = self.sub[plane].recv_multipart(self.zmq.NOBLOCK)
            except self.zmq.Again:
                return
            self._handle(frames)

    def _handle(self, frames):
        from google.protobuf.message import DecodeError
        if len(frames) != 3:
            return self._reject("frame_count")
        topic = frames[0].decode("utf-8", "replace")
        if "/" not in topic or len(frames[0]) > 256:
            return self._reject("topic")
        base = topic.split("/", 1)[0]
        h = Header()
        try:
            if len(frames[1]) > 4096:
                raise DecodeError("oversized")
            h.ParseFromString(frames[1])
        except DecodeError:
            return self._reject("header")
        if base not in TOPICS or h.type != TOPICS[base][0]:
            return self._reject("type_mismatch")
        if len(frames[2]) > self.a.max_message_bytes:
            return self._reject("oversized")
        msg = MESSAGES[h.type]()
        try:
            msg.ParseFromString(frames[2])
        except DecodeError:
            return self._reject("payload")
        self.counters["msgs_in"] += 1
        key = (h.source, topic)
        last = self.last_seq.get(key)
        if last is not None and h.seq > last + 1:
            self.counters["drops"] += h.seq - last - 1
            self.lost[key] = self.lost.get(key, 0) + h.seq - last - 1
        self.last_seq[key] = h.seq
        for prefix, (b, fn) in self.handlers.items():
            if b == base and topic.startswith(prefix):
                try:
                    fn(msg, h, topic)
                except Exception as e:  # a handler error is counted, the actor keeps serving
                    self.counters["errors"] += 1
                    print("%s: handler error on %s: %r" % (self.a.name, topic, e), file=sys.stderr)


class Actor:
    """Subclass: set `kind`, define declare(section) and configure(bus); optional on_heartbeat(hb), stop()."""
    kind = "actor"

    def declare(self, section):
        pass

    def configure(self, bus):
        pass

    def on_heartbeat(self, hb):
        pass

    def stop(self):
        pass

    def timer(self, period_s, fn):
        self._timers.append([time.monotonic() + period_s, period_s, fn])


def _usage(kind):
    return ("usage: %s --config FILE [--name NAME]\n       %s --print-default-config\n"
            "A voicebus %s actor (Python). Exit: 0 stopped, 64 bad command line, 78 config error.\n"
            % (sys.argv[0], sys.argv[0], kind))


def run(actor_class, argv=None):
    """Parses the command line, loads the config, runs the actor until SIGTERM. Never returns."""
    sys.exit(_run(actor_class, sys.argv[1:] if argv is None else argv))


def _run(actor_class, args):
    import yaml
    a = actor_class()
    a._timers = []
    config, a.name, describe = None, a.kind, False
    i = 0
    while i < len(args):
        if args[i] in ("-h", "--help"):
            print(_usage(a.kind))
            return 0
        if args[i] == "--print-default-config":
            describe = True
        elif args[i] in ("--config", "--name") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            if args[i] == "--config":
                config = args[i + 1]
            else:
                a.name = args[i + 1]
            i += 1
        else:
            sys.stderr.write("%s: unknown or incomplete argument '%s'\n%s" % (a.kind, args[i], _usage(a.kind)))
            return EXIT_USAGE
        i += 1
    if describe:
        s = Section(a.kind, None, "-", True)
        s.key("device", "", "device this actor serves (one of devices.names; empty = the first)")
        s.key("command", [], "the program the launcher runs for this actor")
        a.declare(s)
        print("# %s (Python) — default configuration section\n%s:\n%s" % (a.kind, a.kind, "\n".join(s.doc)))
        return 0
    if not config:
        sys.stderr.write(_usage(a.kind))
        return EXIT_USAGE
    try:
        with open(config) as f:
            root = yaml.compose(f)
    except (OSError, yaml.YAMLError) as e:
        sys.stderr.write("%s: config error: %s: %s\n" % (a.name, config, e))
        return EXIT_CONFIG
    def node(name):
        if root is not None and isinstance(root.value, list):
            for k, v in root.value:
                if k.value == name:
                    return v
        return None
    bus_s = Section("bus", node("bus"), config)
    endpoint = bus_s.key("endpoint", "", "broker endpoint")
    a.endpoint = endpoint or ("ipc://%s/voicebus" % os.environ["XDG_RUNTIME_DIR"] if os.environ.get("XDG_RUNTIME_DIR")
                              else "ipc:///tmp/voicebus-%d" % os.getuid())
    a.stream_hwm = bus_s.key("stream_hwm", 100, "")
    a.control_hwm = bus_s.key("control_hwm", 100000, "")
    a.heartbeat_ms = bus_s.key("heartbeat_ms", 1000, "")
    a.max_message_bytes = bus_s.key("max_message_bytes", 4 << 20, "")
    insecure = bus_s.key("insecure", False, "")
    if bus_s.node is not None and node("bus") is not None and "curve" in [k.value for k, _ in node("bus").value]:
        bus_s.error("curve", "CURVE is not supported by the Python library yet")
    if a.endpoint.startswith("tcp://") and not insecure:
        bus_s.error("endpoint", "tcp:// without CURVE needs bus.insecure: true")
    dev_s = Section("devices", node("devices"), config)
    names = dev_s.key("names", ["local"], "")
    s = Section(a.name, node(a.name), config)
    a.device = s.key("device", "", "") or (names[0] if names else "local")
    s.key("command", [], "")
    a.declare(s)
    s.finish()
    errors = bus_s.errors + dev_s.errors + s.errors
    if errors:
        sys.stderr.write("%s: config error:\n%s\n" % (a.name, "\n".join(errors)))
        return EXIT_CONFIG
    return _serve(a)


def _serve(a):
    import zmq
    bus = a.bus = Bus(a)
    hb_pub = bus.advertise("actor.heartbeat")
    start = time.monotonic()
    rd, wr = socket.socketpair()
    rd.setblocking(False)
    wr.setblocking(False)
    signal.set_wakeup_fd(wr.fileno())
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(1))

    def heartbeat(state):
        hb = Heartbeat(actor=a.name, kind=a.kind, state=state, pid=os.getpid(),
                       uptime_ms=int((time.monotonic() - start) * 1000))
        for k, v in bus.counters.items():
            setattr(hb.counters, k, v)
        for (src, topic), lost in list(bus.lost.items())[:32]:
            hb.drops.add(source=src, topic=topic, lost=lost)
        for why, n in bus.malformed.items():
            hb.extra["malformed_" + why] = n
        a.on_heartbeat(hb)
        hb_pub(hb)

    try:
        a.configure(bus)
    except ConfigError as e:
        sys.stderr.write("%s: config error: %s\n" % (a.name, e))
        return EXIT_CONFIG
    poller = zmq.Poller()
    for s in bus.sub:
        poller.register(s, zmq.POLLIN)
    poller.register(rd, zmq.POLLIN)
    a.timer(a.heartbeat_ms / 1000.0, lambda: heartbeat(Heartbeat.ACTIVE))
    heartbeat(Heartbeat.ACTIVE)
    while not stopping:
        now = time.monotonic()
        wait = min(t[0] for t in a._timers) - now
        for sock, _ in poller.poll(max(0, int(wait * 1000))):
            if sock in bus.sub:
                bus.receive(bus.sub.index(sock))
            else:  # a signal woke us
                try:
                    rd.recv(64)
                except BlockingIOError:
                    pass
        now = time.monotonic()
        for t in a._timers:
            if t[0] <= now:
                t[0] = max(t[0] + t[1], now)
                t[2]()
    heartbeat(Heartbeat.STOPPING)
    a.stop()
    bus.ctx.destroy(linger=200)
    return 0
