/* Strict HTTP/1.x message-head parser and chunked-body decoder (RFC 9110, RFC 9112).
 *
 * Zero-copy: every pointer handed back points into the caller's buffer, which must stay
 * unchanged while the parsed result is in use. The parser keeps no state between calls:
 * call it again with the grown buffer until it returns >0. It refuses everything request
 * smuggling needs (see h1.c for the list), so a message it accepts can be re-serialised
 * and forwarded without ambiguity.
 *
 * Return convention for the head parsers:
 *   >0  the head is complete; the value is its length in bytes (up to and including the
 *       empty line), so the body (if any) starts at buf + ret.
 *    0  incomplete: read more and call again with the same buffer start.
 *   <0  the message is refused: the value is the negated HTTP status to answer
 *       (-400, -431 for size limits; -502 for upstream responses), and `err` says why.
 */
#ifndef WF_HTTP_H1_H
#define WF_HTTP_H1_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

struct wf_hdr {
	const char *name;
	const char *value;   /* leading and trailing OWS removed */
	uint32_t name_len;
	uint32_t value_len;
};

struct wf_h1_limits {
	uint32_t max_head_bytes; /* request/status line + header section; over it: -431 (-502 on responses) */
	uint32_t max_headers;    /* header field lines; over it: -431 (-502 on responses) */
};

enum wf_h1_form {
	WF_H1_ORIGIN = 0,  /* /path?query */
	WF_H1_ABSOLUTE,    /* http://authority/path?query */
	WF_H1_AUTHORITY,   /* host:port (CONNECT only) */
	WF_H1_ASTERISK,    /* * (OPTIONS only) */
};

struct wf_h1_req {
	const char *method;  uint32_t method_len;
	const char *target;  uint32_t target_len;   /* request-target as sent */
	const char *path;    uint32_t path_len;     /* origin-form part ("/" when absolute-form had none) */
	const char *host;    uint32_t host_len;     /* Host value, or the authority of an absolute-form
	                                               target; NULL when neither (HTTP/1.0 only) */
	uint8_t minor;                              /* HTTP/1.<minor>: 0 or 1 */
	uint8_t form;                               /* enum wf_h1_form */
	/* Body framing and connection semantics, derived from the headers: */
	int64_t content_length;                     /* -1 when absent */
	unsigned chunked : 1;                       /* Transfer-Encoding: chunked (the only one accepted) */
	unsigned conn_close : 1;                    /* Connection: close */
	unsigned conn_keep_alive : 1;               /* Connection: keep-alive */
	unsigned conn_upgrade : 1;                  /* Connection: upgrade */
	unsigned expect_continue : 1;               /* Expect: 100-continue */
	unsigned grpc : 1;                          /* Content-Type: application/grpc[+...|;...] */
	struct wf_hdr *headers;                     /* caller's array of lim->max_headers entries */
	uint32_t n_headers;
	const char *err;                            /* static reason when the parse failed */
};

struct wf_h1_resp {
	int status;                                 /* 100..999 */
	const char *reason;  uint32_t reason_len;
	uint8_t minor;
	int64_t content_length;                     /* -1 when absent */
	unsigned chunked : 1;
	unsigned conn_close : 1;
	unsigned conn_keep_alive : 1;
	unsigned conn_upgrade : 1;
	struct wf_hdr *headers;                     /* caller's array of lim->max_headers entries */
	uint32_t n_headers;
	const char *err;
};

/* Parse a request head from buf[0..len). Fills *req (req->headers must point to an array of
 * lim->max_headers entries). Refuses (-400): bare CR or LF, obs-fold, whitespace before a colon,
 * empty or non-token field names, NUL/control characters in names, values or the target,
 * Content-Length with Transfer-Encoding, several or non-digit Content-Length values,
 * any Transfer-Encoding other than exactly "chunked", Transfer-Encoding on HTTP/1.0,
 * a missing Host on HTTP/1.1, several Host fields, an absolute-form authority that differs
 * from Host, a version other than HTTP/1.0 or HTTP/1.1, a malformed request line.
 * Refuses (-431): a head over lim->max_head_bytes or with more than lim->max_headers fields
 * (checked also on an incomplete head, so a slow sender cannot grow it without bound). */
int wf_h1_parse_request(const char *buf, size_t len, const struct wf_h1_limits *lim,
                        struct wf_h1_req *req);

/* Parse a response head. Same rules for header fields and framing; -502 for anything refused
 * (including size limits). Framing is reported as sent; whether a body exists also depends on
 * the request method and status (see wf_h1_resp_has_body). */
int wf_h1_parse_response(const char *buf, size_t len, const struct wf_h1_limits *lim,
                         struct wf_h1_resp *resp);

/* RFC 9112 §6.3: does a response to a request with this method carry a body?
 * HEAD, 1xx, 204 and 304 do not; a 2xx to CONNECT does not (it becomes a tunnel). */
int wf_h1_resp_has_body(int status, int is_head, int is_connect);

/* Chunked transfer-coding decoder (RFC 9112 §7.1). Chunk sizes are plain hex digits
 * (no sign, no "0x", no whitespace before the CRLF, at most 16 hex digits without overflow);
 * chunk extensions are parsed and dropped; trailer fields are validated like header fields and
 * dropped. Zero the struct to start a message. */
struct wf_h1_chunked {
	uint64_t left;        /* bytes of chunk data still to come in the current chunk */
	uint32_t state;       /* private */
	uint32_t trailer_len; /* private: bytes of trailer section seen, bounded by max_trailer */
	uint32_t max_trailer; /* 0 means 60 KiB */
	const char *err;
	uint32_t line_len;    /* private: bytes of the current chunk-size line, bounded */
};

/* Decode from in[0..len). Sets *consumed to the bytes used up.
 *  1  *data and *data_len give a span of body bytes (inside `in`) to pass on; call again
 *     after it.
 *  0  everything in the input was framing; need more input.
 *  2  the message ended (last chunk and trailers consumed); bytes after *consumed belong to
 *     the next message.
 * <0  -400: malformed framing (c->err says why). */
int wf_h1_chunked_decode(struct wf_h1_chunked *c, const char *in, size_t len, size_t *consumed,
                         const char **data, size_t *data_len);

/* Case-insensitive ASCII comparison of a header name to a lower-case literal. */
static inline int wf_hdr_name_is(const struct wf_hdr *h, const char *lower, size_t lower_len)
{
	return h->name_len == lower_len && wf_ieq_lower(h->name, lower, lower_len);
}
#define WF_HDR_IS(h, lit) wf_hdr_name_is((h), lit, sizeof(lit) - 1)
/* The first of h[0..n) called `lower`, or NULL. */
const struct wf_hdr *wf_hdr_find(const struct wf_hdr *h, uint32_t n, const char *lower, size_t lower_len);
/* A copy of h[0..n) in one allocation (free() it), the names and values inside it; NULL when
 * out of memory. */
struct wf_hdr *wf_hdrs_dup(const struct wf_hdr *h, uint32_t n);

#endif
