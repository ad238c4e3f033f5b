// vb-cozesim behind TLS (https:// and wss://, as the real Coze is reached),
// with a test CA made on the spot by tools/coze-sim/make-test-ca.sh (openssl
// CLI). The official SDK (@coze/api) runs in child processes whose
// NODE_EXTRA_CA_CERTS is the CA under test, and curl checks the same: REST and
// WebSocket work with the CA; an unknown CA and a wrong host name are refused
// (and the simulator keeps serving). Run: node --test tests/node/coze_sim_tls_test.js
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, execFile } = require('node:child_process');
const { startSim } = require('./coze_sim_lib');

const TOKEN = 'test-token';
const BOT = '7000000000000000001';
const SCRIPT = path.join(__dirname, '..', '..', 'tools', 'coze-sim', 'make-test-ca.sh');
const CLIENT = path.join(__dirname, 'coze_sim_tls_client.js');

let dir, good, wrongName;

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cozesim-tls-'));
  execFileSync(SCRIPT, [path.join(dir, 'ca')]);  // ca.pem, server.pem (localhost, 127.0.0.1)
  execFileSync(SCRIPT, [path.join(dir, 'ca'), 'DNS:wrong.example'], { env: { ...process.env, CERT_NAME: 'wrong' } });
  execFileSync(SCRIPT, [path.join(dir, 'other')]);  // an unrelated CA
  const tls = (name) => ['--token', TOKEN, '--bot-id', BOT, '--tls-cert', path.join(dir, 'ca', `${name}.pem`),
    '--tls-key', path.join(dir, 'ca', `${name}.key`)];
  good = await startSim(tls('server'));
  wrongName = await startSim(tls('wrong'));
});

test.after(async () => {
  if (good) assert.equal(await good.stop(), 0);
  if (wrongName) assert.equal(await wrongName.stop(), 0);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// Runs the SDK client in a child process trusting `caFile` (null: only the
// system CAs); resolves with its JSON verdict.
function sdkClient(base, caFile) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  if (caFile) env.NODE_EXTRA_CA_CERTS = caFile;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLIENT, base, TOKEN, BOT], { env, timeout: 60000 }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`client failed: ${err.message}\n${stderr}`)); return; }
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

// curl's exit code, stdout and stderr (curl exits 60 for a certificate it cannot verify).
function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test('with the test CA: the SDK does REST (conversation, streamed chat) and a WebSocket turn over https/wss', async () => {
  for (const host of ['127.0.0.1', 'localhost']) {
    const r = await sdkClient(`https://${host}:${good.port}`, path.join(dir, 'ca', 'ca.pem'));
    assert.ok(r.rest.ok, `REST via ${host}: ${r.rest.error}`);
    assert.match(r.rest.conversation_id, /^\d{19}$/);
    assert.match(r.rest.text, /^Hello! /);
    assert.ok(r.ws.ok, `WebSocket via ${host}: ${r.ws.error}`);
    assert.match(r.ws.answer, /^Hello! /);
  }
  const c = await curl(['--cacert', path.join(dir, 'ca', 'ca.pem'), '-H', `Authorization: Bearer ${TOKEN}`, '-X', 'POST', '-d', '{}',
    `https://127.0.0.1:${good.port}/v1/conversation/create`]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(c.stdout).code, 0);
});

test('an unknown CA is refused, for REST and the WebSocket', async () => {
  for (const ca of [null, path.join(dir, 'other', 'ca.pem')]) {
    const r = await sdkClient(`https://127.0.0.1:${good.port}`, ca);
    assert.ok(!r.rest.ok && !r.ws.ok, JSON.stringify(r));
    assert.match(r.rest.error, /unable to verify|self[- ]signed|UNABLE_TO_VERIFY/i, r.rest.error);
    assert.match(r.ws.error, /unable to verify|self[- ]signed|UNABLE_TO_VERIFY/i, r.ws.error);
  }
  const c = await curl([`https://127.0.0.1:${good.port}/_sim/health`]);
  assert.equal(c.code, 60, c.stderr);
  assert.match(c.stderr, /certificate/);
});

test('a certificate for another host name is refused, for REST and the WebSocket', async () => {
  const r = await sdkClient(`https://127.0.0.1:${wrongName.port}`, path.join(dir, 'ca', 'ca.pem'));
  assert.ok(!r.rest.ok && !r.ws.ok, JSON.stringify(r));
  assert.match(r.rest.error, /altname|ERR_TLS_CERT_ALTNAME_INVALID/i, r.rest.error);
  assert.match(r.ws.error, /altname|ERR_TLS_CERT_ALTNAME_INVALID/i, r.ws.error);
  const c = await curl(['--cacert', path.join(dir, 'ca', 'ca.pem'), '--resolve', `wrong.example:${good.port}:127.0.0.1`,
    `https://wrong.example:${good.port}/_sim/health`]);
  assert.equal(c.code, 60, c.stderr);
  assert.match(c.stderr, /subject name/);
});

test('after the refused handshakes the TLS simulator still serves; plain http on its port is not served', async () => {
  const ok = await curl(['--cacert', path.join(dir, 'ca', 'ca.pem'), `https://127.0.0.1:${good.port}/_sim/stats`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(JSON.parse(ok.stdout).connections_total >= 2, 'the WebSocket turns were served over wss');
  const plain = await curl([`http://127.0.0.1:${good.port}/_sim/health`]);
  assert.notEqual(plain.code, 0);
});

test('bad TLS flags: a missing key file or a lone --tls-cert exit with a reason', () => {
  const bin = require('./coze_sim_lib').simBinary();
  const run = (args) => {
    try {
      execFileSync(bin, ['--port', '0', ...args], { stdio: 'pipe', timeout: 20000 });
      return { code: 0, stderr: '' };
    } catch (e) {
      return { code: e.status, stderr: e.stderr.toString() };
    }
  };
  const lone = run(['--tls-cert', path.join(dir, 'ca', 'server.pem')]);
  assert.equal(lone.code, 2);
  assert.match(lone.stderr, /--tls-cert and --tls-key go together/);
  const missing = run(['--tls-cert', path.join(dir, 'ca', 'server.pem'), '--tls-key', path.join(dir, 'nope.key')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*nope\.key/);
});
