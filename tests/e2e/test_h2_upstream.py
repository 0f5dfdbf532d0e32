"""HTTP/2 to the upstream: clusters with explicit_http_config http2_protocol_options (h2c),
auto_config over TLS (ALPN picks h2 or HTTP/1.1 per host), multiplexing on few connections,
a server's GOAWAY (the streams it refused are sent again), trailers, and the translation
between an HTTP/1.1 client and an HTTP/2 upstream. The upstream is a real HTTP/2 server: nginx
(`listen ... http2`), which reports the protocol it served in the body."""

import os
import subprocess
import time

import configs as C
import h2raw as H
from harness import (HERE, NodePeer, Weft, check, curl, curl_request, eq, free_port, http_req, raw, session_dir,
                     tmp_path, wait_for, write_file)
from test_tls import pki

H2 = {"explicit_http_config": {"http2_protocol_options": {}}}
AUTO = {"auto_config": {}}
OPTS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


class Nginx:
    """An nginx on 127.0.0.1 with the given server blocks ({port} and {dir} substituted)."""

    def __init__(self, servers, **ports):
        self.dir = tmp_path("nginx-%d" % free_port())
        os.makedirs(self.dir, exist_ok=True)
        self.ports = ports
        conf = ("worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;\n"
                "events { worker_connections 256; }\n"
                "http { access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n"
                "fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n%s }\n") % servers
        conf = conf.replace("{dir}", self.dir)
        for k, v in ports.items():
            conf = conf.replace("{%s}" % k, str(v))
        self.conf = write_file(os.path.join(self.dir, "nginx.conf"), conf)
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", self.dir], stderr=subprocess.PIPE)
        for p in ports.values():
            wait_for(lambda: _listening(p), 5, what="nginx listening on %d" % p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # SIGTERM: the master stops its worker too (SIGKILL would leave the worker running)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return False


def _listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


ECHO = ('location / { return 200 "proto=$server_protocol path=$uri host=$host te=$http_te cl=$content_length\\n"; }\n'
        'location /grpc { default_type application/grpc; add_trailer grpc-status 0 always; '
        'add_trailer x-trailer here always; return 200 "xxxxx"; }\n')


def _cfg(up_port, protocol, tls=None, **hcm_extra):
    extra = {"typed_extension_protocol_options": {OPTS: dict({"@type": "type.googleapis.com/" + OPTS}, **protocol)}}
    if tls:
        extra["transport_socket"] = tls
    return C.simple(up_port, cluster_extra=extra, **hcm_extra)


def test_h2_upstream_explicit_h2c():
    """explicit_http_config http2_protocol_options: an HTTP/1.1 client's request reaches the
    upstream over HTTP/2 (h2c) with Host as :authority and its body; an HTTP/2 client's too;
    200 concurrent requests share a handful of connections (multiplexing)."""
    p = free_port()
    with Nginx("server { listen 127.0.0.1:{p} http2; keepalive_requests 100000; %s }" % ECHO, p=p):
        cfg, port = _cfg(p, H2)
        with Weft(cfg) as w:
            code, body, _ = curl_request("http://127.0.0.1:%d/a/b" % port, "-H", "Host: svc.local")
            eq(code, 200, "h1 client")
            check(body.startswith(b"proto=HTTP/2.0 path=/a/b host=svc.local"), "served over h2: %r", body)
            code, body, _ = curl_request("http://127.0.0.1:%d/post" % port, "--data-binary", "x" * 100000)
            eq(code, 200, "h1 client with a body")
            check(b"cl=100000" in body, "the body's length went as content-length: %r", body)
            code, body, _ = curl_request("http://127.0.0.1:%d/x" % port, "--http2-prior-knowledge")
            check(code == 200 and body.startswith(b"proto=HTTP/2.0"), "h2 client: %r", body)
            r = subprocess.run(["h2load", "-n", "400", "-c", "2", "-m", "100", "http://127.0.0.1:%d/" % port],
                               capture_output=True, text=True, timeout=30)
            check("400 succeeded" in r.stdout, "h2load: %s", r.stdout[-600:])
            cx = w.stat("cluster.backend.upstream_cx_total")
            check(cx <= 8, "multiplexed on a few connections, got %d for 404 requests", cx)
            eq(w.stat("cluster.backend.upstream_rq_total"), 403, "upstream_rq_total")


def test_h2_upstream_goaway_refused_streams_are_sent_again():
    """A server that sends GOAWAY after every 50 requests (nginx keepalive_requests 50) while
    up to 60 streams are in flight: the streams it refused (above its GOAWAY's last stream) were
    never processed, so they are sent again on a new connection and every client request
    succeeds; new connections are opened as the old ones go away."""
    p = free_port()
    with Nginx("server { listen 127.0.0.1:{p} http2; keepalive_requests 50; %s }" % ECHO, p=p):
        cfg, port = _cfg(p, H2)
        with Weft(cfg) as w:
            r = subprocess.run(["h2load", "-n", "600", "-c", "3", "-m", "20", "http://127.0.0.1:%d/" % port],
                               capture_output=True, text=True, timeout=30)
            check("600 succeeded" in r.stdout, "every request answered: %s", r.stdout[-600:])
            check(w.stat("cluster.backend.upstream_cx_total") >= 12, "new connections after each GOAWAY")


def test_h2_upstream_trailers():
    """Response trailers from an HTTP/2 upstream reach an HTTP/2 client after the body
    (grpc-status, x-trailer), and `te: trailers` from the client reaches the upstream; an
    HTTP/1.1 client gets the body without them."""
    p = free_port()
    with Nginx("server { listen 127.0.0.1:{p} http2; %s }" % ECHO, p=p):
        cfg, port = _cfg(p, H2)
        with Weft(cfg), H.H2Conn(port) as c:
            c.handshake()
            st = c.response(c.request("GET", "/grpc", headers=[("te", "trailers")]))
            eq(st.status, 200, "status")
            eq(bytes(st.body), b"xxxxx", "body")
            check(st.trailers and dict(st.trailers).get("grpc-status") == "0"
                  and dict(st.trailers).get("x-trailer") == "here", "trailers: %r", st.trailers)
            st = c.response(c.request("GET", "/te", headers=[("te", "trailers")]))
            check(b"te=trailers" in bytes(st.body), "te: trailers forwarded: %r", bytes(st.body))
            code, body, _ = curl_request("http://127.0.0.1:%d/grpc" % port)
            eq((code, body), (200, b"xxxxx"), "h1 client")


GZIP_TRAILER = ('location /gz { default_type text/plain; gzip on; gzip_types text/plain; gzip_min_length 0; '
                'add_trailer x-trailer here always; return 200 "hello hello hello"; }\n')


def _chunked_end(data):
    """The last chunk of a chunked HTTP/1.1 response and what follows it (the trailer section)."""
    return bytes(data)[bytes(data).rfind(b"\r\n0\r\n") + 2:]


def test_h2_upstream_trailers_to_http11_client_with_enable_trailers():
    """http_protocol_options.enable_trailers: the trailers of an HTTP/2 upstream's response
    without content-length (nginx gzipping on the fly) reach an HTTP/1.1 client in the last
    chunk; without it (Envoy's default) the chunked body ends bare. A response with a
    content-length carries no trailers either way."""
    p = free_port()
    req = http_req("GET", "/gz", headers=[("Accept-Encoding", "gzip"), ("Connection", "close")])
    with Nginx("server { listen 127.0.0.1:{p} http2; %s %s }" % (ECHO, GZIP_TRAILER), p=p):
        for enabled, want in ((False, b"0\r\n\r\n"), (True, b"0\r\nx-trailer: here\r\n\r\n")):
            cfg, port = _cfg(p, H2, http_protocol_options={"enable_trailers": enabled})
            with Weft(cfg):
                r = raw(port, req, timeout=5)
                eq(r.status, 200, "status (enable_trailers %s)" % enabled)
                check("transfer-encoding: chunked" in r.head.lower(), "chunked to the client: %r", r.head)
                eq(_chunked_end(r), want, "the end of the chunked body (enable_trailers %s)" % enabled)
                out = curl("-sS", "--raw", "-H", "Accept-Encoding: gzip", "http://127.0.0.1:%d/gz" % port).stdout
                check(out.endswith(want), "curl --raw sees the same end: %r", out[-40:])
                r = raw(port, http_req("GET", "/grpc", headers=[("Connection", "close")]), timeout=5)
                check(r.status == 200 and bytes(r).endswith(b"\r\n\r\nxxxxx") and b"x-trailer" not in bytes(r),
                      "a content-length response has no trailers: %r", bytes(r)[-120:])


def test_h2_upstream_auto_config_alpn():
    """auto_config over TLS: a host that offers h2 with ALPN is spoken to over HTTP/2 (and its
    connections are multiplexed), a host that offers only HTTP/1.1 over HTTP/1.1."""
    k = pki()
    tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": "localhost", "common_tls_context": {"validation_context": {"trusted_ca": {"filename": k["ca.crt"]}}}}}
    p2, p1 = free_port(), free_port()
    cert = "ssl_certificate %s; ssl_certificate_key %s;" % (k["srv_ec.crt"], k["srv_ec.key"])
    servers = ("server { listen 127.0.0.1:{p2} ssl http2; %s keepalive_requests 100000; %s }\n"
               "server { listen 127.0.0.1:{p1} ssl; %s %s }\n") % (cert, ECHO, cert, ECHO)
    with Nginx(servers, p2=p2, p1=p1):
        for up, proto in ((p2, b"HTTP/2.0"), (p1, b"HTTP/1.1")):
            cfg, port = _cfg(up, AUTO, tls=tls)
            with Weft(cfg) as w:
                for i in range(3):
                    code, body, _ = curl_request("http://127.0.0.1:%d/auto" % port)
                    eq(code, 200, "request %d" % i)
                    check(body.startswith(b"proto=" + proto), "host %d served over %s: %r", up, proto, body)
                r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "20", "http://127.0.0.1:%d/" % port],
                                   capture_output=True, text=True, timeout=30)
                check("200 succeeded" in r.stdout, "h2load: %s", r.stdout[-600:])
                if proto == b"HTTP/2.0":
                    check(w.stat("cluster.backend.upstream_cx_total") <= 12, "h2 connections are shared")


