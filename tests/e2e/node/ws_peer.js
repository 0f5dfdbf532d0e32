// WebSocket peers for Weft's end-to-end tests, on the `ws` package.
//
//   node ws_peer.js server
//       An echo server on 127.0.0.1 and a kernel-chosen port. Prints one JSON line per event:
//       {"event":"listening","port":N} first, then "connection" (with the request's headers),
//       "message" (length, binary), "close" (code, reason as the server saw them).
//       A text message "close:CODE" makes the server close with CODE and reason "server-bye".
//
//   node ws_peer.js client URL SCENARIO
//       Runs one scenario through URL and prints a single JSON result line, then exits 0
//       (exit 1 with {"error": ...} when the scenario itself failed to run).
//       echo        messages of 1 B, 64 KiB and 1 MiB (random bytes) come back identical
//       fragments   one text message sent as 3 fragments comes back whole
//       ping        a ping with a payload gets its pong
//       close       the client closes with 4000 "client-bye"; the close code it gets back
//       server-close  asks the server to close (4001); the close code the client sees
//       slow        a message every 150 ms for 1.2 s (longer than a short route timeout)
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function server() {
  const wss = new WebSocket.WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 16 << 20 });
  wss.on('listening', () => out({ event: 'listening', port: wss.address().port }));
  wss.on('connection', (ws, req) => {
    out({ event: 'connection', headers: req.headers });
    ws.on('message', (data, isBinary) => {
      out({ event: 'message', length: data.length, binary: isBinary });
      const text = isBinary ? null : data.toString();
      if (text && text.startsWith('close:')) {
        ws.close(Number(text.slice(6)), 'server-bye');
        return;
      }
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => out({ event: 'close', code, reason: reason.toString() }));
  });
}

function client(url, scenario) {
  const ws = new WebSocket(url, { maxPayload: 16 << 20 });
  const result = { scenario };
  const done = (extra) => {
    Object.assign(result, extra || {});
    out(result);
    process.exit(0);
  };
  const fail = (e) => {
    out({ scenario, error: String(e && e.message ? e.message : e) });
    process.exit(1);
  };
  const timer = setTimeout(() => fail('scenario timed out'), 20000);
  timer.unref();
  ws.on('error', fail);
  ws.on('unexpected-response', (req, res) => {
    out({ scenario, error: 'unexpected response', status: res.statusCode });
    process.exit(1);
  });
  ws.on('upgrade', (res) => { result.upgrade_headers = res.headers; });
  ws.on('open', () => {
    if (scenario === 'echo') {
      const sizes = [1, 64 * 1024, 1 << 20];
      const sent = sizes.map((n) => crypto.randomBytes(n));
      const got = [];
      ws.on('message', (data) => {
        got.push(Buffer.from(data));
        if (got.length === sent.length) {
          ws.close(1000);
          done({ sizes: got.map((b) => b.length), same: got.every((b, i) => b.equals(sent[i])) });
        }
      });
      sent.forEach((b) => ws.send(b, { binary: true }));
    } else if (scenario === 'fragments') {
      ws.on('message', (data, isBinary) => {
        ws.close(1000);
        done({ text: data.toString(), binary: isBinary });
      });
      ws.send('frag-one ', { fin: false, binary: false });
      ws.send('frag-two ', { fin: false, binary: false });
      ws.send('frag-three', { fin: true, binary: false });
    } else if (scenario === 'ping') {
      ws.on('pong', (data) => {
        ws.close(1000);
        done({ pong: data.toString() });
      });
      ws.ping('are-you-there');
    } else if (scenario === 'close') {
      ws.on('close', (code, reason) => done({ code, reason: reason.toString() }));
      ws.close(4000, 'client-bye');
    } else if (scenario === 'server-close') {
      ws.on('close', (code, reason) => done({ code, reason: reason.toString() }));
      ws.send('close:4001');
    } else if (scenario === 'slow') {
      let n = 0;
      let echoed = 0;
      ws.on('message', () => {
        echoed++;
        if (echoed === 8) {
          ws.close(1000);
          done({ echoed });
        }
      });
      ws.on('close', (code) => done({ echoed, closed_early: code }));
      const tick = setInterval(() => {
        ws.send('tick ' + n++);
        if (n === 8) clearInterval(tick);
      }, 150);
    } else {
      fail('unknown scenario ' + scenario);
    }
  });
}

const [mode, url, scenario] = process.argv.slice(2);
if (mode === 'server') server();
else if (mode === 'client') client(url, scenario);
else {
  process.stderr.write('usage: ws_peer.js server | client URL SCENARIO\n');
  process.exit(2);
}
