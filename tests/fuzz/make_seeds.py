#!/usr/bin/env python3
"""Writes the binary seeds of tests/fuzz/corpus (WAV files, the audio-input
decoder's formats, bus frames). The text seeds are written by hand. Run from
anywhere: python3 tests/fuzz/make_seeds.py (deterministic output)."""
import math
import os
import struct
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(folder, name, data):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    with open(os.path.join(HERE, folder, name), "wb") as f:
        f.write(data)


def tone(n, rate=16000, amp=8000):
    return [int(amp * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n)]


def wav(fmt_tag, channels, rate, bits, frames, extra_chunk=b""):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    data = frames
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunk
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# WAV reader: s16 mono, u8, s24 stereo, float32, an extra LIST chunk, a cut file.
s16 = b"".join(struct.pack("<h", v) for v in tone(64))
put("wav_reader", "s16_mono.wav", wav(1, 1, 16000, 16, s16))
put("wav_reader", "u8.wav", wav(1, 1, 8000, 8, bytes((v >> 8) + 128 for v in tone(64, 8000))))
s24 = b"".join(struct.pack("<i", v << 8)[:3] * 2 for v in tone(32))
put("wav_reader", "s24_stereo.wav", wav(1, 2, 48000, 24, s24))
f32 = b"".join(struct.pack("<f", v / 32768) for v in tone(32))
put("wav_reader", "f32.wav", wav(3, 1, 22050, 32, f32))
put("wav_reader", "list_chunk.wav", wav(1, 1, 16000, 16, s16[:32], b"LIST" + struct.pack("<I", 4) + b"INFO"))
put("wav_reader", "cut.wav", wav(1, 1, 16000, 16, s16)[:60])


# Audio input decoder: byte 0 picks the declared format (see
# audio_input_fuzz.cc), byte 1 the bit depth, byte 2 the chunk size.
def pick(fmt, codec, rate, channels):
    fmts, codecs = ["pcm", "wav", "ogg"], ["pcm", "opus", "g711a", "g711u"]
    rates = [8000, 16000, 22050, 24000, 32000, 44100, 48000]
    return fmts.index(fmt) + 3 * codecs.index(codec) + 12 * rates.index(rate) + 84 * (channels - 1)


