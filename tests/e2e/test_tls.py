"""TLS in the data plane: downstream TLS termination on a listener's filter chain
(envoy.transport_sockets.tls with a DownstreamTlsContext), for the HTTP connection manager
and for tcp_proxy.

The PKI is generated at test time with the openssl CLI in the test's tmp dir: a CA and a
second, unrelated CA; a server certificate in RSA and one in ECDSA P-256 (SANs localhost,
*.example.com, 127.0.0.1); client certificates with a SPIFFE URI SAN. Clients are curl,
openssl s_client and Python's ssl module.
"""

import os
import socket
import ssl
import subprocess

import configs as C
import hashlib
import json
import time

from harness import (HttpUpstream, TcpEcho, Weft, check, curl_request, eq, free_port, pattern_bytes, recv_all,
                     run_weft, tmp_path, wait_for, write_file)

TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
SPIFFE = "spiffe://weft.test/ns/default/sa/client"

_pki = None


def _ossl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, "openssl %s: %s", " ".join(args), p.stderr.decode())


def _ca(d, name):
    _ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
          "-subj", "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".crt", cwd=d)


def _leaf(d, name, ca, sans, key="ec", serial=1, cn=None):
    """A certificate for `name` signed by `ca`, with subjectAltName `sans`."""
    keyopt = ["-newkey", "rsa:2048"] if key == "rsa" else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    _ossl("req", *keyopt, "-nodes", "-subj", "/CN=%s" % (cn or name), "-keyout", name + ".key",
          "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(("subjectAltName=%s\n" % sans if sans else "") +
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
    _ossl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-set_serial",
          str(serial), "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt", cwd=d)


def pki():
    """Paths of the test PKI (generated once per run): pki()["srv_rsa.crt"] and so on."""
    global _pki
    if _pki is None:
        d = os.path.dirname(tmp_path("pki"))
        _ca(d, "ca")
        _ca(d, "otherca")
        srv = "DNS:localhost,DNS:*.example.com,IP:127.0.0.1"
        _leaf(d, "srv_rsa", "ca", srv, key="rsa", serial=0x1001)
        _leaf(d, "srv_ec", "ca", srv, serial=0x1002)
        _leaf(d, "srv_new", "ca", srv, serial=0x2002)
        _leaf(d, "other", "ca", "DNS:other.test", serial=0x1003, cn="other.test")
        _leaf(d, "client", "ca", "URI:%s,DNS:client.test" % SPIFFE, serial=0x3001)
        _leaf(d, "client_badsan", "ca", "URI:spiffe://weft.test/ns/default/sa/intruder", serial=0x3002)
        _leaf(d, "client_otherca", "otherca", "URI:%s" % SPIFFE, serial=0x3003)
        # several certificates in one context, chosen by SNI (and key type)
        _leaf(d, "a_rsa", "ca", "DNS:a.test", key="rsa", serial=0x4001)
        _leaf(d, "a_ec", "ca", "DNS:a.test", serial=0x4002)
        _leaf(d, "wild_rsa", "ca", "DNS:*.wild.test", key="rsa", serial=0x4003)
        _leaf(d, "cn_only", "ca", None, serial=0x4004, cn="cn.test")
        _pki = {n: os.path.join(d, n) for n in os.listdir(d)}
    return _pki


def cert(name):
    p = pki()
    return {"certificate_chain": {"filename": p[name + ".crt"]}, "private_key": {"filename": p[name + ".key"]}}


def tls_socket(names=("srv_ec",), params=None, alpn=None, validation=None, **extra):
    ctx = {"tls_certificates": [cert(n) for n in names]}
    if params:
        ctx["tls_params"] = params
    if alpn:
        ctx["alpn_protocols"] = list(alpn)
    if validation:
        ctx["validation_context"] = validation
    tc = {"@type": TLS, "common_tls_context": ctx}
    tc.update(extra)
    return {"name": "envoy.transport_sockets.tls", "typed_config": tc}


