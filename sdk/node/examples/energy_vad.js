#!/usr/bin/env node
// An energy VAD in Node.js: audio.clean in, voice.vad out (the same VadEvent as vb-wakevad).
const vb = require('../voicebus.js');
const VadEvent = vb.type('vb.v1.VadEvent');
vb.run({
  kind: 'wakevad',
  declare(s) {
    this.threshold = s.key('threshold_dbfs', -40, 'frame level counted as speech');
    this.hang = s.key('min_silence_frames', 25, 'quiet 20 ms frames before SPEECH_END');
  },
  configure(bus) {
    this.vad = bus.advertise('voice.vad'); this.speaking = false; this.quiet = 0;
    bus.subscribe('audio.clean', (frame, header) => {
      const pcm = new Int16Array(frame.pcm.buffer, frame.pcm.byteOffset, frame.pcm.length / 2);
      let e = 0; for (const x of pcm) e += x * x;
      const loud = 10 * Math.log10(e / Math.max(1, pcm.length) / 32768 ** 2 + 1e-12) > this.threshold;
      this.quiet = loud ? 0 : this.quiet + 1;
      if (loud !== this.speaking && (loud || this.quiet >= this.hang)) {
        this.speaking = loud;
        this.vad({ kind: loud ? VadEvent.parent.lookupEnum('VadEvent.Kind').values.SPEECH_START
                              : VadEvent.parent.lookupEnum('VadEvent.Kind').values.SPEECH_END,
                   sampleIndex: frame.sampleIndex, probability: 1, detector: 'js-energy' }, { originNs: header.originNs });
      }
    });
  },
});
