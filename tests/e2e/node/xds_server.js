// A small xDS management server for Weft's end-to-end tests: envoy.service.discovery.v3.
// AggregatedDiscoveryService (StreamAggregatedResources and DeltaAggregatedResources) on
// @grpc/grpc-js, with the message types of Weft's own .proto files (src/xds/proto).
//
//   node xds_server.js server [PORT [CERT KEY]]
//       Listens on 127.0.0.1:PORT (0 or absent: a kernel-chosen port; with CERT and KEY, PEM
//       files: over TLS, else h2c) and prints
//       {"event":"listening","port":N}. Then one JSON line per event:
//         stream   {kind: "sotw"|"delta", state: "open"|"closed"}
//         request  {kind, type_url, version_info, response_nonce, resource_names,
//                   error_detail: {code, message} | null,
//                   node: {id, cluster, user_agent_name, metadata (string values), locality} | null,
//                   subscribe, unsubscribe, initial_resource_versions}   (the last three: delta)
//         response {kind, type_url, version_info, nonce, names, removed}
//       Commands on stdin, one JSON object per line:
//         {"type": "LDS"|"CDS"|"RDS"|"EDS", "version": "v1", "resources": [RESOURCE, ...]}
//       sets the state of the world of that type and pushes it to every stream that asked for
//       the type;
//         {"end": CODE, "message": "..."}
//       ends every open stream with that gRPC status. A RESOURCE is the resource message as JSON with the .proto field names (Any:
//       {"@type": "type.googleapis.com/NAME", ...fields}; Duration: {"seconds": N}).
//       SotW streams get the whole set of the type, even RDS and EDS resources they did not
//       ask for (a client must ignore those); delta streams get what changed of what they
//       subscribed to (by version: each resource's version is the set's) and
//       removed_resources.
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
// protobufjs as @grpc/proto-loader depends on it (not a dependency of its own in package.json)
const protobuf = require(require.resolve('protobufjs', { paths: [path.dirname(require.resolve('@grpc/proto-loader'))] }));

const PROTO_DIR = path.join(__dirname, '..', '..', '..', 'src', 'xds', 'proto');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function protoFiles(dir) {
  let files = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files = files.concat(protoFiles(p));
    else if (e.name.endsWith('.proto')) files.push(path.relative(PROTO_DIR, p));
  }
  return files;
}

// Resource encoding: a protobufjs root with every type, so that Any payloads resolve.
const root = new protobuf.Root();
root.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
root.loadSync(protoFiles(PROTO_DIR).map((f) => path.join(PROTO_DIR, f)), { keepCase: true });
root.resolveAll();

const TYPES = {
  LDS: 'envoy.config.listener.v3.Listener',
  CDS: 'envoy.config.cluster.v3.Cluster',
  RDS: 'envoy.config.route.v3.RouteConfiguration',
  EDS: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};
const URL = (t) => 'type.googleapis.com/' + TYPES[t];
const typeOfUrl = (u) => Object.keys(TYPES).find((t) => URL(t) === u);

function encode(t, obj) {
  const T = root.lookupType(TYPES[t]);
  const err = T.verify(T.fromObject(obj));
  if (err) throw new Error(t + ': ' + err);
  return Buffer.from(T.encode(T.fromObject(obj)).finish());
}

const nameOf = (t, obj) => (t === 'EDS' ? obj.cluster_name : obj.name);

// state[t] = {version, resources: [{name, value}]}
const state = {};
const streams = new Set();
let nonce = 0;

function sotwPush(s, t) {
  const st = state[t];
  if (!st) return;
  const n = String(++nonce);
  s.call.write({
    version_info: st.version,
    type_url: URL(t),
    nonce: n,
    resources: st.resources.map((r) => ({ type_url: URL(t), value: r.value })),
  });
  out({ event: 'response', kind: 'sotw', type_url: URL(t), version_info: st.version, nonce: n,
        names: st.resources.map((r) => r.name), removed: [] });
}

const WILDCARD = new Set(['LDS', 'CDS']);

function deltaPush(s, t) {
  const st = state[t];
  if (!st) return;
  const have = s.versions[t] || (s.versions[t] = {});
  const wanted = (r) => WILDCARD.has(t) || s.subs[t].has(r.name);
  const changed = st.resources.filter((r) => wanted(r) && have[r.name] !== st.version + ':' + r.digest);
  const names = new Set(st.resources.filter(wanted).map((r) => r.name));
  const removed = Object.keys(have).filter((k) => !names.has(k));
  if (!changed.length && !removed.length) return;
  for (const r of changed) have[r.name] = st.version + ':' + r.digest;
  for (const k of removed) delete have[k];
  const n = String(++nonce);
  s.call.write({
    system_version_info: st.version,
    type_url: URL(t),
    nonce: n,
    resources: changed.map((r) => ({ name: r.name, version: st.version + ':' + r.digest,
                                     resource: { type_url: URL(t), value: r.value } })),
    removed_resources: removed,
  });
  out({ event: 'response', kind: 'delta', type_url: URL(t), version_info: st.version, nonce: n,
        names: changed.map((r) => r.name), removed });
}