def ogg_page(serial, seq, granule, packets, flags=0):
    lacing = b""
    for p in packets:
        n = len(p)
        lacing += b"\xff" * (n // 255) + bytes([n % 255])
    hdr = b"OggS" + bytes([0, flags]) + struct.pack("<qIII", granule, serial, seq, 0)
    hdr += bytes([len(lacing)]) + lacing
    page = bytearray(hdr + b"".join(packets))
    crc = ogg_crc(bytes(page))
    page[22:26] = struct.pack("<I", crc)
    return bytes(page)


def ogg_crc(data):
    crc = 0
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


opus_head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
opus_tags = b"OpusTags" + struct.pack("<I", 2) + b"vb" + struct.pack("<I", 0)
silence = b"\xf8\xff\xfe"  # one 20 ms CELT frame of silence
ogg = ogg_page(7, 0, 0, [opus_head], 2) + ogg_page(7, 1, 0, [opus_tags]) + ogg_page(7, 2, 960, [silence, silence], 4)
put("audio_input", "ogg_opus.bin", bytes([pick("ogg", "opus", 48000, 1), 1, 40]) + ogg)
put("audio_input", "opus_packet.bin", bytes([pick("pcm", "opus", 16000, 1), 1, 0]) + silence)
put("audio_input", "pcm16.bin", bytes([pick("pcm", "pcm", 16000, 1), 1, 10]) + s16)
put("audio_input", "pcm24_stereo.bin", bytes([pick("pcm", "pcm", 48000, 2), 2, 3]) + s24)
put("audio_input", "wav16.bin", bytes([pick("wav", "pcm", 24000, 1), 1, 20]) + wav(1, 1, 24000, 16, s16))
put("audio_input", "g711a.bin", bytes([pick("pcm", "g711a", 8000, 1), 0, 5]) + bytes(range(0, 256, 4)))
put("audio_input", "pcm8.bin", bytes([pick("pcm", "pcm", 8000, 1), 0, 1]) + bytes(range(64)))


# Bus frames: byte 0 = topic choice (bits 0-3, mod 5) and frame count - 1
# (bits 4-6, mod 5); then one length byte before every frame but the last.
def pb_string(field, s):
    s = s.encode() if isinstance(s, str) else s
    return bytes([field << 3 | 2]) + varint(len(s)) + s


def pb_varint(field, v):
    return bytes([field << 3]) + varint(v)


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def header(type_name, seq=1):
    return pb_string(1, type_name) + pb_varint(2, seq) + pb_varint(3, 123456789) + pb_string(5, "cap") + pb_string(7, "t1")


def frames(topic_pick, suffix, parts):
    count = len(parts) + 1
    out = bytes([((count - 1) << 4) | topic_pick]) + bytes([len(suffix)]) + suffix
    for i, p in enumerate(parts):
        out += (bytes([len(p)]) if i + 1 < len(parts) else b"") + p
    return out


mic = pb_varint(1, 16000) + pb_varint(2, 1) + pb_string(3, s16[:40]) + pb_varint(4, 320)
put("bus_frames", "audio_mic.bin", frames(2, b"dev", [header("vb.v1.AudioFrame"), mic]))
put("bus_frames", "session_event.bin", frames(0, b"dev", [header("vb.v1.SessionEvent"), b""]))
put("bus_frames", "dialog_state.bin", frames(1, b"", [header("vb.v1.DialogState"), pb_varint(1, 2) + pb_string(4, "t1")]))
put("bus_frames", "type_mismatch.bin", frames(3, b"", [header("vb.v1.AudioFrame"), mic]))
put("bus_frames", "two_frames.bin", frames(4, b"", [header("vb.v1.AudioFrame")]))
put("bus_frames", "five_frames.bin", frames(4, b"", [header("vb.v1.AudioFrame"), mic, b"x", b"y"]))


# Downlink decoder: byte 0 = output rate and frame length; then packets
# [codec][rate pick][channels][index step][flags][duration pick][length] data
# (downlink_decoder_fuzz.cc). Opus packets from Debian's libopus (ctypes).
def opus_packets(rate, n, ms=20):
    import ctypes
    lib = ctypes.CDLL("libopus.so.0")
    lib.opus_encoder_create.restype = ctypes.c_void_p
    err = ctypes.c_int()
    enc = lib.opus_encoder_create(rate, 1, 2048, ctypes.byref(err))  # VOIP
    samples = rate * ms // 1000
    out = []
    for k in range(n):
        pcm = (ctypes.c_int16 * samples)(*tone(samples, rate)[:samples])
        buf = (ctypes.c_ubyte * 255)()
        size = lib.opus_encode(ctypes.c_void_p(enc), pcm, samples, buf, 255)
        out.append(bytes(buf[:size]))
    lib.opus_encoder_destroy(ctypes.c_void_p(enc))
    return out


def packet(codec, rate_pick, channels, step, flags, dur_pick, data):
    return bytes([codec, rate_pick, channels, step, flags, dur_pick, len(data)]) + data


op = opus_packets(16000, 5)
put("downlink_decoder", "opus_turn.bin", bytes([0]) + packet(2, 2, 1, 0, 0, 4, op[0]) + packet(2, 2, 1, 1, 0, 4, op[1])
    + packet(2, 2, 1, 2, 0, 4, op[2]) + packet(2, 2, 1, 1, 8, 4, op[3]) + packet(2, 2, 1, 0, 1, 4, op[4]))
op48 = opus_packets(48000, 3, 10)
put("downlink_decoder", "opus48_new_turn.bin", bytes([3]) + packet(2, 4, 1, 0, 0, 3, op48[0])
    + packet(2, 4, 1, 0, 2, 3, op48[1]) + packet(2, 4, 1, 255, 4, 3, op48[2]))
pcm24 = b"".join(struct.pack("<h", v) for v in tone(100, 24000))
put("downlink_decoder", "pcm_cancel.bin", bytes([1]) + packet(1, 3, 1, 0, 0, 0, pcm24) + packet(1, 3, 1, 1, 0, 0, pcm24[:199])
    + packet(1, 3, 1, 1, 4, 0, pcm24) + packet(1, 3, 1, 1, 2, 0, pcm24) + packet(1, 3, 1, 1, 9, 0, pcm24))
put("downlink_decoder", "g711.bin", bytes([0]) + packet(3, 0, 1, 0, 0, 0, bytes(range(0, 256, 2)))
    + packet(4, 0, 1, 1, 1, 0, bytes(range(1, 256, 2))))
