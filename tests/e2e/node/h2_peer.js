// An HTTP/2 server (h2c) for the e2e tests, on Node's own http2 module. `node h2_peer.js
// server` prints {"port": N}, then serves: /1xx answers a 103 Early Hints (a link field)
// before its 200; any other path a plain 200. Its body names the path.
'use strict';
const http2 = require('http2');

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  if (path === '/1xx')
    stream.additionalHeaders({':status': 103, link: '</style.css>; rel=preload'});
  stream.respond({':status': 200, 'content-type': 'text/plain'});
  stream.end('served ' + path + '\n');
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({port: server.address().port})));
