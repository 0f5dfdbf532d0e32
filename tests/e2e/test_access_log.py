"""Access logs: Envoy's default format, json_format (typed values), text_format_source, the file
and stdout loggers. Logs are read after the proxy exited (SIGTERM flushes them)."""

import datetime
import json
import re

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, read_lines, request, tmp_path

DEFAULT_RE = re.compile(
    r'^\[(?P<start>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\] '
    r'"(?P<method>\S+) (?P<path>\S+) (?P<proto>\S+)" '
    r'(?P<code>\d+) (?P<flags>\S+) (?P<rx>\d+) (?P<tx>\d+) (?P<dur>\d+) (?P<ust>\d+|-) '
    r'"(?P<xff>[^"]*)" "(?P<ua>[^"]*)" "(?P<rid>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream>[^"]*)"$')


def _cfg(up, access_log, routes=None, port=None):
    port = port or free_port()
    routes = routes or [C.route(C.prefix("/"), cluster="backend")]
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], routes)], access_log=access_log)],
                      clusters=[C.cluster("backend", [up.port])])
    return cfg, port


def test_default_format():
    log = tmp_path("access.log")
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.file_log(log)])
        with Weft(cfg):
            r = request(port, "/bytes/1234?y=1", host="al.test",
                        headers={"User-Agent": "e2e-agent/1.0", "x-request-id": "req-abc-123"})
            eq(r.status, 200, "status")
    lines = read_lines(log)
    eq(len(lines), 1, "one access log line per request (got %r)" % lines)
    m = DEFAULT_RE.match(lines[0])
    check(m, "line does not match Envoy's default format:\n%s", lines[0])
    g = m.groupdict()
    want = {"method": "GET", "path": "/bytes/1234?y=1", "proto": "HTTP/1.1", "code": "200", "flags": "-",
            "rx": "0", "tx": "1234", "xff": "-", "ua": "e2e-agent/1.0", "rid": "req-abc-123",
            "authority": "al.test", "upstream": "127.0.0.1:%d" % up.port}
    got = {k: g[k] for k in want}
    eq(got, want, "default format fields")
    start = datetime.datetime.strptime(g["start"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    age = abs((datetime.datetime.now(datetime.timezone.utc) - start).total_seconds())
    check(age < 60, "START_TIME %s is not now (UTC)", g["start"])


def test_default_format_original_path_after_rewrite():
    log = tmp_path("access.log")
    with HttpUpstream("up") as up:
        rt = [C.route(C.prefix("/old/"), cluster="backend", action={"prefix_rewrite": "/new/"})]
        cfg, port = _cfg(up, [C.file_log(log)], routes=rt)
        with Weft(cfg):
            eq(request(port, "/old/x").status, 200, "status")
            eq(up.last.path, "/new/x", "upstream path")
    m = DEFAULT_RE.match(read_lines(log)[0])
    check(m, "default format line: %r", read_lines(log))
    eq(m.group("path"), "/old/x", "the default format logs the original path (X-ENVOY-ORIGINAL-PATH?:PATH)")


def test_json_format_fields_and_types():
    log = tmp_path("access.json")
    fmt = {"code": "%RESPONSE_CODE%", "method": "%REQ(:METHOD)%", "path": "%REQ(:PATH)%",
           "proto": "%PROTOCOL%", "rx": "%BYTES_RECEIVED%", "tx": "%BYTES_SENT%", "dur": "%DURATION%",
           "flags": "%RESPONSE_FLAGS%", "ua": "%REQ(USER-AGENT)%", "missing": "%REQ(X-NOT-THERE)%",
           "const": "literal", "mixed": "code=%RESPONSE_CODE%", "authority": "%REQ(:AUTHORITY)%",
           "upstream": "%UPSTREAM_HOST%", "start": "%START_TIME%", "resp_hdr": "%RESP(X-UPSTREAM)%"}
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.file_log(log, json_format=fmt)])
        with Weft(cfg):
            r = request(port, "/json?a=b", method="POST", body=b"hello", host="json.test",
                        headers={"User-Agent": "e2e"})
            eq(r.status, 200, "status")
            tx = len(r.body)
    lines = read_lines(log)
    eq(len(lines), 1, "one line per request")
    e = json.loads(lines[0])
    eq(set(e), set(fmt), "keys of the JSON log entry")
    want = {"code": 200, "method": "POST", "path": "/json?a=b", "proto": "HTTP/1.1", "rx": 5, "tx": tx,
            "flags": "-", "ua": "e2e", "missing": None, "const": "literal", "mixed": "code=200",
            "authority": "json.test", "upstream": "127.0.0.1:%d" % up.port, "resp_hdr": "up"}
    eq({k: e[k] for k in want}, want, "JSON log values (numbers as numbers, missing as null)")
    check(isinstance(e["dur"], int) and e["dur"] >= 0, "DURATION is an integer: %r", e["dur"])
    check(isinstance(e["start"], str) and e["start"].startswith("20"), "START_TIME is a timestamp string: %r", e["start"])