def test_h2_upstream_more_connections_when_full():
    """A server that takes 4 concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS
    4): 40 slow requests at once through one worker are spread over at least 10 connections (no
    more than 4 streams on one), and all succeed; streams the server refused before its SETTINGS
    arrived are sent again. Each answer takes about a second (2 KiB at 2 KiB/s after the first
    byte), so all 40 are in flight together however fast the machine is."""
    p = free_port()
    with Nginx("server { listen 127.0.0.1:{p} http2; http2_max_concurrent_streams 4; keepalive_requests 100000;"
               " location = /slow { limit_rate_after 1; limit_rate 2k; return 200 \"%s\"; } %s }" % ("s" * 2048, ECHO),
               p=p):
        cfg, port = _cfg(p, H2)
        with Weft(cfg) as w:  # one worker
            r = subprocess.run(["h2load", "-n", "40", "-c", "1", "-m", "40", "http://127.0.0.1:%d/slow" % port],
                               capture_output=True, text=True, timeout=30)
            check("40 succeeded" in r.stdout, "every request answered: %s", r.stdout[-600:])
            cx = w.stat("cluster.backend.upstream_cx_total")
            check(cx >= 10, "40 streams at once need at least 10 connections of 4 streams, got %d", cx)


def test_h2_upstream_interim_responses():
    """A 103 Early Hints from an HTTP/2 upstream (Node's http2 server) reaches an HTTP/2 client
    before the final response when proxy_100_continue is set, and is dropped without it
    (Envoy's rule, as for HTTP/1.1 upstreams)."""
    with NodePeer(os.path.join(HERE, "node", "h2_peer.js"), "Node HTTP/2 server") as up:
        for proxy in (True, False):
            what = "proxy_100_continue %s" % proxy
            cfg, port = _cfg(up.port, H2, proxy_100_continue=proxy)
            with Weft(cfg), H.H2Conn(port) as c:
                c.handshake()
                st = c.get("/1xx")
                eq((st.status, bytes(st.body)), (200, b"served /1xx\n"), "%s: the final response" % what)
                eq(st.interim, [[(":status", "103"), ("link", "</style.css>; rel=preload")]] if proxy else [],
                   "%s: the 103 relayed" % what)
                eq(c.get("/plain").interim, [], "%s: no interim response where the upstream sent none" % what)