def https_config(up_port, ts=None, **hcm_extra):
    cfg, port = C.simple(up_port, **hcm_extra)
    cfg.doc["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = ts or tls_socket()
    return C.bootstrap(listeners=cfg.doc["static_resources"]["listeners"],
                       clusters=cfg.doc["static_resources"]["clusters"], admin_port=cfg.admin_port), port


def curl_https(port, path="/", *args, host="localhost"):
    return curl_request("https://%s:%d%s" % (host, port, path), "--cacert", pki()["ca.crt"],
                        "--resolve", "%s:%d:127.0.0.1" % (host, port), "--max-time", "5", *args)


def s_client(port, *args, data=b"", servername="localhost"):
    """openssl s_client; returns its stdout+stderr text."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", servername,
                        "-CAfile", pki()["ca.crt"]] + list(args),
                       input=data, capture_output=True, timeout=10)
    return p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def py_client(port, cafile=True, server_hostname="localhost", **kw):
    ctx = ssl.create_default_context(cafile=pki()["ca.crt"] if cafile else None)
    for k, v in kw.items():
        setattr(ctx, k, v)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s, server_hostname=server_hostname)


def recv_exactly(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(65536)
        check(chunk, "connection closed after %d of %d bytes", len(got), n)
        got += chunk
    return got


# ---------------------------------------------------------------------------------------------
# downstream TLS with the HTTP connection manager

def test_tls_https_request_and_forwarded_proto():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port)
        with Weft(cfg) as w:
            code, body, err = curl_https(port, "/hello")
            eq(code, 200, "https request through Weft (%s)" % err)
            req = up.requests[-1]
            eq(req.path, "/hello", "upstream path")
            eq(req.header("x-forwarded-proto"), "https", "x-forwarded-proto on a TLS connection")
            # keep-alive over TLS: several requests on one connection
            code, _, err = curl_https(port, "/a", "-o", "/dev/null", "https://localhost:%d/b" % port)
            eq(code, 200200, "two requests on one TLS connection (%s)" % err)
            eq(w.stat("listener.127.0.0.1_%d.ssl.handshake" % port), 2, "ssl.handshake")
            # plain HTTP to a TLS listener is not served
            code, _, _ = curl_request("http://127.0.0.1:%d/" % port, "--max-time", "3")
            check(code != 200, "plain HTTP on a TLS listener must fail, got %s", code)
            check(w.stat("listener.127.0.0.1_%d.ssl.connection_error" % port) >= 1, "ssl.connection_error")


def test_tls_large_bodies_both_ways_with_a_slow_reader():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port)
        with Weft(cfg):
            body = os.urandom(3 * 1024 * 1024)
            path = write_file(tmp_path("up.bin"), body)
            code, got, err = curl_https(port, "/sink", "--data-binary", "@" + path)
            eq(code, 200, "3 MiB upload over TLS (%s)" % err)
            eq(json.loads(got), {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}, "upload intact")
            n = 4 * 1024 * 1024
            code, got, err = curl_https(port, "/bytes/%d" % n)
            eq((code, got == pattern_bytes(n)), (200, True), "4 MiB download over TLS (%s)" % err)
            # a reader that stalls: Weft stops reading the upstream, then resumes (back-pressure
            # through the TLS output queue and the bytes OpenSSL holds)
            with py_client(port) as s:
                s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
                first = s.recv(1000)
                check(first.startswith(b"HTTP/1.1 200"), "response head")
                time.sleep(0.3)  # stall (not a wait for anything: any length works)
                head_end = first.index(b"\r\n\r\n") + 4
                got = first + recv_exactly(s, head_end + n - len(first))
                eq(got[head_end:] == pattern_bytes(n), True, "the stalled download completes intact")


# ---------------------------------------------------------------------------------------------
# downstream TLS with tcp_proxy: terminated, plain bytes to the upstream

def test_tls_tcp_proxy_termination():
    with TcpEcho() as echo:
        port = free_port()
        lst = C.tcp_listener(port, "echo")
        lst["filter_chains"][0]["transport_socket"] = tls_socket()
        cfg = C.bootstrap(listeners=[lst], clusters=[C.cluster("echo", [echo.port])])
        with Weft(cfg) as w:
            s = py_client(port)
            payload = os.urandom(200000)
            s.sendall(payload)
            got = recv_exactly(s, len(payload))
            eq(got == payload, True, "200 kB echoed through TLS termination intact")
            check(echo.bytes_in == len(payload), "the upstream got plain bytes: %d", echo.bytes_in)
            # close_notify from the client: the upstream sees EOF and closes its side, and Weft
            # answers with its own close_notify (unwrap() waits for it)
            s.unwrap()
            s.close()
            eq(echo.eofs, 1, "upstream EOF after the client's close_notify")
            eq(w.stat("listener.127.0.0.1_%d.ssl.handshake" % port), 1, "ssl.handshake")


# ---------------------------------------------------------------------------------------------
# versions, certificates by key type, ALPN

def _py_handshake(port, **kw):
    """Version string of a handshake with Python's ssl module, or the exception's text."""
    try:
        with py_client(port, **kw) as s:
            return s.version()
    except (ssl.SSLError, OSError) as e:
        return "failed: %s" % e


def test_tls_protocol_version_limits():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(params={"tls_minimum_protocol_version": "TLSv1_3",
                                                             "tls_maximum_protocol_version": "TLSv1_3"}))
        with Weft(cfg):
            eq(_py_handshake(port), "TLSv1.3", "a TLS 1.3 client")
            v = _py_handshake(port, maximum_version=ssl.TLSVersion.TLSv1_2)
            check(v.startswith("failed"), "TLS 1.2 client to a 1.3-only listener must fail: %s", v)
        cfg, port = https_config(up.port, tls_socket(params={"tls_maximum_protocol_version": "TLSv1_2",
                                                             "cipher_suites": ["ECDHE-ECDSA-AES128-GCM-SHA256"],
                                                             "ecdh_curves": ["P-256"]}))
        with Weft(cfg):
            eq(_py_handshake(port), "TLSv1.2", "the listener's maximum is 1.2")
            v = _py_handshake(port, minimum_version=ssl.TLSVersion.TLSv1_3)
            check(v.startswith("failed"), "TLS 1.3-only client to a 1.2-max listener must fail: %s", v)
            with py_client(port) as s:
                eq(s.cipher()[0], "ECDHE-ECDSA-AES128-GCM-SHA256", "the configured cipher suite")
            code, _, err = curl_https(port, "/", "--tls-max", "1.2")
            eq(code, 200, "curl --tls-max 1.2 (%s)" % err)


def test_tls_rsa_and_ecdsa_by_client_preference():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(names=("srv_rsa", "srv_ec")))
        with Weft(cfg):
            out = s_client(port, "-sigalgs", "ECDSA+SHA256", data=b"")
            check("Peer signature type: ECDSA" in out, "an ECDSA-only client gets the ECDSA cert:\n%s", out[-1500:])
            out = s_client(port, "-sigalgs", "rsa_pss_rsae_sha256:RSA+SHA256", data=b"")
            check("Peer signature type: RSA" in out, "an RSA-only client gets the RSA cert:\n%s", out[-1500:])
            code, _, err = curl_https(port)
            eq(code, 200, "curl with both certificates configured (%s)" % err)


def test_tls_alpn_advertises_configured():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(alpn=["http/1.1"]))
        with Weft(cfg):
            with py_client(port) as s:
                pass
            ctx = ssl.create_default_context(cafile=pki()["ca.crt"])
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as s:
                eq(s.selected_alpn_protocol(), "http/1.1", "ALPN: the configured protocol, not h2")
            ctx.set_alpn_protocols(["h2"])
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as s:
                eq(s.selected_alpn_protocol(), None, "no common protocol: no ALPN (Envoy's behaviour)")


# ---------------------------------------------------------------------------------------------
# client certificates (mTLS)

def _mtls_config(up_port):
    return https_config(up_port, tls_socket(
        validation={"trusted_ca": {"filename": pki()["ca.crt"]},
                    "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": SPIFFE}}]},
        require_client_certificate=True))


def test_tls_client_certificate_required_and_verified():
    with HttpUpstream("up") as up:
        cfg, port = _mtls_config(up.port)
        stat = "listener.127.0.0.1_%d.ssl.%%s" % port
        with Weft(cfg) as w:
            p = pki()
            code, _, err = curl_https(port, "/ok", "--cert", p["client.crt"], "--key", p["client.key"])
            eq(code, 200, "a client certificate from the CA with the SPIFFE SAN (%s)" % err)
            eq(up.requests[-1].path, "/ok", "the request went through")
            code, _, _ = curl_https(port, "/nocert")
            check(code != 200, "no client certificate must fail, got %s", code)
            wait_for(lambda: w.stat(stat % "no_certificate") == 1, what="ssl.no_certificate")
            code, _, _ = curl_https(port, "/otherca", "--cert", p["client_otherca.crt"], "--key",
                                    p["client_otherca.key"])
            check(code != 200, "a client certificate from another CA must fail, got %s", code)
            wait_for(lambda: w.stat(stat % "fail_verify_error") == 1, what="ssl.fail_verify_error")
            code, _, _ = curl_https(port, "/badsan", "--cert", p["client_badsan.crt"], "--key",
                                    p["client_badsan.key"])
            check(code != 200, "a client certificate without the SAN must fail, got %s", code)
            wait_for(lambda: w.stat(stat % "fail_verify_san") == 1, what="ssl.fail_verify_san")
            check(all(r.path == "/ok" for r in up.requests), "only the verified client reached the upstream")


# ---------------------------------------------------------------------------------------------
# session resumption

def _resumed(port, *args):
    sess = tmp_path("sess.pem")
    req = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    first = s_client(port, "-ign_eof", "-sess_out", sess, *args, data=req)
    check("HTTP/1.1 200" in first, "first connection served:\n%s", first[-1500:])
    if not os.path.exists(sess):
        return False  # nothing to resume: no session id and no ticket
    second = s_client(port, "-ign_eof", "-sess_in", sess, *args, data=req)
    check("HTTP/1.1 200" in second, "second connection served:\n%s", second[-1500:])
    return "Reused," in second


def test_tls_session_resumption():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port)
        with Weft(cfg) as w:
            check(_resumed(port), "TLS 1.3 session resumption with a ticket")
            check(_resumed(port, "-tls1_2"), "TLS 1.2 session resumption with a ticket")
            eq(w.stat("listener.127.0.0.1_%d.ssl.session_reused" % port), 2, "ssl.session_reused")
        cfg, port = https_config(up.port, tls_socket(disable_stateless_session_resumption=True,
                                                     disable_stateful_session_resumption=True))
        with Weft(cfg):
            check(not _resumed(port, "-tls1_2"), "no resumption when both kinds are disabled")


def test_tls_prefer_client_ciphers():
    server_order = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"]
    with HttpUpstream("up") as up:
        for prefer, want in ((False, server_order[0]), (True, server_order[1])):
            params = {"tls_maximum_protocol_version": "TLSv1_2", "cipher_suites": server_order}
            cfg, port = https_config(up.port, tls_socket(params=params, prefer_client_ciphers=prefer))
            with Weft(cfg):
                ctx = ssl.create_default_context(cafile=pki()["ca.crt"])
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_ciphers(":".join(reversed(server_order)))
                with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as s:
                    eq(s.cipher()[0], want, "prefer_client_ciphers: %s" % prefer)


# ---------------------------------------------------------------------------------------------
# loading and reloading certificates

def test_tls_bad_files_refused_with_path_and_reason():
    d = os.path.dirname(tmp_path("x"))
    garbage = os.path.join(d, "garbage.pem")
    write_file(garbage, "not a certificate\n")
    port = free_port()
    for ts, needle in [
        (tls_socket(), None),
        ({"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": TLS, "common_tls_context": {"tls_certificates": [
                {"certificate_chain": {"filename": garbage}, "private_key": {"filename": pki()["srv_ec.key"]}}]}}},
         garbage),
        ({"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": TLS, "common_tls_context": {"tls_certificates": [
                {"certificate_chain": {"filename": pki()["srv_ec.crt"]}, "private_key": {"filename": pki()["srv_rsa.key"]}}]}}},
         "does not match"),
        (tls_socket(validation={"trusted_ca": {"filename": os.path.join(d, "missing.pem")}}), "missing.pem"),
    ]:
        cfg, _ = https_config(free_port(), ts)
        path = tmp_path("weft.yaml")
        write_file(path, str(cfg))
        p = run_weft(["validate", path])
        if needle is None:
            eq(p.returncode, 0, "a valid TLS config validates (%s)" % p.stderr)
            continue
        check(p.returncode != 0, "refused: %s", needle)
        check(needle in p.stderr and "weft.yaml:" in p.stderr, "the error names %s and the position:\n%s",
              needle, p.stderr)
    del port


def test_tls_chain_match_errors_are_located():
    port = free_port()
    dup = _sni_listener(port)
    dup["filter_chains"].append(_direct_chain("again", tls_socket(), server_names=["OTHER.test"]))
    bad_wild = _sni_listener(port)
    bad_wild["filter_chains"][0]["filter_chain_match"]["server_names"] = ["api.*.com"]
    bad_tp = _sni_listener(port)
    bad_tp["filter_chains"][4]["filter_chain_match"]["transport_protocol"] = "quic"
    other_filter = _sni_listener(port)
    other_filter["listener_filters"] = [{"name": "envoy.filters.listener.proxy_protocol"}]
    for lst, needle in [(dup, "filter chains 2 and 5 have the same filter_chain_match"),
                        (bad_wild, "'api.*.com'"), (bad_tp, "'quic': tls or raw_buffer"),
                        (other_filter, "listener filter envoy.filters.listener.proxy_protocol is not supported")]:
        path = write_file(tmp_path("weft.yaml"), str(C.bootstrap(listeners=[lst])))
        p = run_weft(["validate", path])
        check(p.returncode != 0 and needle in p.stderr and "weft.yaml:" in p.stderr,
              "refused with %r and a position:\n%s", needle, p.stderr)


def _serial(port):
    out = s_client(port, data=b"")
    p = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=out.encode(), capture_output=True)
    return p.stdout.decode().strip()


class LiveCert:
    """A certificate + key pair at fixed paths in the tmp dir, replaced by install(name)
    (written aside, then renamed over, as cert-manager and friends do)."""

    def __init__(self, stem):
        d = os.path.dirname(tmp_path("x"))
        self.crt, self.key = os.path.join(d, stem + ".crt"), os.path.join(d, stem + ".key")
        self.socket = {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": TLS, "common_tls_context": {
            "tls_certificates": [{"certificate_chain": {"filename": self.crt}, "private_key": {"filename": self.key}}]}}}

    def install(self, name):
        for src, dst in ((pki()[name + ".crt"], self.crt), (pki()[name + ".key"], self.key)):
            with open(src, "rb") as f:
                write_file(dst + ".tmp", f.read())
            os.replace(dst + ".tmp", dst)


def _get_ok(s, path):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    check(b" 200 " in s.recv(65536), "a request for %s on the open connection", path)


def test_tls_certificate_reload_on_sighup():
    live = LiveCert("live")
    live.install("srv_ec")
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, live.socket)
        with Weft(cfg) as w:
            eq(_serial(port), "serial=1002", "the first certificate")
            old = py_client(port)
            _get_ok(old, "/before")
            # a broken file on reload: refused, the old certificate keeps serving
            write_file(live.crt, "broken")
            w.reload(str(cfg))
            wait_for(lambda: "live.crt" in w.stderr(), what="the reload error naming the file")
            eq(_serial(port), "serial=1002", "the last good certificate still serves")
            live.install("srv_new")
            w.reload(str(cfg))
            wait_for(lambda: _serial(port) == "serial=2002", what="new handshakes get the new certificate")
            _get_ok(old, "/after")  # the connection opened before the reload keeps working
            old.close()


# ---------------------------------------------------------------------------------------------
# filter chain match: SNI, transport protocol, ALPN, default chain, passthrough

def _direct_chain(body, ts=None, **match):
    """A filter chain answering every request with 200 `body`."""
    fc = {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                       "typed_config": C.hcm([C.vhost("all", ["*"], [C.route(C.prefix("/"), direct=(200, body))])],
                                             stat_prefix="h_" + body)}]}
    if match:
        fc["filter_chain_match"] = match
    if ts:
        fc["transport_socket"] = ts
    return fc


def _inspector():
    return [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}]


def _sni_listener(port, default=True):
    lst = {"name": "sni", "address": C.address(port), "listener_filters": _inspector(), "filter_chains": [
        _direct_chain("wild", tls_socket(names=("srv_ec",)), server_names=["*.example.com"]),
        _direct_chain("exact", tls_socket(names=("srv_rsa",)), server_names=["api.example.com"]),
        _direct_chain("other", tls_socket(names=("other",)), server_names=["other.test"]),
        _direct_chain("special", tls_socket(names=("srv_ec",), alpn=["x-special"]),
                      server_names=["*.example.com"], application_protocols=["x-special"]),
        _direct_chain("plain", transport_protocol="raw_buffer"),
    ]}
    if default:
        lst["default_filter_chain"] = _direct_chain("default", tls_socket(names=("srv_rsa",)))
    return lst


def test_tls_sni_chains_and_default():
    port = free_port()
    cfg = C.bootstrap(listeners=[_sni_listener(port)])
    with Weft(cfg) as w:
        for host, body in [("www.example.com", "wild"), ("a.b.example.com", "wild"), ("api.example.com", "exact"),
                           ("other.test", "other"), ("nomatch.test", "default")]:
            # (the wildcard certificate does not cover a.b.example.com, nor nomatch.test)
            code, got, err = curl_https(port, "/", "-k" if host.count(".") > 2 or body == "default" else "-s", host=host)
            eq((code, got.decode()), (200, body), "SNI %s (%s)" % (host, err))
        # the certificate is the chain's: other.test verifies against its own certificate
        out = s_client(port, servername="other.test")
        check("CN = other.test" in out or "CN=other.test" in out, "other.test's certificate:\n%s", out[-1500:])
        # ALPN narrows among the chains for the same name
        ctx = ssl.create_default_context(cafile=pki()["ca.crt"])
        ctx.set_alpn_protocols(["x-special"])
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="www.example.com") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check(s.recv(65536).endswith(b"special"), "the chain with application_protocols x-special")
        # not TLS at all: the raw_buffer chain
        code, got, _ = curl_request("http://127.0.0.1:%d/" % port, "--max-time", "3")
        eq((code, got), (200, b"plain"), "plain HTTP goes to the raw_buffer chain")
    cfg = C.bootstrap(listeners=[_sni_listener(port, default=False)])
    with Weft(cfg) as w:
        code, _, _ = curl_https(port, "/", "-k", host="nomatch.test")
        check(code != 200, "no chain and no default chain: the connection is closed, got %s", code)
        eq(w.stat("listener.127.0.0.1_%d.no_filter_chain_match" % port), 1, "no_filter_chain_match")


class TlsEcho:
    """A TLS echo server (Python's ssl) that records the SNI each client asked for."""

    def __init__(self, name="srv_ec"):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki()[name + ".crt"], pki()[name + ".key"])
        self.snis = []
        self.ctx.sni_callback = lambda sock, sni, ctx: self.snis.append(sni)
        self.srv = TcpEcho()
        self.srv.handler = self._handle
        self.port = self.srv.port

    def _handle(self, s, _srv):
        with self.ctx.wrap_socket(s, server_side=True) as t:
            while True:
                data = t.recv(65536)
                if not data:
                    return
                t.sendall(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.srv.close()


def test_tls_passthrough_by_sni():
    with TlsEcho("srv_ec") as up:
        port = free_port()
        lst = _sni_listener(port)
        passthrough = {"filter_chain_match": {"server_names": ["pass.example.com"]},
                       "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                           "@type": C.TCP_PROXY, "stat_prefix": "pass", "cluster": "tls_up"}}]}
        lst["filter_chains"].insert(0, passthrough)
        cfg = C.bootstrap(listeners=[lst], clusters=[C.cluster("tls_up", [up.port])])
        with Weft(cfg) as w:
            with py_client(port, server_hostname="pass.example.com") as s:
                serial = ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))
                payload = os.urandom(100000)
                s.sendall(payload)
                got = recv_exactly(s, len(payload))
                eq(got == payload, True, "bytes relayed untouched end to end")
            with open(pki()["srv_ec.crt"]) as f:
                eq(serial.strip() == f.read().strip(), True, "the upstream's own certificate (TLS not terminated)")
            eq(up.snis, ["pass.example.com"], "the upstream saw the client's SNI")
            eq(w.stat("listener.127.0.0.1_%d.ssl.handshake" % port), 0, "Weft did not handshake")
            # the terminating chains still work beside it
            code, got, err = curl_https(port, "/", host="www.example.com")
            eq((code, got), (200, b"wild"), "a terminated chain on the same listener (%s)" % err)


def test_tls_inspector_waits_for_a_split_hello_and_times_out():
    port = free_port()
    lst = _sni_listener(port)
    lst["listener_filters_timeout"] = "0.3s"
    with Weft(C.bootstrap(listeners=[lst])) as w:
        # a ClientHello in two pieces, 100 ms apart: still routed by its SNI
        ctx = ssl.create_default_context(cafile=pki()["ca.crt"])
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inb, outb, server_hostname="other.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outb.read()
        raw_sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        raw_sock.sendall(hello[:20])
        import time
        time.sleep(0.1)
        raw_sock.sendall(hello[20:])
        data = raw_sock.recv(65536)
        check(data and data[0] == 22, "a ServerHello after a split ClientHello")
        inb.write(data)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = outb.read()
                if out:
                    raw_sock.sendall(out)
                more = raw_sock.recv(65536)
                check(more, "closed during the handshake")
                inb.write(more)
        raw_sock.sendall(outb.read())
        eq(obj.getpeercert()["subject"][0][0][1], "other.test", "the other.test chain's certificate")
        raw_sock.close()
        # silence: closed at listener_filters_timeout
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        eq(s.recv(10), b"", "closed after listener_filters_timeout")
        s.close()
        eq(w.stat("listener.127.0.0.1_%d.downstream_pre_cx_timeout" % port), 1, "downstream_pre_cx_timeout")


# ---------------------------------------------------------------------------------------------
# upstream TLS: origination, server verification, client certificates

UP_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


class HttpsUpstream:
    """A keep-alive HTTPS/1.1 server (Python's http.server + ssl) that records the SNI of each
    handshake and the client certificate's URI SANs; answers 200 "ok <path>"."""

    def __init__(self, name="srv_ec", client_ca=None):
        import http.server
        import threading
        self.snis, self.peers, self.paths, self.handshakes = [], [], [], 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki()[name + ".crt"], pki()[name + ".key"])
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        outer = self

        def on_sni(sock, sni, _ctx):
            outer.snis.append(sni)
            outer.handshakes += 1
        ctx.sni_callback = on_sni

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.paths.append(self.path)
                cert = self.connection.getpeercert()
                if cert:
                    outer.peers.append([v for k, v in cert.get("subjectAltName", ()) if k == "URI"])
                body = ("ok " + self.path).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                return ctx.wrap_socket(sock, server_side=True), addr

            def handle_error(self, *a):
                pass

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _up_tls(sni="backend.example.com", ca="ca", sans=None, client=None):
    ctx = {}
    if ca:
        ctx["validation_context"] = {"trusted_ca": {"filename": pki()[ca + ".crt"]}}
        if sans:
            ctx["validation_context"]["match_typed_subject_alt_names"] = sans
    if client:
        ctx["tls_certificates"] = [cert(client)]
    tc = {"@type": UP_TLS, "common_tls_context": ctx}
    if sni:
        tc["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": tc}


