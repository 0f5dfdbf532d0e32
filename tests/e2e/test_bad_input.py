"""Malformed HTTP/1 requests: each gets 400 (431 for size), the proxy closes the connection,
and not one byte of it reaches the upstream.

Statuses follow the issue and Envoy: 400 for framing errors; 431 for a header section over
max_request_headers_kb or over 100 headers; 414 or 431 for an over-long request line; and for a
Transfer-Encoding the proxy does not implement (gzip, identity, ...), Envoy answers 501, which is
accepted next to 400.
"""

import time

import configs as C
from harness import HttpUpstream, RawConn, Weft, check, eq, raw

TE_STATUSES = (400, 501)


def _rejected(data, statuses=(400,), hcm_extra=None, after_valid=False, timeout=3.0):
    """Send data on a fresh connection and check: status in statuses, connection closed by the
    proxy, upstream saw nothing (or only the one valid request sent first)."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, **(hcm_extra or {}))
        with Weft(cfg):
            if after_valid:
                with RawConn(port) as c:
                    eq(c.get("/valid").status, 200, "valid request before the bad one")
                    c.send(data)
                    r = c.read_until_close(timeout)
                    res_closed = True
            else:
                r = raw(port, data, timeout=timeout)
                res_closed = r.closed
            first = bytes(r).split(b"\r\n", 1)[0]
            m = first.split(b" ")
            status = int(m[1]) if len(m) > 1 and m[0].startswith(b"HTTP/1.") and m[1].isdigit() else None
            check(status in statuses, "expected status %s, got %r (response head: %r)",
                  "/".join(map(str, statuses)), status, bytes(r)[:200])
            check(res_closed, "the proxy must close the connection after a %s", status)
            time.sleep(0.2)
            want = 1 if after_valid else 0
            extra = up.requests[want:]
            check(not extra, "the upstream must receive nothing of a bad request; it received %s",
                  ["%s %s (head%s, %d body bytes)" % (q.method, q.target, " and complete body" if q.complete
                                                       else " only", q.body_len) for q in extra])


def _req(head_lines, body=b""):
    return ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1") + body


def test_control_valid_request_is_forwarded():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            r = raw(port, _req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Connection: close"], b"hello"))
            eq(r.status, 200, "valid request")
            eq(up.last.body, b"hello", "body")


# -- Content-Length / Transfer-Encoding framing --

def test_cl_and_te():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Transfer-Encoding: chunked"],
                   b"0\r\n\r\n"))


def test_te_and_cl_reversed():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "Content-Length: 5"],
                   b"0\r\n\r\n"))


def test_duplicate_cl_same_value():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Content-Length: 5"], b"hello"))


def test_duplicate_cl_differing():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Content-Length: 6"], b"hello!"))


def test_cl_list_differing():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5, 6"], b"hello!"))


def test_cl_plus_sign():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: +5"], b"hello"))


def test_cl_negative():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: -1"], b"hello"))


def test_cl_non_digit():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5a"], b"hello"))


def test_cl_hex():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 0x5"], b"hello"))


def test_cl_empty():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: "], b"hello"))


def test_cl_overflow():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 99999999999999999999999"], b"hello"),
              statuses=(400, 413))


def test_te_gzip_only():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: gzip"], b"hello"), TE_STATUSES)


def test_te_chunked_not_final():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked, gzip"], b"0\r\n\r\n"),
              TE_STATUSES)


def test_te_chunked_then_gzip_header_lines():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip"],
                   b"0\r\n\r\n"), TE_STATUSES)


def test_te_identity():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: identity"], b"hello"), TE_STATUSES)


def test_te_chunked_twice():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n"),
              TE_STATUSES)


def test_te_unknown_token():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: xchunked"], b"0\r\n\r\n"), TE_STATUSES)


# -- header syntax --

def test_space_before_colon():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo : bar"]))


def test_space_before_colon_content_length():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length : 5"], b"hello"))


def test_tab_before_colon():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo\t: bar"]))


def test_obs_fold():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo: a", "  b"]))


def test_obs_fold_tab():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo: a", "\tb"]))


def test_bare_cr_in_value():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo: a\rb"]))


def test_bare_cr_line_ending():
    _rejected(b"GET / HTTP/1.1\rHost: h\r\n\r\n")


def test_bare_lf_line_endings():
    _rejected(b"GET / HTTP/1.1\nHost: h\n\n")


def test_bare_lf_mixed():
    _rejected(b"GET / HTTP/1.1\r\nHost: h\nX-Foo: a\r\n\r\n")


def test_nul_in_value():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo: a\x00b"]))


def test_control_char_in_value():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo: a\x01b"]))


def test_del_in_value():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Foo: a\x7fb"]))


def test_control_char_in_name():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-F\x01oo: bar"]))


def test_nul_in_name():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-F\x00oo: bar"]))


def test_space_in_name():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X Foo: bar"]))


def test_empty_header_name():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", ": bar"]))


def test_header_without_colon():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-No-Colon"]))


# -- request line --

def test_request_line_double_space():
    _rejected(_req(["GET  / HTTP/1.1", "Host: h"]))


def test_request_line_bad_version():
    _rejected(_req(["GET / HTTX/1.1", "Host: h"]))


def test_request_line_extra_token():
    _rejected(_req(["GET / HTTP/1.1 extra", "Host: h"]))


def test_request_line_bad_method_char():
    _rejected(_req(["G(T / HTTP/1.1", "Host: h"]))


def test_request_target_with_space():
    _rejected(_req(["GET /a b HTTP/1.1", "Host: h"]))


def test_request_line_too_long():
    _rejected(_req(["GET /" + "a" * (70 * 1024) + " HTTP/1.1", "Host: h"]), statuses=(414, 431))


# -- chunked bodies --

def _chunked(body):
    return _req(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"], body)


def test_chunk_size_non_hex():
    _rejected(_chunked(b"zz\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_plus():
    _rejected(_chunked(b"+5\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_minus():
    _rejected(_chunked(b"-5\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_0x():
    _rejected(_chunked(b"0x5\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_overflow():
    _rejected(_chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_empty():
    _rejected(_chunked(b"\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_space():
    _rejected(_chunked(b"5 5\r\nhello\r\n0\r\n\r\n"))


def test_chunk_data_longer_than_size():
    _rejected(_chunked(b"5\r\nhelloXX\r\n0\r\n\r\n"))


def test_chunk_missing_crlf_after_data():
    _rejected(_chunked(b"5\r\nhello0\r\n\r\n"))


# -- Host --

def test_missing_host_http11():
    _rejected(_req(["GET / HTTP/1.1", "X-Foo: bar"]))


def test_two_hosts():
    _rejected(_req(["GET / HTTP/1.1", "Host: a.test", "Host: b.test"]))


def test_two_identical_hosts():
    _rejected(_req(["GET / HTTP/1.1", "Host: a.test", "Host: a.test"]))


def test_absolute_form_host_mismatch():
    _rejected(_req(["GET http://a.test/x HTTP/1.1", "Host: b.test"]))


# -- limits --

def test_headers_over_default_60k_is_431():
    big = "x" * (31 * 1024)
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Big-1: " + big, "X-Big-2: " + big]), statuses=(431,))


def test_headers_under_default_limit_ok():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            big = "y" * (20 * 1024)
            r = raw(port, _req(["GET / HTTP/1.1", "Host: h", "Connection: close",
                                "X-Big-1: " + big, "X-Big-2: " + big]), timeout=5)
            eq(r.status, 200, "40 KiB of headers is under the 60 KiB default")
            eq(up.last.header("x-big-2"), big, "big header forwarded intact")


def test_max_request_headers_kb_configured():
    _rejected(_req(["GET / HTTP/1.1", "Host: h", "X-Big: " + "z" * 6000]), statuses=(431,),
              hcm_extra={"max_request_headers_kb": 4})
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, max_request_headers_kb=4)
        with Weft(cfg):
            r = raw(port, _req(["GET / HTTP/1.1", "Host: h", "Connection: close", "X-Small: " + "z" * 2000]))
            eq(r.status, 200, "2 KiB header under a 4 KiB limit")


def test_101_headers_is_431():
    _rejected(_req(["GET / HTTP/1.1", "Host: h"] + ["X-H%d: v" % i for i in range(100)]), statuses=(431,))


def test_100_headers_ok():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            r = raw(port, _req(["GET / HTTP/1.1", "Host: h", "Connection: close"] +
                               ["X-H%d: v" % i for i in range(98)]))
            eq(r.status, 200, "100 request headers is at the default limit")


# -- smuggling shapes after a valid request, slow senders --

def test_bad_request_after_valid_keepalive_request():
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Transfer-Encoding: chunked"],
                   b"0\r\n\r\n"), after_valid=True)


def test_smuggled_second_request_not_forwarded():
    """CL+TE with a second request hidden in the body: neither part may reach the upstream."""
    hidden = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
    body = b"0\r\n\r\n" + hidden
    _rejected(_req(["POST / HTTP/1.1", "Host: h", "Content-Length: %d" % len(body),
                    "Transfer-Encoding: chunked"], body))


def test_request_headers_timeout_cuts_slow_sender():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_headers_timeout="1s")
        with Weft(cfg):
            t0 = time.monotonic()
            r = raw(port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ", timeout=5)
            dt = time.monotonic() - t0
            check(r.closed, "the proxy should close a connection whose headers never finish")
            check(0.8 <= dt <= 3.5, "closed after %.2fs with request_headers_timeout 1s", dt)
            check(r.status == 408 and b"request header timeout" in bytes(r),
                  "Envoy answers 408 'request header timeout', got %r", bytes(r)[:120])
            eq(len(up.requests), 0, "nothing forwarded")


def test_request_headers_timeout_not_reset_by_trickle():
    """Bytes trickling in do not restart the timer: it runs from the first byte of the head."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_headers_timeout="1s")
        with Weft(cfg):
            t0 = time.monotonic()
            chunks = [b"GET / HTTP/1.1\r\n"] + [b"X-T%d: v\r\n" % i for i in range(12)]
            r = raw(port, None, chunks=chunks, gap=0.25, timeout=5)
            dt = time.monotonic() - t0
            check(r.closed and dt <= 3.5, "slow trickle should be cut ~1s after it began (closed=%s after %.2fs)",
                  r.closed, dt)
            eq(len(up.requests), 0, "nothing forwarded")
