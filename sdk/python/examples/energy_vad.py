#!/usr/bin/python3
"""An energy VAD in Python: audio.clean in, voice.vad out (the same VadEvent as vb-wakevad)."""
import array, math, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import voicebus as vb


class EnergyVad(vb.Actor):
    kind = "wakevad"

    def declare(self, s):
        self.threshold = s.key("threshold_dbfs", -40.0, "frame level counted as speech")
        self.hang = s.key("min_silence_frames", 25, "quiet 20 ms frames before SPEECH_END")

    def configure(self, bus):
        self.vad, self.speaking, self.quiet = bus.advertise("voice.vad"), False, 0
        bus.subscribe("audio.clean", self.on_audio)

    def on_audio(self, frame, header, topic):
        pcm = array.array("h", frame.pcm)
        db = 10 * math.log10(sum(x * x for x in pcm) / max(1, len(pcm)) / 32768.0 ** 2 + 1e-12)
        loud = db > self.threshold
        self.quiet = 0 if loud else self.quiet + 1
        if loud != self.speaking and (loud or self.quiet >= self.hang):
            self.speaking = loud
            kind = vb.MESSAGES["vb.v1.VadEvent"].SPEECH_START if loud else vb.MESSAGES["vb.v1.VadEvent"].SPEECH_END
            self.vad(vb.MESSAGES["vb.v1.VadEvent"](kind=kind, sample_index=frame.sample_index,
                                                   probability=1.0, detector="py-energy"),
                     origin_ns=header.origin_ns)


if __name__ == "__main__":
    vb.run(EnergyVad)
