// gRPC peers for Weft's end-to-end tests, on @grpc/grpc-js with the Echo service of echo.proto.
//
//   node grpc_peer.js server
//       An Echo server (plaintext HTTP/2) on 127.0.0.1 and a kernel-chosen port. Prints one JSON
//       line per event: {"event":"listening","port":N} first, then
//         call       {method, tag, metadata, grpc_timeout}: a call reached a handler
//         cancelled  {method, tag, after_ms, sent}: the call was cancelled while it ran
//         half_close {method, tag, received}: the request stream ended (ClientStream, Bidi)
//         h2_close   {path, tag, rst}: an HTTP/2 stream closed; rst is its RST_STREAM code
//                    (0 when it ended normally, 8 CANCEL when the client side reset it)
//       `tag` is the x-tag request header. The server never enforces a deadline itself: it
//       reports the grpc-timeout header it got (grpc_timeout) and drops it before grpc-js sees
//       it, so a `cancelled` event can only come from the peer resetting the stream.
//       Behaviour per request (fields of EchoRequest): sleep_ms (not in Bidi), then
//       fail_code/fail_message (for the first fail_times calls with the same key, or always),
//       else the echo.
//       Request metadata x-echo-NAME comes back as the response header x-echo-NAME and the
//       trailer x-trailer-NAME (also on errors, in the trailers).
//
//   node grpc_peer.js client TARGET SPEC
//       One call (or `parallel` unary calls on one channel) to TARGET (host:port) and a single
//       JSON result line. SPEC is JSON:
//         kind         unary | server | client | bidi
//         sizes        payload sizes of the requests (unary and server: the first one)
//         req          extra EchoRequest fields (sleep_ms, fail_code, count, ...)
//         reqs         per request i, more fields (over req)
//         metadata     request metadata {key: value}; a key ending in -bin is sent as the
//                      UTF-8 bytes of its value
//         deadline_ms  the call's deadline
//         cancel_after the client cancels once it has this many replies (server, bidi)
//         parallel     N unary calls at once on the same channel
//         ca           a CA file: TLS (ALPN h2) with that root, for the name "localhost"
//       Result: {code, details, headers, trailers, messages: [{index, size, sha}], elapsed_ms}
//       where sha is the first 16 hex digits of the payload's SHA-256 and binary metadata is
//       base64; bidi also gives `order` ("s0", "r0", ...: each request is sent only once the
//       previous echo came back). Request payload i of n bytes is pattern(n, i): byte j is
//       (j + 31 * i) % 251; ServerStream replies with reply_size are pattern(reply_size, index).
//       Exit status 0, or 1 with {"error": ...} when the client itself could not run.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const LIMITS = { 'grpc.max_receive_message_length': 16 << 20, 'grpc.max_send_message_length': 16 << 20 };

const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true, defaults: true });
const Echo = grpc.loadPackageDefinition(def).weft.test.Echo;

function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let j = 0; j < n; j++) b[j] = (j + 31 * seed) % 251;
  return b;
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex').slice(0, 16);

function mdToObject(md) {
  const o = {};
  if (!md) return o;
  for (const [k, v] of Object.entries(md.getMap())) o[k] = Buffer.isBuffer(v) ? v.toString('base64') : v;
  return o;
}

// ---- server ------------------------------------------------------------------------------------

// See every HTTP/2 stream before grpc-js does: note how it closes, and take grpc-timeout away.
const createServer = http2.createServer;
http2.createServer = function (...args) {
  const srv = createServer.apply(this, args);
  srv.on('stream', (stream, headers) => {
    const tag = headers['x-tag'] || '';
    const p = headers[':path'];
    if (headers['grpc-timeout'] !== undefined) {
      headers['x-seen-grpc-timeout'] = headers['grpc-timeout'];
      delete headers['grpc-timeout'];
    }
    stream.on('close', () => out({ event: 'h2_close', path: p, tag, rst: stream.rstCode }));
  });
  return srv;
};

const attempts = new Map(); // key -> calls seen

