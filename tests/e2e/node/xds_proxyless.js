// A proxyless gRPC client for Weft's end-to-end tests: @grpc/grpc-js with @grpc/grpc-js-xds,
// resolving `xds:///NAME` through an xDS server (weft control) and calling the Echo service of
// echo.proto on whatever backends the xDS resources name — no proxy in the path.
//
//   node xds_proxyless.js BOOTSTRAP TARGET SPEC
//       BOOTSTRAP  a gRPC xDS bootstrap file (xds_servers, node), as GRPC_XDS_BOOTSTRAP takes
//       TARGET     e.g. xds:///echo.default.svc.cluster.local:7070
//       SPEC       JSON: calls (how many unary calls, one after the other), metadata
//                  ({key: value} on every call), deadline_ms (per call; 5000), ready_ms (how
//                  long to wait for the channel to resolve and connect; 15000)
//   One JSON line: {codes: {CODE: count}, details: [first few error details], elapsed_ms},
//   or {error} with exit status 1 when the client could not run. Which backend answered each
//   call is for the test to count on the servers' side (grpc_peer.js server prints a `call`
//   event per request).
'use strict';
const path = require('path');

function fail(msg) {
  process.stdout.write(JSON.stringify({ error: String(msg) }) + '\n');
  process.exit(1);
}

if (process.argv.length < 5)
  fail('usage: node xds_proxyless.js BOOTSTRAP TARGET SPEC');
const [bootstrap, target, specText] = process.argv.slice(2);
process.env.GRPC_XDS_BOOTSTRAP = bootstrap;
let spec;
try {
  spec = JSON.parse(specText);
} catch (e) {
  fail('SPEC is not JSON: ' + e.message);
}

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true, defaults: true });
const Echo = grpc.loadPackageDefinition(def).weft.test.Echo;

const client = new Echo(target, grpc.credentials.createInsecure());
const started = Date.now();

function call(metadata, deadlineMs) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata || {}))
      md.set(k, v);
    client.Unary({ payload: Buffer.from('ping') }, md, { deadline: Date.now() + deadlineMs },
      (err) => resolve(err ? { code: err.code, details: err.details } : { code: 0 }));
  });
}

async function main() {
  const readyMs = spec.ready_ms || 15000;
  await new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + readyMs, (err) => (err ? reject(err) : resolve())))
    .catch((e) => fail('channel not ready after ' + readyMs + ' ms: ' + e.message));
  const codes = {};
  const details = [];
  for (let i = 0; i < (spec.calls || 1); i++) {
    const r = await call(spec.metadata, spec.deadline_ms || 5000);
    codes[r.code] = (codes[r.code] || 0) + 1;
    if (r.code !== 0 && details.length < 5)
      details.push(r.details);
  }
  process.stdout.write(JSON.stringify({ codes, details, elapsed_ms: Date.now() - started }) + '\n');
  client.close();
  process.exit(0);
}

main().catch((e) => fail(e.stack || e));
