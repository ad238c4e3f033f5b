// npm postinstall: keeps only this machine's ONNX Runtime binary. onnxruntime-node's npm tarball
// carries it for linux, darwin and win32 on x64 and arm64 (~250 MB); the actor loads one (~20-30 MB).
'use strict';
const fs = require('fs');
const path = require('path');
const bin = path.join(__dirname, 'node_modules', 'onnxruntime-node', 'bin');
if (!fs.existsSync(bin)) process.exit(0);
for (const napi of fs.readdirSync(bin)) {
  for (const os of fs.readdirSync(path.join(bin, napi))) {
    for (const arch of fs.readdirSync(path.join(bin, napi, os))) {
      if (os === process.platform && arch === process.arch) continue;
      fs.rmSync(path.join(bin, napi, os, arch), { recursive: true, force: true });
    }
  }
}
