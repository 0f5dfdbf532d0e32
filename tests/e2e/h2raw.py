"""A raw HTTP/2 client for end-to-end tests, stdlib only: frames (RFC 9113) and a minimal HPACK
(RFC 7541). Real clients (curl, nghttp, h2load) drive the normal flows; this one exists to send
what real clients never send (floods, resets, bombs) and to see every frame the proxy answers.

    frame(type, flags, stream, payload)       bytes of one frame; also headers_frame(),
                                              data_frame(), settings_frame(), ping_frame(),
                                              rst_stream_frame(), goaway_frame(),
                                              window_update_frame(), priority_frame(),
                                              continuation_frame()
    Encoder / Decoder                         HPACK: the encoder writes indexed fields and
                                              literals (with or without incremental indexing,
                                              never Huffman); the decoder reads all of it,
                                              Huffman included
    H2Conn(port)                              a client connection (plain, or TLS with ALPN h2):
                                              sends the preface and SETTINGS, answers SETTINGS
                                              and PING, keeps flow control (windows open as it
                                              reads unless auto_window=False), collects each
                                              stream's head, body, trailers and reset code, and
                                              the GOAWAYs

`python3 h2raw.py` runs the self-test (RFC 7541 Appendix C vectors, round trips); so does
test_h2.test_h2_client_selftest.
"""

import select
import socket
import ssl
import struct
import time

LOCAL = "127.0.0.1"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
               SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
               WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}

# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)
SETTING_NAMES = {HEADER_TABLE_SIZE: "HEADER_TABLE_SIZE", ENABLE_PUSH: "ENABLE_PUSH",
                 MAX_CONCURRENT_STREAMS: "MAX_CONCURRENT_STREAMS", INITIAL_WINDOW_SIZE: "INITIAL_WINDOW_SIZE",
                 MAX_FRAME_SIZE: "MAX_FRAME_SIZE", MAX_HEADER_LIST_SIZE: "MAX_HEADER_LIST_SIZE"}

# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM, \
    INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
ERROR_NAMES = dict(enumerate(["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
                              "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
                              "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
                              "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]))

DEFAULT_WINDOW = 65535
MAX_WINDOW = 2 ** 31 - 1


def error_name(code):
    return ERROR_NAMES.get(code, "0x%x" % code)


# ---------------------------------------------------------------------------------------------
# frames

def frame(ftype, flags, stream, payload=b""):
    """One frame: 9-byte header (24-bit length, type, flags, 31-bit stream id), then payload."""
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream & 0x7FFFFFFF) + payload


def settings_frame(settings=None, ack=False):
    """settings: {id: value} or [(id, value)]."""
    items = settings.items() if isinstance(settings, dict) else (settings or [])
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in items))


def headers_frame(stream, block, end_stream=False, end_headers=True, priority=None, pad=None):
    """priority: (depends_on, weight 1..256, exclusive). pad: padding length."""
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    payload = block
    if priority is not None:
        dep, weight, excl = priority
        payload = struct.pack(">IB", (dep & 0x7FFFFFFF) | (0x80000000 if excl else 0), weight - 1) + payload
        flags |= PRIORITY_FLAG
    if pad is not None:
        payload = bytes([pad]) + payload + b"\0" * pad
        flags |= PADDED
    return frame(HEADERS, flags, stream, payload)


def continuation_frame(stream, block, end_headers=False):
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream, block)


def data_frame(stream, data=b"", end_stream=False, pad=None):
    flags = END_STREAM if end_stream else 0
    payload = data
    if pad is not None:
        payload = bytes([pad]) + data + b"\0" * pad
        flags |= PADDED
    return frame(DATA, flags, stream, payload)


def rst_stream_frame(stream, code=CANCEL):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping_frame(opaque=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def goaway_frame(last_stream, code=NO_ERROR, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream & 0x7FFFFFFF, code) + debug)


def window_update_frame(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment & 0x7FFFFFFF))


def priority_frame(stream, depends_on=0, weight=16, exclusive=False):
    return frame(PRIORITY, 0, stream,
                 struct.pack(">IB", (depends_on & 0x7FFFFFFF) | (0x80000000 if exclusive else 0), weight - 1))