function push(s, t) {
  if (!s.asked.has(t)) return;
  if (s.kind === 'sotw') sotwPush(s, t);
  else deltaPush(s, t);
}

function nodeOf(n) {
  if (!n) return null;
  const meta = {};
  // protobufjs keeps its own google.protobuf.Struct, with camelCase field names
  for (const [k, v] of Object.entries((n.metadata && n.metadata.fields) || {})) meta[k] = v.stringValue;
  return { id: n.id, cluster: n.cluster, user_agent_name: n.user_agent_name, metadata: meta,
           locality: n.locality ? { region: n.locality.region, zone: n.locality.zone } : null };
}

function errOf(e) {
  return e ? { code: e.code, message: e.message } : null;
}

function handle(kind) {
  return (call) => {
    const s = { kind, call, asked: new Set(), names: {}, versions: {}, subs: {} };
    streams.add(s);
    out({ event: 'stream', kind, state: 'open' });
    call.on('data', (rq) => {
      const t = typeOfUrl(rq.type_url);
      if (kind === 'sotw') {
        out({ event: 'request', kind, type_url: rq.type_url, version_info: rq.version_info,
              response_nonce: rq.response_nonce, resource_names: rq.resource_names,
              error_detail: errOf(rq.error_detail), node: nodeOf(rq.node) });
        if (!t) return;
        const names = JSON.stringify(rq.resource_names);
        const first = !s.asked.has(t);
        const renamed = s.names[t] !== undefined && s.names[t] !== names;
        s.names[t] = names;
        s.asked.add(t);
        // answer a new subscription, or one whose names changed; an ACK or NACK is not answered
        if (first || renamed) push(s, t);
      } else {
        const irv = {};
        for (const [k, v] of Object.entries(rq.initial_resource_versions || {})) irv[k] = v;
        out({ event: 'request', kind, type_url: rq.type_url, response_nonce: rq.response_nonce,
              subscribe: rq.resource_names_subscribe, unsubscribe: rq.resource_names_unsubscribe,
              initial_resource_versions: irv, error_detail: errOf(rq.error_detail), node: nodeOf(rq.node) });
        if (!t) return;
        const first = !s.asked.has(t);
        s.asked.add(t);
        if (first) s.versions[t] = Object.assign({}, irv);
        const subs = s.subs[t] || (s.subs[t] = new Set());
        for (const n of rq.resource_names_subscribe || []) subs.add(n);
        for (const n of rq.resource_names_unsubscribe || []) {
          subs.delete(n);
          delete s.versions[t][n]; // not the client's any more: sent again if asked again
        }
        // a new subscription, or new names: send what the client lacks
        if (first || (rq.resource_names_subscribe || []).length) push(s, t);
      }
    });
    const gone = () => {
      if (!streams.has(s)) return;
      streams.delete(s);
      out({ event: 'stream', kind, state: 'closed' });
    };
    call.on('end', () => { gone(); call.end(); });
    call.on('error', gone);
    call.on('cancelled', gone);
  };
}

function command(line) {
  if (!line.trim()) return;
  const c = JSON.parse(line);
  if (c.end !== undefined) {
    for (const s of [...streams]) {
      streams.delete(s);
      s.call.emit('error', Object.assign(new Error(c.message || 'ended'), { code: c.end, details: c.message || 'ended' }));
      out({ event: 'stream', kind: s.kind, state: 'ended' });
    }
    out({ event: 'ended', code: c.end });
    return;
  }
  const crypto = require('crypto');
  state[c.type] = {
    version: c.version,
    resources: c.resources.map((r) => {
      const value = encode(c.type, r);
      return { name: nameOf(c.type, r), value, digest: crypto.createHash('sha256').update(value).digest('hex').slice(0, 8) };
    }),
  };
  out({ event: 'set', type: c.type, version: c.version });
  for (const s of streams) push(s, c.type);
}

function main() {
  const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto',
                                   { keepCase: true, includeDirs: [PROTO_DIR], longs: String, enums: String, defaults: true });
  const ads = grpc.loadPackageDefinition(def).envoy.service.discovery.v3.AggregatedDiscoveryService;
  const server = new grpc.Server();
  server.addService(ads.service, {
    StreamAggregatedResources: handle('sotw'),
    DeltaAggregatedResources: handle('delta'),
  });
  const port = Number(process.argv[3] || 0);
  const creds = process.argv[5]
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: fs.readFileSync(process.argv[4]),
                                                private_key: fs.readFileSync(process.argv[5]) }], false)
    : grpc.ServerCredentials.createInsecure();
  server.bindAsync('127.0.0.1:' + port, creds, (err, p) => {
    if (err) {
      out({ event: 'error', message: String(err) });
      process.exit(1);
    }
    out({ event: 'listening', port: p });
    let buf = '';
    process.stdin.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          command(line);
        } catch (e) {
          out({ event: 'error', message: String(e && e.stack || e) });
        }
      }
    });
  });
}

if (process.argv[2] === 'server') main();
else {
  process.stderr.write('usage: node xds_server.js server [PORT [CERT KEY]]\n');
  process.exit(2);
}