def _origination_config(up_port, ts, log=None):
    return C.simple(up_port, cluster_extra={"transport_socket": ts}, access_log=log)


def test_tls_upstream_origination_sni_verification_and_pooling():
    with HttpsUpstream("srv_ec") as up:
        cfg, port = _origination_config(up.port, _up_tls())
        with Weft(cfg) as w:
            for i in range(3):
                code, body, err = curl_request("http://127.0.0.1:%d/r%d" % (port, i), "--max-time", "5")
                eq((code, body), (200, b"ok /r%d" % i), "request %d over TLS to the upstream (%s)" % (i, err))
            eq(up.snis[0], "backend.example.com", "the configured SNI")
            eq(up.handshakes, 1, "three requests, one pooled TLS connection")
            eq(w.stat("cluster.backend.ssl.handshake"), 1, "cluster.backend.ssl.handshake")


def test_tls_upstream_bad_ca_and_san_mismatch_are_uf():
    log = tmp_path("access.log")
    with HttpsUpstream("srv_ec") as up:
        for ts, stat in [(_up_tls(ca="otherca"), "fail_verify_error"),
                         (_up_tls(sans=[{"san_type": "DNS", "matcher": {"exact": "db.internal"}}]), "fail_verify_san")]:
            cfg, port = _origination_config(up.port, ts, log=[C.file_log(log, text="%RESPONSE_FLAGS% %RESPONSE_CODE%\n")])
            with Weft(cfg) as w:
                code, body, _ = curl_request("http://127.0.0.1:%d/x" % port, "--max-time", "5")
                eq(code, 503, "an upstream that fails verification: 503")
                eq(w.stat("cluster.backend.ssl." + stat), 1, "cluster.backend.ssl." + stat)
                wait_for(lambda: "UF 503" in open(log).read(), what="UF in the access log")
                wait_for(lambda: "TLS handshake with" in w.stderr(), what="the handshake failure in the log")
                check("certificate verify failed" in w.stderr() or "SAN mismatch" in w.stderr(),
                      "the log says why:\n%s", w.stderr()[-800:])
        # SAN matching that fits: served
        cfg, port = _origination_config(up.port, _up_tls(sans=[{"san_type": "DNS", "matcher": {"suffix": ".example.com"}}]))
        with Weft(cfg):
            code, body, _ = curl_request("http://127.0.0.1:%d/y" % port, "--max-time", "5")
            eq((code, body), (200, b"ok /y"), "a matching SAN")


