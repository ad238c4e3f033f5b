// Reads a vb-sniff MCAP recording the way Foxglove Studio does: the official
// @mcap/core indexed reader (summary, chunk indexes, CRCs validated), zstd
// chunks through @foxglove/wasm-zstd, and every message decoded with
// protobufjs from the FileDescriptorSet embedded in its channel's schema.
//
//   node mcap_read.js FILE.mcap
//
// Prints one JSON object: per topic the message count, schema, payload type
// and first/last log time; how many messages decoded; and the first decode
// failures. Exits 1 if the file cannot be read or any message fails to
// decode (the caller compares the counts with what the recorder reported).
"use strict";
const fs = require("fs");
const { McapIndexedReader } = require("@mcap/core");
const zstd = require("@foxglove/wasm-zstd");
const protobuf = require("protobufjs");
require("protobufjs/ext/descriptor");

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node mcap_read.js FILE.mcap");
    process.exit(64);
  }
  await zstd.isLoaded;
  const fd = await fs.promises.open(file, "r");
  const size = (await fd.stat()).size;
  const readable = {
    size: async () => BigInt(size),
    read: async (offset, length) => {
      const buf = Buffer.alloc(Number(length));
      await fd.read(buf, 0, Number(length), Number(offset));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    },
  };
  const reader = await McapIndexedReader.Initialize({
    readable,
    decompressHandlers: { zstd: (data, decompressedSize) => zstd.decompress(data, Number(decompressedSize)) },
  });
  const types = new Map();  // schema id → protobufjs Type
  for (const [id, schema] of reader.schemasById) {
    if (schema.encoding !== "protobuf") throw new Error(`schema ${schema.name}: encoding ${schema.encoding}`);
    const set = protobuf.descriptor.FileDescriptorSet.decode(schema.data);
    const root = protobuf.Root.fromDescriptor(set);
    types.set(id, root.lookupType(schema.name));
  }
  const topics = {};
  let decoded = 0, failed = 0, messages = 0;
  const failures = [];
  for await (const msg of reader.readMessages({ validateCrcs: true })) {
    ++messages;
    const channel = reader.channelsById.get(msg.channelId);
    const t = (topics[channel.topic] ??= {
      messages: 0, schema: reader.schemasById.get(channel.schemaId).name,
      payload_type: channel.metadata.get("payload_type"), plane: channel.metadata.get("plane"),
      first_ns: msg.logTime.toString(), last_ns: "0", header_types_ok: true, sources: [],
    });
    ++t.messages;
    t.last_ns = msg.logTime.toString();
    try {
      const m = types.get(channel.schemaId).decode(msg.data);
      if (!m.header || m.header.type !== t.payload_type) t.header_types_ok = false;
      if (m.header && !t.sources.includes(m.header.source)) t.sources.push(m.header.source);
      ++decoded;
    } catch (e) {
      ++failed;
      if (failures.length < 5) failures.push(`${channel.topic}: ${e.message}`);
    }
  }
  const stats = reader.statistics;
  console.log(JSON.stringify({
    messages, decoded, failed, failures, topics,
    chunks: reader.chunkIndexes.length,
    statistics_messages: stats ? stats.messageCount.toString() : null,
    start_ns: stats ? stats.messageStartTime.toString() : null,
    end_ns: stats ? stats.messageEndTime.toString() : null,
  }));
  await fd.close();
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error("mcap_read: " + (e && e.stack || e));
  process.exit(1);
});