def test_h2_upstream_use_downstream_protocol():
    """use_downstream_protocol_config: an HTTP/2 client's request goes to the host over HTTP/2,
    an HTTP/1.1 client's over HTTP/1.1 - shown with a host that speaks only h2c (nginx `listen
    ... http2`): the HTTP/2 client is served over HTTP/2.0, the HTTP/1.1 client's request is
    refused by that host (Weft answers 502/503), and the same HTTP/1.1 request through an
    explicit HTTP/2 cluster is served."""
    p = free_port()
    with Nginx("server { listen 127.0.0.1:{p} http2; %s }" % ECHO, p=p):
        cfg, port = _cfg(p, {"use_downstream_protocol_config": {"http2_protocol_options": {}}})
        with Weft(cfg):
            code, body, _ = curl_request("http://127.0.0.1:%d/d" % port, "--http2-prior-knowledge")
            check(code == 200 and body.startswith(b"proto=HTTP/2.0"), "h2 client over h2: %r %r", code, body)
            code, body, _ = curl_request("http://127.0.0.1:%d/d" % port)
            check(code in (502, 503), "h1 client over HTTP/1.1 to an h2c-only host: %r %r", code, body)
        cfg, port = _cfg(p, H2)
        with Weft(cfg):
            code, body, _ = curl_request("http://127.0.0.1:%d/d" % port)
            check(code == 200 and body.startswith(b"proto=HTTP/2.0"), "h1 client, explicit h2: %r %r", code, body)
