// An xDS client for Weft's control-plane tests: @grpc/grpc-js + @grpc/proto-loader loading
// Weft's own .proto files (src/xds/proto), talking ADS (envoy.service.discovery.v3.
// AggregatedDiscoveryService) to `weft control` over the wire.
//
//   node ads_client.js TARGET [--ca FILE]
//
// Driven by JSON lines on stdin, reports JSON lines on stdout:
//   {"op":"open","id":S,"delta":false}      open a stream (StreamAggregatedResources, or
//                                           DeltaAggregatedResources with delta: true)
//   {"op":"send","id":S,"req":{...}}        send a DiscoveryRequest / DeltaDiscoveryRequest
//                                           (proto field names: type_url, resource_names,
//                                           response_nonce, version_info, error_detail,
//                                           resource_names_subscribe, ...; node is added to
//                                           each request from "node" given at open)
//   {"op":"cancel","id":S}                  cancel the stream (RST_STREAM)
//   {"op":"unary","path":P}                 a unary call to path P (an empty message): reports
//                                           {"ev":"unary","code":N,"details":...}
// Events:
//   {"ev":"response","id":S,"type_url","version_info"|"system_version_info","nonce",
//    "resources":[{"name","version"?}],"removed_resources"?}   (each resource decoded by its
//    type to find its name: Listener/Cluster/RouteConfiguration name, ClusterLoadAssignment
//    cluster_name)
//   {"ev":"status","id":S,"code":N,"details":...}   the stream ended
//   {"ev":"error","message":...}
// TLS: --ca FILE connects with TLS (ALPN h2) trusting FILE, for the name "localhost".
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
// protobufjs is @grpc/proto-loader's own dependency: resolved through it, not declared again
const protobuf = require(require.resolve('protobufjs', { paths: [require.resolve('@grpc/proto-loader')] }));

const PROTO_DIR = path.join(__dirname, '..', '..', '..', 'src', 'xds', 'proto');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
];
const def = protoLoader.loadSync(FILES[0], { keepCase: true, defaults: false, includeDirs: [PROTO_DIR] });
const ADS = grpc.loadPackageDefinition(def).envoy.service.discovery.v3.AggregatedDiscoveryService;

const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(PROTO_DIR, target);
root.loadSync(FILES, { keepCase: true });

function resName(any) {
  const t = root.lookupType(any.type_url.replace(/^.*\//, ''));
  const m = t.decode(any.value);
  return m.name || m.cluster_name || '';
}

const args = process.argv.slice(2);
const target = args[0];
let creds = grpc.credentials.createInsecure();
const opts = {};
const ca = args.indexOf('--ca');
if (ca >= 0) {
  creds = grpc.credentials.createSsl(fs.readFileSync(args[ca + 1]));
  opts['grpc.ssl_target_name_override'] = 'localhost';
  opts['grpc.default_authority'] = 'localhost';
}
const client = new ADS(target, creds, opts);
const streams = {};

function open(cmd) {
  const call = cmd.delta ? client.DeltaAggregatedResources() : client.StreamAggregatedResources();
  const s = { call, node: cmd.node || { id: 'sidecar~127.0.0.1~app.default~default.svc.cluster.local', cluster: 'app' }, first: true };
  streams[cmd.id] = s;
  call.on('data', (r) => {
    const ev = { ev: 'response', id: cmd.id, type_url: r.type_url, nonce: r.nonce };
    try {
      if (cmd.delta) {
        ev.system_version_info = r.system_version_info;
        ev.resources = (r.resources || []).map((x) => ({ name: x.name, version: x.version, decoded: resName(x.resource) }));
        ev.removed_resources = r.removed_resources || [];
      } else {
        ev.version_info = r.version_info;
        ev.resources = (r.resources || []).map((a) => ({ name: resName(a) }));
      }
    } catch (e) {
      ev.decode_error = String(e);
    }
    out(ev);
  });
  call.on('status', (st) => out({ ev: 'status', id: cmd.id, code: st.code, details: st.details }));
  call.on('error', () => {});
}

function send(cmd) {
  const s = streams[cmd.id];
  const req = Object.assign({}, cmd.req);
  if (s.first || cmd.with_node) req.node = s.node;
  s.first = false;
  s.call.write(req);
}

function unary(cmd) {
  const ser = () => Buffer.alloc(0);
  const de = (b) => b;
  client.makeUnaryRequest(cmd.path, ser, de, {}, (err) => {
    out({ ev: 'unary', code: err ? err.code : 0, details: err ? err.details : '' });
  });
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
    if (cmd.op === 'open') open(cmd);
    else if (cmd.op === 'send') send(cmd);
    else if (cmd.op === 'cancel') streams[cmd.id].call.cancel();
    else if (cmd.op === 'end') streams[cmd.id].call.end();
    else if (cmd.op === 'unary') unary(cmd);
    else if (cmd.op === 'quit') process.exit(0);
  } catch (e) {
    out({ ev: 'error', message: String(e && e.stack || e) });
  }
}).on('close', () => process.exit(0));
out({ ev: 'ready' });