def test_tls_upstream_mtls_origination():
    with HttpsUpstream("srv_ec", client_ca=pki()["ca.crt"]) as up:
        cfg, port = _origination_config(up.port, _up_tls(client="client"))
        with Weft(cfg):
            code, body, err = curl_request("http://127.0.0.1:%d/m" % port, "--max-time", "5")
            eq((code, body), (200, b"ok /m"), "the upstream required and got Weft's client certificate (%s)" % err)
            eq(up.peers, [[SPIFFE]], "the upstream saw the client certificate's SPIFFE identity")
        cfg, port = _origination_config(up.port, _up_tls())
        with Weft(cfg):
            code, _, _ = curl_request("http://127.0.0.1:%d/m" % port, "--max-time", "5")
            eq(code, 503, "without a client certificate the upstream refuses")


def test_tls_certificate_file_change_reloads():
    live = LiveCert("watched")
    live.install("srv_ec")
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, live.socket)
        with Weft(cfg):
            eq(_serial(port), "serial=1002", "the first certificate")
            old = py_client(port)
            _get_ok(old, "/before")
            live.install("srv_new")  # no SIGHUP: the file change alone
            wait_for(lambda: _serial(port) == "serial=2002", what="new handshakes get the new certificate")
            _get_ok(old, "/after")  # the connection opened before the change keeps working
            old.close()