function server() {
  const srv = new grpc.Server(LIMITS);

  // What a call's metadata asks to be echoed: [response headers, trailers].
  function echoes(call) {
    const headers = new grpc.Metadata();
    const trailers = new grpc.Metadata();
    for (const [k, vals] of Object.entries(call.metadata.toJSON())) {
      if (!k.startsWith('x-echo-')) continue;
      for (const v of vals) {
        headers.add(k, v);
        trailers.add('x-trailer-' + k.slice(7), v);
      }
    }
    return [headers, trailers];
  }

  // Registers the call; returns its state: .cancelled, .sent, .done (set once the handler has
  // given its status: grpc-js signals 'cancelled' at the end of every call, and only one that
  // comes before is a cancellation), and after() for timers that a cancellation clears.
  function track(call, method) {
    const md = call.metadata.toJSON();
    const tag = (md['x-tag'] || [''])[0];
    const seen = md['x-seen-grpc-timeout'];
    const st = { tag, cancelled: false, done: false, sent: 0, timers: new Set(), t0: Date.now() };
    const metadata = {};
    for (const [k, vals] of Object.entries(md)) {
      if (k !== 'x-seen-grpc-timeout') metadata[k] = vals.map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v));
    }
    out({ event: 'call', method, tag, metadata, grpc_timeout: seen ? String(seen[0]) : null });
    call.on('cancelled', () => {
      if (st.cancelled || st.done) return;
      st.cancelled = true;
      for (const t of st.timers) clearTimeout(t);
      out({ event: 'cancelled', method, tag, after_ms: Date.now() - st.t0, sent: st.sent });
    });
    st.after = (ms, fn) => {
      if (st.cancelled) return;
      if (!ms) return fn();
      const t = setTimeout(() => {
        st.timers.delete(t);
        if (!st.cancelled) fn();
      }, ms);
      st.timers.add(t);
    };
    return st;
  }

  // The status a request asks for, or null for OK.
  function failure(req, trailers) {
    if (!req.fail_code) return null;
    if (req.fail_times) {
      const n = (attempts.get(req.key) || 0) + 1;
      attempts.set(req.key, n);
      if (n > req.fail_times) return null;
    }
    return { code: req.fail_code, details: req.fail_message, metadata: trailers };
  }

  srv.addService(Echo.service, {
    Unary(call, cb) {
      const st = track(call, 'Unary');
      const [headers, trailers] = echoes(call);
      const req = call.request;
      st.after(req.sleep_ms, () => {
        const err = failure(req, trailers);
        st.done = true;
        if (err) return cb(err);
        call.sendMetadata(headers);
        st.sent++;
        cb(null, { payload: req.reply_size ? pattern(req.reply_size, 0) : req.payload, index: 0 }, trailers);
      });
    },

    ServerStream(call) {
      const st = track(call, 'ServerStream');
      const [headers, trailers] = echoes(call);
      const req = call.request;
      st.after(req.sleep_ms, () => {
        const err = failure(req, trailers);
        if (err) {
          st.done = true;
          return call.emit('error', err);
        }
        call.sendMetadata(headers);
        const next = (i) => {
          if (st.cancelled) return;
          if (i >= req.count) {
            st.done = true;
            return call.end(trailers);
          }
          const payload = req.reply_size ? pattern(req.reply_size, i) : req.payload;
          st.sent++;
          const more = () => st.after(req.interval_ms, () => next(i + 1));
          if (call.write({ payload, index: i })) more();
          else call.once('drain', more);
        };
        next(0);
      });
    },

    ClientStream(call, cb) {
      const st = track(call, 'ClientStream');
      const [headers, trailers] = echoes(call);
      const got = [];
      let first = null;
      call.on('data', (req) => {
        if (!first) first = req;
        got.push(req.payload);
      });
      call.on('end', () => {
        out({ event: 'half_close', method: 'ClientStream', tag: st.tag, received: got.length });
        const req = first || {};
        st.after(req.sleep_ms, () => {
          const err = failure(req, trailers);
          st.done = true;
          if (err) return cb(err);
          call.sendMetadata(headers);
          st.sent++;
          cb(null, { payload: Buffer.concat(got), index: got.length }, trailers);
        });
      });
    },

    Bidi(call) {
      const st = track(call, 'Bidi');
      const [headers, trailers] = echoes(call);
      let i = 0;
      let headersSent = false;
      call.on('data', (req) => {
        if (st.done) return;
        const err = failure(req, trailers);
        if (err) {
          st.done = true;
          return call.emit('error', err);
        }
        if (!headersSent) {
          call.sendMetadata(headers);
          headersSent = true;
        }
        st.sent++;
        call.write({ payload: req.payload, index: i++ });
      });
      call.on('end', () => {
        out({ event: 'half_close', method: 'Bidi', tag: st.tag, received: i });
        if (st.done) return;
        st.done = true;
        if (!headersSent) call.sendMetadata(headers);
        call.end(trailers);
      });
    },
  });

  srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      out({ event: 'error', error: String(err) });
      process.exit(1);
    }
    out({ event: 'listening', port });
  });
}