class Frame:
    """A frame read from the peer."""

    def __init__(self, ftype, flags, stream, payload):
        self.type = ftype
        self.flags = flags
        self.stream = stream
        self.payload = payload

    @property
    def name(self):
        return FRAME_NAMES.get(self.type, "UNKNOWN(%d)" % self.type)

    def has(self, flag):
        return bool(self.flags & flag)

    # typed views
    def settings(self):
        p = self.payload
        return [struct.unpack(">HI", p[i:i + 6]) for i in range(0, len(p) - len(p) % 6, 6)]

    def error_code(self):
        """RST_STREAM's code, or GOAWAY's."""
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    def last_stream(self):
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    def increment(self):
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    def __repr__(self):
        extra = ""
        if self.type in (RST_STREAM, GOAWAY):
            extra = " %s" % error_name(self.error_code())
            if self.type == GOAWAY:
                extra += " last_stream=%d debug=%r" % (self.last_stream(), self.payload[8:60])
        elif self.type == WINDOW_UPDATE:
            extra = " +%d" % self.increment()
        elif self.type == SETTINGS and not self.has(ACK):
            extra = " %s" % ", ".join("%s=%d" % (SETTING_NAMES.get(k, k), v) for k, v in self.settings())
        return "<%s stream=%d flags=0x%x len=%d%s>" % (self.name, self.stream, self.flags, len(self.payload), extra)


def strip_padding(f):
    """The payload of a DATA or HEADERS frame without padding and priority fields."""
    p = f.payload
    if f.flags & PADDED:
        pad = p[0]
        p = p[1:len(p) - pad]
    if f.type == HEADERS and f.flags & PRIORITY_FLAG:
        p = p[5:]
    return p


# ---------------------------------------------------------------------------------------------
# HPACK (RFC 7541)

STATIC_TABLE = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
    ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
    ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
    ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]
STATIC_LEN = len(STATIC_TABLE)       # 61: dynamic entries start at 62

# The Huffman code of Appendix B is canonical: codes are handed out in order of length, and
# within a length in order of symbol. So the lengths are the whole table. Symbols by code
# length (256 is EOS):
_HUFFMAN_BY_LENGTH = {
    5: list(b"012aceiost"),
    6: list(b" %-./3456789=A_bdfghlmnpru"),
    7: list(b":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz"),
    8: list(b"&*,;XZ"),
    10: list(b"!\"()?"),
    11: list(b"'+|"),
    12: list(b"#>"),
    13: [0] + list(b"$@[]~"),
    14: list(b"^}"),
    15: list(b"<`{"),
    19: [92, 195, 208],
    20: [128, 130, 131, 162, 184, 194, 224, 226],
    21: [153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230],
    22: [129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189,
         190, 196, 198, 228, 232, 233],
    23: [1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175,
         180, 182, 183, 188, 191, 197, 231, 239],
    24: [9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237],
    25: [199, 207, 234, 235],
    26: [192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255],
    27: [203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254],
    28: list(range(2, 9)) + [11, 12] + list(range(14, 22)) + list(range(23, 32)) + [127, 220, 249],
    30: [10, 13, 22, 256],
}


def _huffman_codes():
    """{symbol: (code, length)}, assigned canonically."""
    codes, code, prev = {}, 0, None
    for length in sorted(_HUFFMAN_BY_LENGTH):
        if prev is not None:
            code <<= length - prev
        for sym in sorted(_HUFFMAN_BY_LENGTH[length]):
            codes[sym] = (code, length)
            code += 1
        prev = length
    return codes


HUFFMAN_CODES = _huffman_codes()
_HUFFMAN_DECODE = {(length, code): sym for sym, (code, length) in HUFFMAN_CODES.items()}
EOS = 256


class HpackError(Exception):
    pass


def huffman_encode(data):
    acc, bits, out = 0, 0, bytearray()
    for b in data:
        code, length = HUFFMAN_CODES[b]
        acc = (acc << length) | code
        bits += length
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits:
        out.append(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xFF)  # pad with EOS's 1s
    return bytes(out)


def huffman_decode(data):
    out = bytearray()
    code = length = 0
    for byte in data:
        for i in range(7, -1, -1):
            code = (code << 1) | ((byte >> i) & 1)
            length += 1
            sym = _HUFFMAN_DECODE.get((length, code))
            if sym is not None:
                if sym == EOS:
                    raise HpackError("EOS in a Huffman string")
                out.append(sym)
                code = length = 0
            elif length > 30:
                raise HpackError("bad Huffman code")
    # the padding is at most 7 bits, all 1s (a prefix of EOS)
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("bad Huffman padding")
    return bytes(out)