def test_tls_config_dump_redacts_inline_private_keys():
    p = pki()
    with open(p["srv_ec.key"]) as f:
        key = f.read()
    ts = {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": TLS, "common_tls_context": {
        "tls_certificates": [{"certificate_chain": {"filename": p["srv_ec.crt"]}, "private_key": {"inline_string": key}},
                             cert("srv_rsa")]}}}
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, ts)
        with Weft(cfg) as w:
            code, _, err = curl_https(port)
            eq(code, 200, "served with an inline key (%s)" % err)
            dump = w.admin("/config_dump").text
            check("PRIVATE KEY" not in dump, "an inline private key must not appear in /config_dump")
            check("[redacted]" in dump, "the inline key shows as [redacted]")
            check(p["srv_rsa.key"] in dump, "a key's file name is shown")


def test_tls_upstream_new_connections_resume_the_session():
    opts = {"@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": {"max_requests_per_connection": 1},
            "explicit_http_config": {"http_protocol_options": {}}}
    with HttpsUpstream("srv_ec") as up:
        for version, keys in (("TLSv1_3", None), ("TLSv1_2", None), ("TLSv1_3", 0), ("TLSv1_2", 0)):
            ts = _up_tls()
            ts["typed_config"]["common_tls_context"]["tls_params"] = {"tls_maximum_protocol_version": version}
            if keys is not None:
                ts["typed_config"]["max_session_keys"] = keys
            cfg, port = C.simple(up.port, cluster_extra={"transport_socket": ts, "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": opts}})
            with Weft(cfg) as w:
                for i in range(3):
                    code, body, err = curl_request("http://127.0.0.1:%d/s%d" % (port, i), "--max-time", "5")
                    eq((code, body), (200, b"ok /s%d" % i), "request %d (%s)" % (i, err))
                eq(w.stat("cluster.backend.ssl.handshake"), 3, "a new connection (and handshake) per request")
                eq(w.stat("cluster.backend.ssl.session_reused"), 0 if keys == 0 else 2,
                   "%s, max_session_keys %s: the 2nd and 3rd resumed (unless 0)" % (version, keys))