def test_json_format_local_replies():
    log = tmp_path("access.json")
    with HttpUpstream("up") as up:
        routes = [C.route(C.path("/direct"), direct=(200, "d")),
                  C.route(C.prefix("/up"), cluster="backend")]
        cfg, port = _cfg(up, [C.file_log(log, json_format=C.FLAGS_JSON)], routes=routes)
        with Weft(cfg):
            eq(request(port, "/direct").status, 200, "direct response")
            eq(request(port, "/nowhere").status, 404, "no route")
            eq(request(port, "/up").status, 200, "proxied")
    es = {e["path"]: e for e in map(json.loads, read_lines(log))}
    eq(set(es), {"/direct", "/nowhere", "/up"}, "logged paths")
    eq((es["/direct"]["code"], es["/direct"]["flags"], es["/direct"]["upstream"]), (200, "-", None),
       "direct response: no flags, no upstream host (null)")
    eq((es["/nowhere"]["code"], es["/nowhere"]["flags"]), (404, "NR"), "no route")
    eq((es["/up"]["code"], es["/up"]["upstream"]), (200, "127.0.0.1:%d" % up.port), "proxied request")


def test_text_format_source():
    log = tmp_path("access.txt")
    with HttpUpstream("up") as up:
        fmt = "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% [%REQ(X-MISSING)%]\n"
        cfg, port = _cfg(up, [C.file_log(log, text=fmt)])
        with Weft(cfg):
            request(port, "/t1")
            request(port, "/status/503")
    eq(read_lines(log), ["GET /t1 HTTP/1.1 200 - [-]", "GET /status/503 HTTP/1.1 503 - [-]"],
       "custom text format lines (missing values are '-')")


def test_stdout_logger():
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.stdout_log(text="STDOUT %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%\n")])
        with Weft(cfg) as w:
            eq(request(port, "/stdout-test").status, 200, "status")
        lines = [l for l in w.stdout().splitlines() if l.startswith("STDOUT ")]
        eq(lines, ["STDOUT GET /stdout-test 200"], "access log on stdout")


def test_stdout_logger_json():
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.stdout_log(json_format={"p": "%REQ(:PATH)%", "c": "%RESPONSE_CODE%"})])
        with Weft(cfg) as w:
            request(port, "/j")
        es = []
        for l in w.stdout().splitlines():
            try:
                es.append(json.loads(l))
            except ValueError:
                pass
        check({"p": "/j", "c": 200} in es, "JSON access log line on stdout, got %r", w.stdout()[-500:])


def test_two_loggers():
    log = tmp_path("access.log")
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.file_log(log, text="FILE %REQ(:PATH)%\n"),
                              C.stdout_log(text="OUT %REQ(:PATH)%\n")])
        with Weft(cfg) as w:
            for i in range(3):
                request(port, "/two/%d" % i)
        eq(read_lines(log), ["FILE /two/0", "FILE /two/1", "FILE /two/2"], "file logger")
        eq([l for l in w.stdout().splitlines() if l.startswith("OUT ")], ["OUT /two/0", "OUT /two/1", "OUT /two/2"],
           "stdout logger")


def test_duration_and_service_time():
    log = tmp_path("access.log")
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.file_log(log)])
        with Weft(cfg):
            r = request(port, "/delay/300")
            eq(r.status, 200, "status")
            st = r.header("x-envoy-upstream-service-time")
    m = DEFAULT_RE.match(read_lines(log)[0])
    check(m, "default format line: %r", read_lines(log))
    dur = int(m.group("dur"))
    check(300 <= dur < 2000, "DURATION %d ms for a 300 ms upstream", dur)
    if m.group("ust") != "-":
        check(300 <= int(m.group("ust")) <= dur, "upstream service time %s vs duration %d", m.group("ust"), dur)
    check(st is None or st == m.group("ust"), "x-envoy-upstream-service-time %r vs log %r", st, m.group("ust"))


def test_downstream_disconnect_flag_DC():
    import socket
    import time
    log = tmp_path("access.json")
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, [C.file_log(log, json_format=C.FLAGS_JSON)])
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /delay/1000 HTTP/1.1\r\nHost: h\r\n\r\n")
            up.wait_requests(1)
            s.close()                                     # client gives up before the response
            time.sleep(1.3)
    es = [json.loads(l) for l in read_lines(log)]
    eq(len(es), 1, "one log entry for the abandoned request")
    check("DC" in str(es[0]["flags"]).split(","), "flags should include DC (downstream disconnect): %s", es[0])
    eq(es[0]["code"], 0, "Envoy logs response code 0 when no response was sent")