def encode_int(value, prefix_bits, first=0):
    """An HPACK integer with an N-bit prefix; `first` carries the representation's flag bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_int(data, pos, prefix_bits):
    """(value, next position)."""
    limit = (1 << prefix_bits) - 1
    if pos >= len(data):
        raise HpackError("truncated integer")
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HpackError("truncated integer")
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > 35:
            raise HpackError("integer too large")


def encode_str(s, huffman=False):
    b = s.encode("latin-1") if isinstance(s, str) else bytes(s)
    if huffman:
        h = huffman_encode(b)
        return encode_int(len(h), 7, 0x80) + h
    return encode_int(len(b), 7) + b


def decode_str(data, pos):
    if pos >= len(data):
        raise HpackError("truncated string")
    huff = data[pos] & 0x80
    n, pos = decode_int(data, pos, 7)
    if pos + n > len(data):
        raise HpackError("truncated string")
    raw = bytes(data[pos:pos + n])
    return (huffman_decode(raw) if huff else raw), pos + n


def _entry_size(name, value):
    return len(name) + len(value) + 32


class _Table:
    """A dynamic table: newest first, evicted from the end to stay within max_size."""

    def __init__(self, max_size=4096):
        self.entries = []
        self.size = 0
        self.max_size = max_size

    def add(self, name, value):
        self.entries.insert(0, (name, value))
        self.size += _entry_size(name, value)
        self._evict()

    def resize(self, max_size):
        self.max_size = max_size
        self._evict()

    def _evict(self):
        while self.size > self.max_size and self.entries:
            n, v = self.entries.pop()
            self.size -= _entry_size(n, v)

    def get(self, index):
        """index: the HPACK index (1-based, static table first)."""
        if 1 <= index <= STATIC_LEN:
            return STATIC_TABLE[index - 1]
        i = index - STATIC_LEN - 1
        if 0 <= i < len(self.entries):
            return self.entries[i]
        raise HpackError("index %d out of range" % index)


class Encoder:
    """Header lists to header blocks. By default each field is an indexed field when the static
    or dynamic table has it whole, else a literal without indexing (name indexed when the static
    table has the name). Fields whose name is in `index` are literals with incremental indexing
    (added to the dynamic table, as the decoder does). No Huffman, no table size updates."""

    def __init__(self, table_size=4096):
        self.table = _Table(table_size)

    def encode(self, headers, index=(), never=()):
        out = bytearray()
        for name, value in headers:
            out += self.field(name, value, indexing=name in index, never=name in never)
        return bytes(out)

    def field(self, name, value, indexing=False, never=False):
        name = name if isinstance(name, str) else name.decode("latin-1")
        value = value if isinstance(value, str) else value.decode("latin-1")
        full = self._find(name, value)
        if full and not indexing:
            return encode_int(full, 7, 0x80)
        name_idx = self._find_name(name)
        if indexing:
            first, bits = 0x40, 6
        elif never:
            first, bits = 0x10, 4
        else:
            first, bits = 0x00, 4
        out = encode_int(name_idx, bits, first) if name_idx else encode_int(0, bits, first) + encode_str(name)
        out += encode_str(value)
        if indexing:
            self.table.add(name, value)
        return out

    def _find(self, name, value):
        for i, (n, v) in enumerate(STATIC_TABLE):
            if n == name and v == value:
                return i + 1
        for i, (n, v) in enumerate(self.table.entries):
            if n == name and v == value:
                return STATIC_LEN + 1 + i
        return 0

    def _find_name(self, name):
        for i, (n, _) in enumerate(STATIC_TABLE):
            if n == name:
                return i + 1
        return 0


def indexed_field(index):
    """An indexed header field representation (one byte for indexes under 127)."""
    return encode_int(index, 7, 0x80)


def literal_with_indexing(name, value):
    """A literal with incremental indexing and a literal name (the decoder adds it to its
    dynamic table, where it becomes index 62)."""
    return encode_int(0, 6, 0x40) + encode_str(name) + encode_str(value)


class Decoder:
    """Header blocks to [(name, value)] (str, latin-1), keeping the dynamic table."""

    def __init__(self, table_size=4096):
        self.table = _Table(table_size)
        self.max_allowed = table_size

    def decode(self, block):
        out = []
        pos = 0
        data = bytes(block)
        while pos < len(data):
            b = data[pos]
            if b & 0x80:                                # indexed
                idx, pos = decode_int(data, pos, 7)
                if idx == 0:
                    raise HpackError("index 0")
                out.append(self.table.get(idx))
            elif b & 0xC0 == 0x40:                      # literal, incremental indexing
                name, value, pos = self._literal(data, pos, 6)
                self.table.add(name, value)
                out.append((name, value))
            elif b & 0xE0 == 0x20:                      # dynamic table size update
                size, pos = decode_int(data, pos, 5)
                if size > self.max_allowed:
                    raise HpackError("table size update %d over %d" % (size, self.max_allowed))
                self.table.resize(size)
            else:                                       # literal without / never indexed
                name, value, pos = self._literal(data, pos, 4)
                out.append((name, value))
        return out

    def _literal(self, data, pos, bits):
        idx, pos = decode_int(data, pos, bits)
        if idx:
            name = self.table.get(idx)[0]
        else:
            raw, pos = decode_str(data, pos)
            name = raw.decode("latin-1")
        raw, pos = decode_str(data, pos)
        return name, raw.decode("latin-1"), pos


# ---------------------------------------------------------------------------------------------
# a client connection

class Stream:
    """What one stream received."""

    def __init__(self, sid):
        self.id = sid
        self.interim = []            # 1xx heads, each [(name, value)]
        self.headers = None          # the final head
        self.trailers = None
        self.body = bytearray()
        self.data_bytes = 0          # DATA payload received (counted even when not kept)
        self.ended = False           # END_STREAM received
        self.reset = None            # RST_STREAM error code
        self.send_window = DEFAULT_WINDOW

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def status(self):
        return int(self.header(":status")) if self.headers and self.header(":status") else None

    def header(self, name, default=None):
        for k, v in self.headers or ():
            if k == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers or () if k == name]

    def __repr__(self):
        return "<Stream %d status=%s body=%d ended=%s reset=%s>" % (
            self.id, self.status, self.data_bytes, self.ended, None if self.reset is None else error_name(self.reset))


class ConnectionClosed(Exception):
    pass


class H2Conn:
    """An HTTP/2 client connection to 127.0.0.1:port.

    settings: our SETTINGS ({id: value}); tls: an ssl.SSLContext (ALPN h2 is set on it);
    preface=False sends nothing (for tests that write the preface themselves); rcvbuf: SO_RCVBUF
    before connecting (a small one makes a reader that does not read fill up fast);
    auto_window: send WINDOW_UPDATE for DATA as it is read (off: the peer stalls at our window);
    keep_body: keep DATA payloads (off: count them only)."""

    def __init__(self, port, host=LOCAL, timeout=5.0, settings=None, tls=None, server_hostname="localhost",
                 preface=True, rcvbuf=None, auto_window=True, keep_body=True):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            s = tls.wrap_socket(s, server_hostname=server_hostname)
        self.sock = s
        self.timeout = timeout
        self.auto_window = auto_window
        self.keep_body = keep_body
        self.buf = bytearray()
        self.enc = Encoder()
        self.dec = Decoder()
        self.next_stream = 1
        self.streams = {}
        self.peer_settings = {}
        self.got_settings = False    # the peer's first SETTINGS arrived
        self.settings_acked = 0      # ACKs the peer sent for our SETTINGS
        self.ping_acks = 0
        self.goaways = []            # GOAWAY frames, in order
        self.closed = False          # EOF or reset from the peer
        self.reset_by_peer = False
        self.frames_read = 0
        self.counts = {}             # frames read, by type name
        self.first_frame = None
        self.send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = 16384
        self._hb = None              # (stream, flags, bytearray) of a header block in progress
        self._defer = False
        self._deferred = bytearray()
        if preface:
            self.send(PREFACE + settings_frame(settings or {}))

    # -- bytes --

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send; False when the peer has closed or reset the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return False

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(1 << 18)
        except (ConnectionResetError, ssl.SSLEOFError):
            self.closed = self.reset_by_peer = True
            raise ConnectionClosed("connection reset by peer")
        except ssl.SSLZeroReturnError:
            b = b""
        if not b:
            self.closed = True
            raise ConnectionClosed("peer closed the connection")
        self.buf += b

    def _parse(self):
        """The next whole frame in the buffer, handled; None when there is none yet."""
        if len(self.buf) < 9:
            return None
        n = (self.buf[0] << 16) | (self.buf[1] << 8) | self.buf[2]
        if len(self.buf) < 9 + n:
            return None
        ftype, flags = self.buf[3], self.buf[4]
        sid = struct.unpack(">I", bytes(self.buf[5:9]))[0] & 0x7FFFFFFF
        f = Frame(ftype, flags, sid, bytes(self.buf[9:9 + n]))
        del self.buf[:9 + n]
        self.frames_read += 1
        self.counts[f.name] = self.counts.get(f.name, 0) + 1
        if self.first_frame is None:
            self.first_frame = f
        self._handle(f)
        return f

    def read_frame(self, timeout=None):
        """The next frame, handled (see _handle); None when the peer closed the connection.
        Raises socket.timeout after `timeout` seconds without a whole frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self._parse()
            if f is not None:
                return f
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no whole frame within the timeout")
            try:
                self._fill(left)
            except ConnectionClosed:
                return self._parse()

    def flood(self, chunks, timeout=10.0, read=True):
        """Write `chunks` (an iterable of bytes, each whole frames) as fast as the peer takes
        them, in this one thread: frames that arrive meanwhile are read and handled (unless
        read=False: a peer that never reads), and the answers they call for (SETTINGS and
        PING acks, window updates) go out between chunks. Stops when the chunks run out, when
        the peer closes or resets the connection, or after timeout seconds. Returns
        (bytes written, "done" | "closed" | "timeout")."""
        self._defer = True
        it = iter(chunks)
        cur = memoryview(b"")
        sent = 0
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not cur:
                    if self._deferred:
                        cur = memoryview(bytes(self._deferred))
                        self._deferred.clear()
                    else:
                        nxt = next(it, None)
                        if nxt is None:
                            return sent, "done"
                        cur = memoryview(nxt)
                left = deadline - time.monotonic()
                if left <= 0:
                    return sent, "timeout"
                rl = [self.sock] if read else []
                r, w, _ = select.select(rl, [self.sock], [], min(left, 0.2))
                if r:
                    try:
                        self._fill(0.5)
                    except ConnectionClosed:
                        return sent, "closed"
                    while self._parse() is not None:
                        pass
                if w:
                    try:
                        n = self.sock.send(cur)
                    except (BrokenPipeError, ConnectionResetError):
                        self.closed = True
                        return sent, "closed"
                    cur = cur[n:]
                    sent += n
                elif not r and self.tcp_state() != TCP_ESTABLISHED:
                    self.closed = True
                    return sent, "closed"
        finally:
            self._defer = False

    def _reply(self, data):
        """Answer a frame (ack, window update): now, or between chunks during a flood."""
        if self._defer:
            self._deferred += data
        else:
            self.try_send(data)

    # -- frames in --

    def stream(self, sid):
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = Stream(sid)
            st.send_window = self.peer_initial_window
        return st

    def _handle(self, f):
        if f.type == SETTINGS:
            if f.has(ACK):
                self.settings_acked += 1
                return
            for k, v in f.settings():
                if k == INITIAL_WINDOW_SIZE:
                    delta = v - self.peer_initial_window
                    for st in self.streams.values():
                        st.send_window += delta
                    self.peer_initial_window = v
                elif k == MAX_FRAME_SIZE:
                    self.peer_max_frame = v
                self.peer_settings[k] = v
            self.got_settings = True
            self._reply(settings_frame(ack=True))
        elif f.type == PING:
            if f.has(ACK):
                self.ping_acks += 1
            else:
                self._reply(ping_frame(f.payload, ack=True))
        elif f.type == GOAWAY:
            self.goaways.append(f)
        elif f.type == WINDOW_UPDATE:
            if f.stream == 0:
                self.send_window += f.increment()
            else:
                self.stream(f.stream).send_window += f.increment()
        elif f.type == RST_STREAM:
            self.stream(f.stream).reset = f.error_code()
        elif f.type == DATA:
            st = self.stream(f.stream)
            data = strip_padding(f)
            st.data_bytes += len(data)
            if self.keep_body:
                st.body += data
            if f.has(END_STREAM):
                st.ended = True
            if self.auto_window and f.payload:
                wu = window_update_frame(0, len(f.payload))
                if not f.has(END_STREAM):
                    wu += window_update_frame(f.stream, len(f.payload))
                self._reply(wu)
        elif f.type == HEADERS:
            self._hb = (f.stream, f.flags, bytearray(strip_padding(f)))
            if f.has(END_HEADERS):
                self._end_headers()
        elif f.type == CONTINUATION:
            if self._hb is None or self._hb[0] != f.stream:
                raise AssertionError("CONTINUATION without a header block in progress: %r" % f)
            self._hb[2].extend(f.payload)
            if f.has(END_HEADERS):
                self._end_headers()
        elif f.type == PUSH_PROMISE:
            raise AssertionError("unexpected PUSH_PROMISE (a proxy never pushes): %r" % f)

    def _end_headers(self):
        sid, flags, block = self._hb
        self._hb = None
        fields = self.dec.decode(block)
        st = self.stream(sid)
        status = next((v for k, v in fields if k == ":status"), None)
        if status is not None and status.startswith("1") and status != "101":
            st.interim.append(fields)
        elif st.headers is None:
            st.headers = fields
        else:
            st.trailers = fields
        if flags & END_STREAM:
            st.ended = True

    # -- requests --

    def new_stream_id(self):
        sid = self.next_stream
        self.next_stream += 2
        return sid

    def request_block(self, method="GET", path="/", authority="test.local", scheme="http", headers=()):
        hs = [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
        hs += [(k.lower(), v) for k, v in headers]
        return self.enc.encode(hs)

    def request(self, method="GET", path="/", authority="test.local", headers=(), body=None,
                end_stream=None, scheme="http", content_length=True):
        """Open a stream (HEADERS, then DATA as the windows allow). body None and end_stream
        None: a request without a body. content_length: add content-length for a body.
        end_stream=False leaves the stream open for more DATA. Returns the stream id."""
        sid = self.new_stream_id()
        hs = list(headers)
        if body is not None and content_length and not any(k.lower() == "content-length" for k, _ in hs):
            hs.append(("content-length", str(len(body))))
        if end_stream is None:
            end_stream = True
        block = self.request_block(method, path, authority, scheme, hs)
        self.stream(sid)
        self.send_block(sid, block, end_stream=end_stream and body is None)
        if body is not None:
            self.send_data(sid, body, end_stream=end_stream)
        return sid

    def send_block(self, sid, block, end_stream=False):
        """A header block: HEADERS, and CONTINUATION frames when it is larger than the peer's
        SETTINGS_MAX_FRAME_SIZE."""
        size = self.peer_max_frame
        parts = [block[i:i + size] for i in range(0, len(block), size)] or [b""]
        out = [headers_frame(sid, parts[0], end_stream=end_stream, end_headers=len(parts) == 1)]
        for i, p in enumerate(parts[1:], 2):
            out.append(continuation_frame(sid, p, end_headers=i == len(parts)))
        self.send(b"".join(out))

    def send_data(self, sid, data, end_stream=False, timeout=None):
        """DATA frames within the peer's frame size and flow-control windows, reading frames
        while they are shut."""
        st = self.stream(sid)
        view = memoryview(bytes(data))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            n = min(len(view), self.peer_max_frame, self.send_window, st.send_window)
            if n <= 0 and len(view):
                if time.monotonic() > deadline:
                    raise AssertionError("flow-control window shut for %.1fs (stream %d: %d, connection: %d)"
                                         % (self.timeout, sid, st.send_window, self.send_window))
                if self.read_frame(max(0.01, deadline - time.monotonic())) is None:
                    raise ConnectionClosed("closed while sending the body of stream %d" % sid)
                if st.reset is not None:
                    raise ConnectionClosed("stream %d reset (%s) while sending its body" % (sid, error_name(st.reset)))
                continue
            last = n == len(view)
            self.send(data_frame(sid, bytes(view[:n]), end_stream=end_stream and last))
            self.send_window -= n
            st.send_window -= n
            view = view[n:]
            if last:
                return

    def response(self, sid, timeout=None):
        """Read frames until stream sid is done (ended or reset). Returns the Stream; raises
        ConnectionClosed if the connection ends first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        st = self.stream(sid)
        while not st.done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("stream %d not done within %.1fs: %r" % (sid, self.timeout, st))
            if self.read_frame(left) is None:
                raise ConnectionClosed("connection closed before stream %d was done (%r, goaways %r)"
                                       % (sid, st, self.goaways))
        return st

    def get(self, path="/", authority="test.local", headers=(), timeout=None):
        return self.response(self.request("GET", path, authority, headers), timeout)

    def handshake(self, timeout=None):
        """Read until the peer's SETTINGS has come and our own was acknowledged."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not (self.got_settings and self.settings_acked):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no SETTINGS exchange within %.1fs (first frame: %r)"
                                     % (self.timeout, self.first_frame))
            if self.read_frame(left) is None:
                raise ConnectionClosed("connection closed during the SETTINGS exchange")
        return self.peer_settings

    def read_until_close(self, timeout=5.0, keep=True):
        """Read (and handle) frames until the peer closes. Returns (frames, closed): closed is
        False when timeout seconds passed first."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return frames, False
            try:
                f = self.read_frame(left)
            except socket.timeout:
                return frames, False
            except OSError:
                return frames, True
            if f is None:
                return frames, True
            if keep:
                frames.append(f)

    def summary(self):
        """What came from the peer, for failure messages."""
        return "frames %s, GOAWAYs %r, closed %s" % (self.counts, self.goaways[-3:], self.closed)

    def tcp_state(self):
        """The kernel's TCP state of the socket (1 ESTABLISHED, 7 CLOSE, 8 CLOSE_WAIT...), read
        without reading the socket."""
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


TCP_ESTABLISHED = 1


# ---------------------------------------------------------------------------------------------
# self-test: RFC 7541 Appendix C and round trips

def _same(got, want, what):
    if got != want:
        raise AssertionError("h2raw self-test, %s: expected %r, got %r" % (what, want, got))


def selftest():
    """Raises AssertionError (kept under python -O) at the first vector that does not match."""
    h = bytes.fromhex
    # C.1 integers
    _same(encode_int(10, 5), b"\x0a", "C.1.1")
    _same(encode_int(1337, 5), b"\x1f\x9a\x0a", "C.1.2")
    _same(decode_int(b"\x1f\x9a\x0a", 0, 5), (1337, 3), "C.1.2 decoded")
    _same(encode_int(42, 8), b"\x2a", "C.1.3")
    # C.4: requests with Huffman, one dynamic table across them
    _same(huffman_encode(b"www.example.com"), h("f1e3c2e5f23a6ba0ab90f4ff"), "Huffman www.example.com")
    _same(huffman_encode(b"no-cache"), h("a8eb10649cbf"), "Huffman no-cache")
    _same(huffman_encode(b"custom-key"), h("25a849e95ba97d7f"), "Huffman custom-key")
    _same(huffman_encode(b"custom-value"), h("25a849e95bb8e8b4bf"), "Huffman custom-value")
    d = Decoder()
    req = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    _same(d.decode(h("828684418cf1e3c2e5f23a6ba0ab90f4ff")), req, "C.4.1")
    _same(d.decode(h("828684be5886a8eb10649cbf")), req + [("cache-control", "no-cache")], "C.4.2")
    _same(d.decode(h("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")),
          [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"),
           ("custom-key", "custom-value")], "C.4.3")
    _same(d.table.size, 164, "C.4.3 table size")
    # C.6: responses with Huffman and evictions (table size 256)
    d = Decoder(256)
    r1 = [(":status", "302"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
          ("location", "https://www.example.com")]
    _same(d.decode(h("488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff"
                     "6e919d29ad171863c78f0b97c8e9ae82ae43d3")), r1, "C.6.1")
    _same(d.table.size, 222, "C.6.1 table size")
    _same(d.decode(h("4883640effc1c0bf")), [(":status", "307")] + r1[1:], "C.6.2")
    # every byte value through the Huffman code and back
    allb = bytes(range(256)) * 2
    _same(huffman_decode(huffman_encode(allb)), allb, "Huffman round trip of every byte")
    # the encoder's output through the decoder, incremental indexing included
    e, d = Encoder(), Decoder()
    hs = [(":method", "POST"), (":path", "/x"), ("x-a", "1"), ("content-type", "text/plain")]
    for i in range(3):
        _same(d.decode(e.encode(hs, index={"x-a"})), hs, "round trip %d" % i)
    _same(d.decode(literal_with_indexing("x-bomb", "v") + indexed_field(62) * 3), [("x-bomb", "v")] * 4,
          "a literal indexed, then referenced")


if __name__ == "__main__":
    selftest()
    print("h2raw self-test ok")