# ---------------------------------------------------------------------------------------------
# several certificates in one DownstreamTlsContext: chosen by SNI, then key type

def _served(port, servername=None, *args):
    """(serial, peer signature type) of the certificate served to openssl s_client, or the
    s_client output when the handshake failed."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", pki()["ca.crt"]]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    p = subprocess.run(cmd + list(args), input=b"", capture_output=True, timeout=10)
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=p.stdout, capture_output=True)
    if x.returncode != 0:
        return out
    kind = "ECDSA" if "Peer signature type: ECDSA" in out else "RSA" if "Peer signature type: RSA" in out else "?"
    return x.stdout.decode().strip().replace("serial=", ""), kind


RSA_ONLY = ("-sigalgs", "rsa_pss_rsae_sha256:RSA+SHA256")


def test_tls_certificate_chosen_by_sni_then_key_type():
    names = ("srv_ec", "a_rsa", "a_ec", "wild_rsa", "cn_only")
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(names=names))
        with Weft(cfg):
            for sni, args, want in [
                ("a.test", (), ("4002", "ECDSA")),          # exact name, ECDSA preferred
                ("a.test", RSA_ONLY, ("4001", "RSA")),      # same name, the client's sigalgs
                ("A.Test", (), ("4002", "ECDSA")),          # names are case-insensitive
                ("x.wild.test", (), ("4003", "RSA")),       # one-label wildcard
                ("a.b.wild.test", (), ("1002", "ECDSA")),   # two labels: no match, the first
                ("cn.test", (), ("4004", "ECDSA")),         # a certificate without SANs: its CN
                ("www.example.com", (), ("1002", "ECDSA")),
                ("nomatch.test", (), ("1002", "ECDSA")),    # no match: the first certificate
                (None, (), ("1002", "ECDSA")),              # no SNI: the first of each key type
                (None, RSA_ONLY, ("4001", "RSA")),
            ]:
                eq(_served(port, sni, *args), want, "certificate for SNI %s %s" % (sni, " ".join(args)))
            # an SNI no certificate matches, from an RSA-only client: Envoy serves the first
            # certificate (ECDSA) all the same, and the handshake fails
            check(isinstance(_served(port, "nomatch.test", *RSA_ONLY), str), "no RSA fallback without full scan")
            # Python's ssl verifies the name: every certificate fits its own name
            for host in ("a.test", "x.wild.test", "localhost"):
                with py_client(port, server_hostname=host) as s:
                    s.sendall(b"GET /%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % host.encode())
                    check(s.recv(100).startswith(b"HTTP/1.1 200"), "served over the certificate for %s", host)
        # full_scan_certs_on_sni_mismatch: an unmatched SNI is treated as no SNI
        cfg, port = https_config(up.port, tls_socket(names=names, full_scan_certs_on_sni_mismatch=True))
        with Weft(cfg):
            eq(_served(port, "nomatch.test", *RSA_ONLY), ("4001", "RSA"), "full scan: the first RSA certificate")
            eq(_served(port, "nomatch.test"), ("1002", "ECDSA"), "full scan: ECDSA first")
            eq(_served(port, "a.test"), ("4002", "ECDSA"), "an SNI match is unchanged")


def test_tls_require_sni():
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(names=("srv_ec", "a_rsa"), require_sni=True))
        with Weft(cfg) as w:
            eq(_served(port, "a.test"), ("4001", "RSA"), "an SNI that a certificate matches")
            eq(_served(port, "localhost"), ("1002", "ECDSA"), "the other certificate's name")
            check(isinstance(_served(port, None), str), "no SNI: the handshake fails")
            check(isinstance(_served(port, "nomatch.test"), str), "an SNI no certificate matches: fails")
            code, _, err = curl_https(port, "/", host="a.test")
            eq(code, 200, "curl sends SNI (%s)" % err)
            eq(w.stat("listener.127.0.0.1_%d.ssl.connection_error" % port), 2, "ssl.connection_error")


# ---------------------------------------------------------------------------------------------
# certificate pinning: verify_certificate_hash and verify_certificate_spki

def _fingerprints(name):
    """(hex SHA-256 of the DER certificate, base64 SHA-256 of its SubjectPublicKeyInfo)."""
    import base64
    with open(pki()[name + ".crt"]) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    pub = subprocess.run(["openssl", "x509", "-in", pki()[name + ".crt"], "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                          check=True).stdout
    return hashlib.sha256(der).hexdigest(), base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _pinned(**validation):
    ts = _up_tls(ca=None)
    ts["typed_config"]["common_tls_context"]["validation_context"] = validation
    return ts


def test_tls_upstream_certificate_pins():
    ec_hash, ec_spki = _fingerprints("srv_ec")
    rsa_hash, rsa_spki = _fingerprints("srv_rsa")
    colons = ":".join(ec_hash[i:i + 2] for i in range(0, 64, 2)).upper()
    with HttpsUpstream("srv_ec") as up:
        for validation, ok in [
            ({"verify_certificate_hash": [rsa_hash, ec_hash]}, True),        # any one matches
            ({"verify_certificate_hash": [colons]}, True),                    # Envoy's colon form
            ({"verify_certificate_spki": [ec_spki]}, True),
            ({"verify_certificate_hash": [rsa_hash], "verify_certificate_spki": [ec_spki]}, True),
            ({"verify_certificate_hash": [rsa_hash]}, False),
            ({"verify_certificate_spki": [rsa_spki]}, False),
            # with a CA, the chain is verified too: the other CA fails despite the pin
            ({"trusted_ca": {"filename": pki()["otherca.crt"]}, "verify_certificate_hash": [ec_hash]}, False),
            ({"trusted_ca": {"filename": pki()["ca.crt"]}, "verify_certificate_hash": [ec_hash]}, True),
        ]:
            cfg, port = _origination_config(up.port, _pinned(**validation))
            with Weft(cfg) as w:
                code, body, _ = curl_request("http://127.0.0.1:%d/p" % port, "--max-time", "5")
                eq(code, 200 if ok else 503, "pins %s" % validation)
                if not ok and "trusted_ca" not in validation:
                    eq(w.stat("cluster.backend.ssl.fail_verify_cert_hash"), 1, "ssl.fail_verify_cert_hash")
                    wait_for(lambda: "hash/SPKI mismatch" in w.stderr(), what="the reason in the log")


def test_tls_client_certificate_pinned_by_spki():
    _, spki = _fingerprints("client")
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(validation={"verify_certificate_spki": [spki]},
                                                     require_client_certificate=True))
        with Weft(cfg) as w:
            p = pki()
            code, _, err = curl_https(port, "/pinned", "--cert", p["client.crt"], "--key", p["client.key"])
            eq(code, 200, "the pinned client certificate (no CA configured) (%s)" % err)
            code, _, _ = curl_https(port, "/other", "--cert", p["client_badsan.crt"], "--key", p["client_badsan.key"])
            check(code != 200, "another certificate from the same CA is refused, got %s", code)
            wait_for(lambda: w.stat("listener.127.0.0.1_%d.ssl.fail_verify_cert_hash" % port) == 1,
                     what="ssl.fail_verify_cert_hash")


def test_tls_pins_must_be_sha256():
    for validation, needle in [({"verify_certificate_hash": ["abcd"]}, "verify_certificate_hash"),
                               ({"verify_certificate_spki": ["bm90IGEgaGFzaA=="]}, "verify_certificate_spki"),
                               ({"match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "x"}}]},
                                "trusted_ca")]:
        cfg, _ = https_config(free_port(), tls_socket(validation=validation))
        path = write_file(tmp_path("weft.yaml"), str(cfg))
        p = run_weft(["validate", path])
        check(p.returncode != 0 and needle in p.stderr and "weft.yaml:" in p.stderr,
              "refused with %r and a position:\n%s", needle, p.stderr)


# ---------------------------------------------------------------------------------------------
# fields of the TLS contexts that Weft does not implement: refused by name and position

SDS = {"name": "server-cert", "sds_config": {"ads": {}, "resource_api_version": "V3"}}
EXT = {"name": "x", "typed_config": {"@type": TLS}}


def test_tls_unimplemented_fields_are_refused_with_their_position():
    d = os.path.dirname(tmp_path("x"))
    down_ts = lambda **kw: tls_socket(**kw)  # noqa: E731
    cases = [
        # (where, field, value)
        ("down", "ocsp_staple_policy", "MUST_STAPLE"),
        ("down", "session_ticket_keys_sds_secret_config", SDS),
        ("common", "tls_certificate_sds_secret_configs", [SDS]),
        ("common", "validation_context_sds_secret_config", SDS),
        ("common", "combined_validation_context", {"default_validation_context": {}, "validation_context_sds_secret_config": SDS}),
        ("common", "tls_certificate_provider_instance", {"instance_name": "x"}),
        ("common", "custom_tls_certificate_selector", EXT),
        ("common", "custom_handshaker", EXT),
        ("common", "key_log", {"path": os.path.join(d, "keys.log")}),
        ("common", "read_ahead_buffer_size", 16384),
        ("params", "compliance_policies", ["FIPS_202205"]),
        ("cert", "password", {"inline_string": "secret"}),
        ("cert", "ocsp_staple", {"inline_bytes": "AAAA"}),
        ("cert", "pkcs12", {"filename": os.path.join(d, "x.p12")}),
        ("cert", "watched_directory", {"path": d}),
        ("cert", "private_key_provider", {"provider_name": "cryptomb"}),
        ("cert", "signed_certificate_timestamp", [{"inline_bytes": "AAAA"}]),
        ("valid", "crl", {"filename": os.path.join(d, "x.crl")}),
        ("valid", "only_verify_leaf_cert_crl", True),
        ("valid", "allow_expired_certificate", True),
        ("valid", "trust_chain_verification", "ACCEPT_UNTRUSTED"),
        ("valid", "ca_certificate_provider_instance", {"instance_name": "x"}),
        ("valid", "system_root_certs", {}),
        ("valid", "watched_directory", {"path": d}),
        ("valid", "match_subject_alt_names", [{"exact": "x"}]),
        ("valid", "require_signed_certificate_timestamp", True),
        ("valid", "custom_validator_config", EXT),
        ("up", "auto_host_sni", True),
        ("up", "auto_sni_san_validation", True),
        ("up", "allow_renegotiation", True),
    ]
    for where, field, value in cases:
        if where == "up":
            ts = _up_tls()
            ts["typed_config"][field] = value
            cfg, _ = _origination_config(free_port(), ts)
        else:
            ts = down_ts(validation={"trusted_ca": {"filename": pki()["ca.crt"]}})
            tc = ts["typed_config"]
            target = {"down": tc, "common": tc["common_tls_context"],
                      "params": tc["common_tls_context"].setdefault("tls_params", {}),
                      "cert": tc["common_tls_context"]["tls_certificates"][0],
                      "valid": tc["common_tls_context"]["validation_context"]}[where]
            target[field] = value
            if field.startswith(("validation_context_", "combined_")):
                del tc["common_tls_context"]["validation_context"]  # one of them only
            cfg, _ = https_config(free_port(), ts)
        text = str(cfg)
        path = write_file(tmp_path("weft.yaml"), text)
        p = run_weft(["validate", path])
        # the position is the field's own line (and its column)
        line = next(i + 1 for i, l in enumerate(text.splitlines()) if l.lstrip(" -").startswith(field + ":"))
        check(p.returncode != 0 and "weft.yaml:%d:" % line in p.stderr and field in p.stderr
              and "not supported" in p.stderr,
              "%s: refused with its position (line %d) and name:\n%s", field, line, p.stderr)


# ---------------------------------------------------------------------------------------------
# tcp_proxy to a TLS cluster: Weft originates TLS for plain (or TLS-terminated) clients

class TlsEchoHalfClose(TlsEcho):
    """A TLS echo server that, once the client has ended (close_notify), still sends "bye"
    before its own close_notify: half-close must pass both ways."""

    def __init__(self, name="srv_ec"):
        super().__init__(name)
        self.ended = 0
        self.received = 0

    def _handle(self, s, _srv):
        with self.ctx.wrap_socket(s, server_side=True) as t:
            while True:
                data = t.recv(65536)
                if not data:
                    break
                self.received += len(data)
                t.sendall(data)
            self.ended += 1
            t.sendall(b"bye")
            t.unwrap()


def _tcp_tls_config(up_port, up_ts, port=None, down_ts=None, log=None):
    port = port or free_port()
    lst = C.tcp_listener(port, "tls_up", **({"access_log": log} if log else {}))
    if down_ts:
        lst["filter_chains"][0]["transport_socket"] = down_ts
    return C.bootstrap(listeners=[lst], clusters=[C.cluster("tls_up", [up_port], transport_socket=up_ts)]), port


def _echo_both_ways(s, payload, timeout=10):
    """Send payload while reading its echo, in one thread: a non-blocking loop, since neither
    side may block and an SSL socket must not be read and written from two threads at once."""
    import select
    s.setblocking(False)
    sent, got, deadline = 0, bytearray(), time.monotonic() + timeout
    while len(got) < len(payload) and time.monotonic() < deadline:
        want_write = sent < len(payload)
        r, w, _ = select.select([s], [s] if want_write else [], [], 0.5)
        if w or (want_write and not r):
            try:
                sent += s.send(payload[sent:sent + 16384])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
        while True:  # what the SSL layer has buffered is not seen by select: drain it
            try:
                chunk = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            check(chunk, "connection closed after %d of %d bytes", len(got), len(payload))
            got += chunk
    s.setblocking(True)
    return bytes(got)


def test_tls_tcp_proxy_originates_tls():
    with TlsEchoHalfClose() as up:
        cfg, port = _tcp_tls_config(up.port, _up_tls(sni="db.example.com"))
        with Weft(cfg) as w:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            payload = os.urandom(1024 * 1024)
            eq(_echo_both_ways(s, payload) == payload, True, "1 MiB echoed intact through TLS origination")
            eq(up.received, len(payload), "the upstream got the bytes over TLS")
            eq(up.snis, ["db.example.com"], "the configured SNI")
            # half-close: the client's EOF reaches the upstream as close_notify; the upstream
            # can still answer, and its close_notify reaches the client as EOF
            s.shutdown(socket.SHUT_WR)
            got = recv_all(s)
            eq(got, b"bye", "the upstream's last words after the client's half-close, then EOF")
            eq(up.ended, 1, "the upstream saw the client's end")
            s.close()
            eq(w.stat("cluster.tls_up.ssl.handshake"), 1, "cluster.tls_up.ssl.handshake")
            wait_for(lambda: w.stat("tcp.tcp.downstream_cx_tx_bytes_total") == len(payload) + 3,
                     what="tx bytes counted")


def test_tls_tcp_proxy_tls_on_both_sides():
    with TlsEchoHalfClose("srv_rsa") as up:
        cfg, port = _tcp_tls_config(up.port, _up_tls(sni="backend.example.com"), down_ts=tls_socket())
        with Weft(cfg) as w:
            with py_client(port) as s:
                eq(s.getpeercert()["serialNumber"], "1002", "Weft's own certificate downstream")
                payload = os.urandom(300000)
                eq(_echo_both_ways(s, payload) == payload, True, "bytes re-encrypted both ways intact")
            eq(w.stat("listener.127.0.0.1_%d.ssl.handshake" % port), 1, "downstream handshake")
            eq(w.stat("cluster.tls_up.ssl.handshake"), 1, "upstream handshake")


def test_tls_tcp_proxy_upstream_verification_failure_closes():
    log = tmp_path("access.log")
    with TlsEchoHalfClose() as up:
        cfg, port = _tcp_tls_config(up.port, _up_tls(ca="otherca"),
                                    log=[C.file_log(log, text="%RESPONSE_FLAGS% %UPSTREAM_HOST%\n")])
        with Weft(cfg) as w:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"secret")
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b""
            eq(got, b"", "the client's connection is closed")
            s.close()
            eq(up.received, 0, "nothing reached an upstream that failed verification")
            eq(w.stat("cluster.tls_up.ssl.fail_verify_error"), 1, "cluster.tls_up.ssl.fail_verify_error")
            eq(w.stat("cluster.tls_up.upstream_cx_connect_fail"), 1, "upstream_cx_connect_fail")
            wait_for(lambda: open(log).read().startswith("UF 127.0.0.1:%d" % up.port), what="UF in the access log")
            wait_for(lambda: "TLS handshake with" in w.stderr(), what="the reason in the log")


# ---------------------------------------------------------------------------------------------
# active health checks of a TLS cluster go over TLS (with the cluster's settings)

def test_tls_health_checks_use_the_cluster_tls():
    from test_health_check import _cfg, _hc, _wait_flags
    # good: a TLS-only server the CA vouches for; bad: one the CA does not (handshakes fail)
    with HttpsUpstream("srv_ec") as good, HttpsUpstream("client_otherca") as bad:
        for hc in (_hc(), _hc(tcp_health_check={})):
            cluster = C.cluster("backend", [good.port, bad.port], health_checks=[hc],
                                transport_socket=_up_tls(sni="backend.example.com"),
                                common_lb_config={"healthy_panic_threshold": {"value": 0}})
            cfg, port = _cfg([cluster])
            with Weft(cfg, concurrency=1) as w:
                _wait_flags(w, {good.port: "healthy", bad.port: "/failed_active_hc"})
                check(w.stat("cluster.backend.ssl.fail_verify_error") >= 1, "the bad host's handshakes fail")
                for i in range(3):
                    code, body, err = curl_request("http://127.0.0.1:%d/r%d" % (port, i), "--max-time", "5")
                    eq((code, body), (200, b"ok /r%d" % i), "requests go to the healthy host (%s)" % err)
                if "http_health_check" in hc:
                    wait_for(lambda: "/healthz" in good.paths, what="the check's request over TLS")
                check("backend.example.com" in good.snis, "the checks send the cluster's SNI")
                check(not bad.paths, "nothing was asked of the host that failed verification")
    # transport_socket_match_criteria (transport_socket_matches) is refused, with its position
    hc = _hc(transport_socket_match_criteria={"tls": "off"})
    cfg, _ = _cfg([C.cluster("backend", [free_port()], health_checks=[hc], transport_socket=_up_tls())])
    p = run_weft(["validate", write_file(tmp_path("weft.yaml"), str(cfg))])
    check(p.returncode != 0 and "transport_socket_match_criteria" in p.stderr and "weft.yaml:" in p.stderr,
          "transport_socket_match_criteria refused with its position:\n%s", p.stderr)