// ---- client ------------------------------------------------------------------------------------

function client(target, spec) {
  const opts = Object.assign({ 'grpc.enable_retries': 0 }, LIMITS);
  let creds = grpc.credentials.createInsecure();
  if (spec.ca) {
    creds = grpc.credentials.createSsl(fs.readFileSync(spec.ca));
    opts['grpc.ssl_target_name_override'] = 'localhost';
    opts['grpc.default_authority'] = 'localhost';
  }
  const stub = new Echo(target, creds, opts);
  const watchdog = setTimeout(() => {
    out({ error: 'the call did not finish within 15 s' });
    process.exit(1);
  }, 15000);

  const metadata = () => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(spec.metadata || {})) md.add(k, k.endsWith('-bin') ? Buffer.from(v) : v);
    return md;
  };
  const callOpts = () => (spec.deadline_ms ? { deadline: Date.now() + spec.deadline_ms } : {});
  const sizes = spec.sizes || [0];
  const request = (i, n) => Object.assign({ payload: pattern(n, i) }, spec.req || {}, (spec.reqs || [])[i] || {});

  // Runs one call; resolves with its result.
  function one(idx) {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const res = { code: null, details: null, headers: null, trailers: null, messages: [] };
      const order = [];
      let call;
      const got = (m) => {
        res.messages.push({ index: m.index, size: m.payload.length, sha: sha(m.payload) });
        order.push('r' + m.index);
        if (spec.cancel_after && res.messages.length === spec.cancel_after) call.cancel();
      };
      const onStatus = (s) => {
        res.code = s.code;
        res.details = s.details;
        res.trailers = mdToObject(s.metadata);
        res.elapsed_ms = Date.now() - t0;
        if (spec.kind === 'bidi') res.order = order;
        setImmediate(() => resolve(res)); // a unary call's callback may come after its status
      };
      const unaryCb = (err, reply) => {
        if (!err && reply) got(reply);
      };
      const kind = spec.kind;
      if (kind === 'unary') {
        call = stub.Unary(request(idx, sizes[idx % sizes.length]), metadata(), callOpts(), unaryCb);
      } else if (kind === 'server') {
        call = stub.ServerStream(request(0, sizes[0]), metadata(), callOpts());
        call.on('data', got);
      } else if (kind === 'client') {
        call = stub.ClientStream(metadata(), callOpts(), unaryCb);
        sizes.forEach((n, i) => call.write(request(i, n)));
        call.end();
      } else if (kind === 'bidi') {
        call = stub.Bidi(metadata(), callOpts());
        let i = 0;
        const send = () => {
          if (i === sizes.length) return call.end();
          order.push('s' + i);
          call.write(request(i, sizes[i]));
          i++;
        };
        call.on('data', (m) => {
          got(m);
          if (!spec.cancel_after || res.messages.length < spec.cancel_after) send();
        });
        send();
      } else {
        throw new Error('unknown kind ' + kind);
      }
      call.on('metadata', (md) => { res.headers = mdToObject(md); });
      call.on('status', onStatus);
      call.on('error', () => {}); // the status says it all
    });
  }

  const finish = (result) => {
    clearTimeout(watchdog);
    stub.close();
    out(result);
    process.exit(0);
  };
  if (spec.parallel) {
    const t0 = Date.now();
    Promise.all(Array.from({ length: spec.parallel }, (_, i) => one(i))).then((all) => {
      const codes = {};
      for (const r of all) codes[r.code] = (codes[r.code] || 0) + 1;
      finish({
        parallel: all.length, codes, elapsed_ms: Date.now() - t0,
        details: [...new Set(all.filter((r) => r.code !== 0).map((r) => r.details))].slice(0, 5),
        // per call: the reply's size and hash (the test knows what each call sent)
        replies: all.map((r) => (r.messages[0] ? [r.messages[0].size, r.messages[0].sha] : null)),
      });
    });
  } else {
    one(0).then(finish);
  }
}

const [mode, target, spec] = process.argv.slice(2);
if (mode === 'server') server();
else if (mode === 'client' && target && spec) {
  try {
    client(target, JSON.parse(spec));
  } catch (e) {
    out({ error: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  }
} else {
  process.stderr.write('usage: grpc_peer.js server | client HOST:PORT SPEC_JSON\n');
  process.exit(2);
}
