/* Envoy's access-log format language ("command operators").
 *
 * A text format compiles to a `seq`: an array of parts, each a literal span or one operator
 * (%NAME%, %NAME(arg)%, %NAME(arg):N%). A json_format compiles to a tree of `jnode`s whose
 * leaves are seqs (string values) or pre-rendered JSON (numbers, bools, null). Rendering
 * walks the parts and asks each operator for its value in the stream_info:
 *
 *   value        text                 JSON, operator alone in the string   JSON, inside a string
 *   missing      "-" ("" if omit)     null (key left out if omit)          "-" ("" if omit)
 *   string       as is                "escaped"                            escaped
 *   number       decimal              number                               decimal
 *
 * Everything a render needs is decided at compile time, so rendering does no parsing and no
 * allocation beyond growing the caller's output buffer. */
#include "proxy/alog.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/str.h"
#include "google/protobuf/struct.pb-c.h"

const char WF_ALOG_DEFAULT_FORMAT[] =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/* ---- response flags ---- */

/* Envoy's short names, in the bit order of WF_RF_* (which is Envoy's print order). */
static const char *const rf_names[] = {
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL",
    "UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "UPE", "NC", "DT",
};

/* NUL-terminated in out (truncated to outlen - 1 bytes); returns the bytes written. */
size_t wf_resp_flags_str(uint32_t flags, char *out, size_t outlen)
{
	if (!outlen)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < sizeof(rf_names) / sizeof(rf_names[0]); i++) {
		if (!(flags & (1u << i)))
			continue;
		const char *s = rf_names[i];
		size_t sl = strlen(s);
		if (n && n < outlen - 1)
			out[n++] = ',';
		if (sl > outlen - 1 - n)
			sl = outlen - 1 - n;
		memcpy(out + n, s, sl);
		n += sl;
	}
	if (!n && outlen > 1)
		out[n++] = '-';
	out[n] = 0;
	return n;
}

/* ---- compiled form ---- */

enum op {
	OP_LIT,          /* s/n: literal text */
	OP_NONE,         /* an Envoy operator whose data Weft does not track: always missing */
	OP_START_TIME,   /* s: strftime format with Envoy's extensions, NULL for the default */
	OP_REQ,          /* h[0..nh): request header names to try in turn */
	OP_RESP,         /* h[0..nh): response header names */
	OP_PROTOCOL,
	OP_RESPONSE_CODE,
	OP_RESPONSE_FLAGS,
	OP_BYTES_RECEIVED,
	OP_BYTES_SENT,
	OP_DURATION,
	OP_UPSTREAM_HOST,
	OP_UPSTREAM_HOST_NOPORT,
	OP_UPSTREAM_CLUSTER,
	OP_ROUTE_NAME,
	OP_DS_REMOTE,
	OP_DS_REMOTE_NOPORT,
	OP_DS_DIRECT,
	OP_DS_DIRECT_NOPORT,
	OP_DS_LOCAL,
	OP_DS_LOCAL_NOPORT,
	OP_HOSTNAME,
	OP_STREAM_ID,
};

enum { ARG_NONE, ARG_OPT, ARG_REQ };

static const struct cmd {
	const char *name;
	uint8_t op;
	uint8_t arg;
} cmds[] = {
    {"START_TIME", OP_START_TIME, ARG_OPT},
    {"REQ", OP_REQ, ARG_REQ},
    {"REQUEST_HEADER", OP_REQ, ARG_REQ},
    {"RESP", OP_RESP, ARG_REQ},
    {"RESPONSE_HEADER", OP_RESP, ARG_REQ},
    {"TRAILER", OP_NONE, ARG_REQ},            /* no trailers are forwarded yet */
    {"RESPONSE_TRAILER", OP_NONE, ARG_REQ},
    {"PROTOCOL", OP_PROTOCOL, ARG_NONE},
    {"RESPONSE_CODE", OP_RESPONSE_CODE, ARG_NONE},
    {"RESPONSE_FLAGS", OP_RESPONSE_FLAGS, ARG_NONE},
    {"BYTES_RECEIVED", OP_BYTES_RECEIVED, ARG_NONE},
    {"BYTES_SENT", OP_BYTES_SENT, ARG_NONE},
    {"DURATION", OP_DURATION, ARG_NONE},
    {"UPSTREAM_HOST", OP_UPSTREAM_HOST, ARG_NONE},
    {"UPSTREAM_REMOTE_ADDRESS", OP_UPSTREAM_HOST, ARG_NONE},
    {"UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", OP_UPSTREAM_HOST_NOPORT, ARG_NONE},
    {"UPSTREAM_CLUSTER", OP_UPSTREAM_CLUSTER, ARG_NONE},
    {"ROUTE_NAME", OP_ROUTE_NAME, ARG_NONE},
    {"DOWNSTREAM_REMOTE_ADDRESS", OP_DS_REMOTE, ARG_NONE},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", OP_DS_REMOTE_NOPORT, ARG_NONE},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS", OP_DS_DIRECT, ARG_NONE},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT", OP_DS_DIRECT_NOPORT, ARG_NONE},
    {"DOWNSTREAM_LOCAL_ADDRESS", OP_DS_LOCAL, ARG_NONE},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", OP_DS_LOCAL_NOPORT, ARG_NONE},
    {"HOSTNAME", OP_HOSTNAME, ARG_NONE},
    {"STREAM_ID", OP_STREAM_ID, ARG_NONE},
    /* Known to Envoy (and used by Istio's default format), not tracked by Weft yet: "-". */
    {"RESPONSE_CODE_DETAILS", OP_NONE, ARG_NONE},
    {"CONNECTION_TERMINATION_DETAILS", OP_NONE, ARG_NONE},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", OP_NONE, ARG_NONE},
    {"UPSTREAM_LOCAL_ADDRESS", OP_NONE, ARG_NONE},
    {"REQUESTED_SERVER_NAME", OP_NONE, ARG_NONE},
    {"REQUEST_DURATION", OP_NONE, ARG_NONE},
    {"REQUEST_TX_DURATION", OP_NONE, ARG_NONE},
    {"RESPONSE_DURATION", OP_NONE, ARG_NONE},
    {"RESPONSE_TX_DURATION", OP_NONE, ARG_NONE},
};

struct part {
	uint8_t op;               /* enum op */
	uint8_t nh;               /* OP_REQ/OP_RESP: 1 or 2 names */
	uint32_t max_len;         /* :N truncation of string values; 0 = none */
	const char *s;            /* OP_LIT: into seq.src; OP_START_TIME: owned, NUL-terminated */
	uint32_t n;
	const char *h[2];         /* into seq.src */
	uint32_t hn[2];
};

/* One compiled format string. parts[] point into src (owned). */
struct seq {
	char *src;
	struct part *parts;
	uint32_t n;
};

enum { J_RAW, J_SEQ, J_OBJ, J_ARR };

struct jnode {
	uint8_t kind;
	char *key;                /* in an object: `"name":`, JSON-escaped; else NULL */
	size_t key_len;
	char *raw;                /* J_RAW: "null", "true", "12.5" */
	size_t raw_len;
	struct seq seq;           /* J_SEQ */
	struct jnode *kids;       /* J_OBJ/J_ARR */
	uint32_t n_kids;
};

struct wf_alog_fmt {
	uint8_t json;
	uint8_t omit_empty;
	struct seq text;          /* !json */
	struct jnode root;        /* json: a J_OBJ */
	char hostname[256];
};

/* ---- output buffer ---- */

struct sb {
	char *p;
	size_t len, cap;
	int oom;
};

static int sb_room(struct sb *b, size_t need)
{
	if (b->oom)
		return 0;
	if (b->len + need <= b->cap)
		return 1;
	size_t nc = b->cap ? b->cap : 512;
	while (nc < b->len + need)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (!np) {
		b->oom = 1;
		return 0;
	}
	b->p = np;
	b->cap = nc;
	return 1;
}

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (n && sb_room(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

static void sb_putc(struct sb *b, char c)
{
	if (sb_room(b, 1))
		b->p[b->len++] = c;
}

static void sb_u64(struct sb *b, uint64_t v)
{
	char tmp[20];
	sb_put(b, tmp, wf_fmt_u64(tmp, v));
}

/* JSON string contents: escapes quotes, backslashes and control characters; bytes that are
 * not valid UTF-8 (header values may carry any obs-text) become U+FFFD so the line stays
 * valid JSON. */
static void sb_json_esc(struct sb *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *e = p + n;
	while (p < e) {
		const unsigned char *run = p;
		while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		sb_put(b, (const char *)run, (size_t)(p - run));
		if (p == e)
			break;
		unsigned char c = *p;
		if (c < 0x80) {
			char esc[6] = {'\\', 0};
			size_t el = 2;
			switch (c) {
			case '"': esc[1] = '"'; break;
			case '\\': esc[1] = '\\'; break;
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			case '\t': esc[1] = 't'; break;
			case '\b': esc[1] = 'b'; break;
			case '\f': esc[1] = 'f'; break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				el = 6;
			}
			sb_put(b, esc, el);
			p++;
			continue;
		}
		/* A multi-byte sequence: copy it when well-formed (no overlongs, no surrogates). */
		size_t len = 0;
		uint32_t cp = 0, min = 0;
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07, min = 0x10000;
		int ok = len && (size_t)(e - p) >= len;
		for (size_t i = 1; ok && i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				ok = 0;
			else
				cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
			ok = 0;
		if (ok) {
			sb_put(b, (const char *)p, len);
			p += len;
		} else {
			sb_put(b, "\xef\xbf\xbd", 3);
			p++;
		}
	}
}

/* ---- values ---- */

enum { V_NONE, V_STR, V_NUM };

struct val {
	int kind;
	const char *p;
	size_t n;
	uint64_t num;
};

#define SCRATCH 512

static void set_str(struct val *v, const char *s)
{
	if (s && *s) {
		v->kind = V_STR;
		v->p = s;
		v->n = strlen(s);
	}
}

/* "10.0.0.1:80" -> "10.0.0.1", "[::1]:80" -> "::1"; anything else unchanged. */
static void strip_port(struct val *v)
{
	if (v->kind != V_STR)
		return;
	if (v->p[0] == '[') {
		const char *rb = memchr(v->p, ']', v->n);
		if (rb) {
			v->n = (size_t)(rb - v->p - 1);
			v->p++;
		}
		return;
	}
	const char *c = memchr(v->p, ':', v->n);
	if (c && !memchr(c + 1, ':', v->n - (size_t)(c + 1 - v->p)))
		v->n = (size_t)(c - v->p);
}

static size_t put_digits(char *o, size_t room, uint64_t v, unsigned width)
{
	char tmp[24];
	unsigned i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i);
	while (sizeof(tmp) - i < width && i)
		tmp[--i] = '0';
	size_t n = sizeof(tmp) - i;
	if (n > room)
		return 0;
	memcpy(o, tmp + i, n);
	return n;
}

/* The first `digits` digits of the 9-digit nanosecond fraction. */
static size_t put_frac(char *o, size_t room, uint64_t wall_us, unsigned digits)
{
	char ns[10];
	put_digits(ns, sizeof(ns), (wall_us % 1000000) * 1000, 9);
	if (digits > room)
		return 0;
	memcpy(o, ns, digits);
	return digits;
}

/* START_TIME in UTC. fmt NULL: Envoy's default "%Y-%m-%dT%H:%M:%E3SZ". Otherwise strftime
 * with Envoy's additions: %s (epoch seconds), %f / %1f..%9f (fraction digits, %f = 9),
 * %E1S..%E9S (seconds with that many fraction digits), %E*S (seconds, fraction only as long
 * as needed). Returns the length written to out, 0 when it did not fit. */
static size_t fmt_time(const char *fmt, uint64_t wall_us, char *out, size_t outlen)
{
	time_t secs = (time_t)(wall_us / 1000000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm))
		return 0;
	if (!fmt) {
		int n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		                 (unsigned)(wall_us % 1000000 / 1000));
		return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
	}
	/* Expand the extensions into literal digits, then let strftime do the rest. */
	char tf[SCRATCH];
	size_t k = 0, room = sizeof(tf) - 1;
	for (const char *p = fmt; *p; p++) {
		size_t w = 0;
		if (*p != '%') {
			if (k >= room)
				return 0;
			tf[k++] = *p;
			continue;
		}
		if (p[1] == 'f') {
			w = put_frac(tf + k, room - k, wall_us, 9);
			p += 1;
		} else if (p[1] >= '1' && p[1] <= '9' && p[2] == 'f') {
			w = put_frac(tf + k, room - k, wall_us, (unsigned)(p[1] - '0'));
			p += 2;
		} else if (p[1] == 's') {
			w = put_digits(tf + k, room - k, (uint64_t)secs, 0);
			p += 1;
		} else if (p[1] == 'E' && p[2] && p[3] == 'S' &&
		           ((p[2] >= '1' && p[2] <= '9') || p[2] == '*')) {
			unsigned digits = 0;
			if (p[2] != '*')
				digits = (unsigned)(p[2] - '0');
			else
				for (uint64_t us = wall_us % 1000000; us; us = us % 100000 * 10)
					digits++; /* significant microsecond digits */
			if (room - k < 3 + digits)
				return 0;
			memcpy(tf + k, "%S", 2);
			w = 2;
			if (digits) {
				tf[k + w++] = '.';
				w += put_frac(tf + k + w, room - k - w, wall_us, digits);
			}
			p += 3;
		} else {
			/* Any other conversion (and %%) goes to strftime as written. */
			if (room - k < 2)
				return 0;
			tf[k] = '%';
			w = 1;
			if (p[1]) {
				tf[k + 1] = p[1];
				w = 2;
				p++;
			}
		}
		if (!w)
			return 0;
		k += w;
	}
	tf[k] = 0;
	return strftime(out, outlen, tf, &tm);
}

static int hdr_find(const struct wf_hdr *h, uint32_t nh, const char *name, size_t nl,
                    struct val *v)
{
	for (uint32_t i = 0; i < nh; i++)
		if (wf_str_ieq(h[i].name, h[i].name_len, name, nl)) {
			v->kind = V_STR;
			v->p = h[i].value;
			v->n = h[i].value_len;
			return 1;
		}
	return 0;
}

static int slice(struct val *v, const char *p, size_t n)
{
	if (!p)
		return 0;
	v->kind = V_STR;
	v->p = p;
	v->n = n;
	return 1;
}

/* One header name of %REQ()/%RESP(); pseudo-headers come from the stream_info. */
static int header_value(const struct part *pt, unsigned i, const struct wf_stream_info *si,
                        char *scratch, struct val *v)
{
	const char *name = pt->h[i];
	size_t nl = pt->hn[i];
	if (pt->op == OP_REQ) {
		if (name[0] == ':') {
			if (wf_str_ieq(name, nl, ":method", 7))
				return slice(v, si->method, si->method_len);
			if (wf_str_ieq(name, nl, ":path", 5))
				return slice(v, si->path, si->path_len);
			if (wf_str_ieq(name, nl, ":authority", 10))
				return slice(v, si->authority, si->authority_len);
			return 0;
		}
		return hdr_find(si->req_headers, si->n_req_headers, name, nl, v);
	}
	if (name[0] == ':') {
		if (wf_str_ieq(name, nl, ":status", 7) && si->response_code > 0) {
			v->kind = V_STR;
			v->p = scratch;
			v->n = put_digits(scratch, SCRATCH, (uint64_t)si->response_code, 0);
			return 1;
		}
		return 0;
	}
	return hdr_find(si->resp_headers, si->n_resp_headers, name, nl, v);
}

static void eval(const struct wf_alog_fmt *f, const struct part *pt,
                 const struct wf_stream_info *si, char *scratch, struct val *v)
{
	v->kind = V_NONE;
	switch ((enum op)pt->op) {
	case OP_LIT:
		v->kind = V_STR;
		v->p = pt->s;
		v->n = pt->n;
		return;
	case OP_NONE:
		return;
	case OP_START_TIME:
		v->n = fmt_time(pt->s, si->start_wall_us, scratch, SCRATCH);
		if (v->n) {
			v->kind = V_STR;
			v->p = scratch;
		}
		break;
	case OP_REQ:
	case OP_RESP:
		for (unsigned i = 0; i < pt->nh; i++)
			if (header_value(pt, i, si, scratch, v))
				break;
		break;
	case OP_PROTOCOL: set_str(v, si->protocol); break;
	case OP_RESPONSE_CODE:
		v->kind = V_NUM;
		v->num = si->response_code > 0 ? (uint64_t)si->response_code : 0;
		return;
	case OP_RESPONSE_FLAGS:
		v->kind = V_STR;
		v->p = scratch;
		v->n = wf_resp_flags_str(si->response_flags, scratch, SCRATCH);
		break;
	case OP_BYTES_RECEIVED: v->kind = V_NUM; v->num = si->bytes_received; return;
	case OP_BYTES_SENT: v->kind = V_NUM; v->num = si->bytes_sent; return;
	case OP_DURATION:
		if (si->end_us && si->end_us >= si->start_us) {
			v->kind = V_NUM;
			v->num = (si->end_us - si->start_us) / 1000;
		}
		return;
	case OP_UPSTREAM_HOST: set_str(v, si->upstream_host); break;
	case OP_UPSTREAM_HOST_NOPORT: set_str(v, si->upstream_host); strip_port(v); break;
	case OP_UPSTREAM_CLUSTER: set_str(v, si->upstream_cluster); break;
	case OP_ROUTE_NAME: set_str(v, si->route_name); break;
	case OP_DS_REMOTE: set_str(v, si->downstream_remote); break;
	case OP_DS_REMOTE_NOPORT: set_str(v, si->downstream_remote); strip_port(v); break;
	case OP_DS_DIRECT: set_str(v, si->downstream_direct_remote ? si->downstream_direct_remote : si->downstream_remote); break;
	case OP_DS_DIRECT_NOPORT:
		set_str(v, si->downstream_direct_remote ? si->downstream_direct_remote : si->downstream_remote);
		strip_port(v);
		break;
	case OP_DS_LOCAL: set_str(v, si->downstream_local); break;
	case OP_DS_LOCAL_NOPORT: set_str(v, si->downstream_local); strip_port(v); break;
	case OP_HOSTNAME: set_str(v, f->hostname); break;
	case OP_STREAM_ID: slice(v, si->request_id, si->request_id_len); break;
	}
	if (v->kind == V_STR && pt->max_len && v->n > pt->max_len)
		v->n = pt->max_len;
}

/* ---- compile ---- */

static void seq_free(struct seq *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->parts[i].op == OP_START_TIME)
			free((char *)s->parts[i].s);
	free(s->parts);
	free(s->src);
	memset(s, 0, sizeof(*s));
}

static struct part *seq_add(struct seq *s, uint32_t *cap)
{
	if (s->n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 8;
		struct part *np = realloc(s->parts, nc * sizeof(*np));
		if (!np)
			return NULL;
		s->parts = np;
		*cap = nc;
	}
	struct part *p = &s->parts[s->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

static int is_cmd_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

static const struct cmd *cmd_find(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strlen(cmds[i].name) == n && !memcmp(cmds[i].name, name, n))
			return &cmds[i];
	return NULL;
}

static const char *cmd_suggest(const char *name, size_t n)
{
	char buf[64];
	if (n >= sizeof(buf))
		return NULL;
	memcpy(buf, name, n);
	buf[n] = 0;
	const char *best = NULL;
	unsigned best_d = 3; /* suggest only close matches */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		unsigned d = wf_edit_distance(buf, cmds[i].name, best_d);
		if (d < best_d) {
			best_d = d;
			best = cmds[i].name;
		}
	}
	return best;
}

/* Compile fmt[0..len) into s. 0, or -EINVAL/-ENOMEM with err filled. */
static int seq_compile(struct seq *s, const char *fmt, size_t len, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	uint32_t cap = 0;
	if (!(s->src = malloc(len + 1)))
		goto oom;
	memcpy(s->src, fmt, len);
	s->src[len] = 0;
	const char *src = s->src;
	size_t i = 0, lit = 0;
	while (i <= len) {
		if (i < len && src[i] != '%') {
			i++;
			continue;
		}
		/* A literal run ends here; "%%" keeps one '%' in it. */
		int pct = i + 1 < len && src[i + 1] == '%';
		size_t lit_end = i + (size_t)pct;
		if (lit_end > lit) {
			struct part *p = seq_add(s, &cap);
			if (!p)
				goto oom;
			p->op = OP_LIT;
			p->s = src + lit;
			p->n = (uint32_t)(lit_end - lit);
		}
		if (i == len)
			break;
		if (pct) {
			i += 2;
			lit = i;
			continue;
		}
		size_t at = i, j = i + 1;
		while (j < len && is_cmd_char(src[j]))
			j++;
		const char *name = src + at + 1;
		size_t name_len = j - at - 1;
		if (!name_len) {
			snprintf(err, errlen,
			         "'%%' at offset %zu does not start a command (write %%%% for a literal '%%')",
			         at);
			goto inval;
		}
		const struct cmd *c = cmd_find(name, name_len);
		if (!c) {
			const char *sug = cmd_suggest(name, name_len);
			snprintf(err, errlen, "unknown command '%.*s' at offset %zu%s%s%s", (int)name_len,
			         name, at, sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
			goto inval;
		}
		const char *arg = NULL;
		size_t arg_len = 0;
		if (j < len && src[j] == '(') {
			const char *close = memchr(src + j + 1, ')', len - j - 1);
			if (!close) {
				snprintf(err, errlen, "command '%s' at offset %zu: missing ')'", c->name, at);
				goto inval;
			}
			arg = src + j + 1;
			arg_len = (size_t)(close - arg);
			j = (size_t)(close - src) + 1;
		}
		uint32_t max_len = 0;
		if (j < len && src[j] == ':') {
			size_t d = ++j;
			while (j < len && src[j] >= '0' && src[j] <= '9')
				j++;
			int64_t v = wf_parse_u64(src + d, j - d, UINT32_MAX);
			if (v <= 0) {
				snprintf(err, errlen,
				         "command '%s' at offset %zu: ':' must be followed by a length > 0", c->name,
				         at);
				goto inval;
			}
			max_len = (uint32_t)v;
		}
		if (j >= len || src[j] != '%') {
			snprintf(err, errlen, "command '%s' at offset %zu is not closed with '%%'", c->name, at);
			goto inval;
		}
		j++;
		if (arg && c->arg == ARG_NONE) {
			snprintf(err, errlen, "command '%s' at offset %zu takes no argument", c->name, at);
			goto inval;
		}
		if (c->arg == ARG_REQ && !arg_len) {
			snprintf(err, errlen, "command '%s' at offset %zu needs a header name, e.g. %%%s(USER-AGENT)%%",
			         c->name, at, c->name);
			goto inval;
		}
		struct part *p = seq_add(s, &cap);
		if (!p)
			goto oom;
		p->op = c->op;
		p->max_len = max_len;
		if (c->op == OP_REQ || c->op == OP_RESP) {
			const char *q = memchr(arg, '?', arg_len);
			p->h[0] = arg;
			p->hn[0] = (uint32_t)(q ? (size_t)(q - arg) : arg_len);
			p->nh = 1;
			if (q) {
				p->h[1] = q + 1;
				p->hn[1] = (uint32_t)(arg_len - p->hn[0] - 1);
				p->nh = 2;
				if (memchr(p->h[1], '?', p->hn[1]) || !p->hn[0] || !p->hn[1]) {
					snprintf(err, errlen,
					         "command '%s' at offset %zu: write one header or two as X?Y, got '%.*s'",
					         c->name, at, (int)arg_len, arg);
					goto inval;
				}
			}
		} else if (c->op == OP_START_TIME && arg_len) {
			if (!(p->s = strndup(arg, arg_len)))
				goto oom;
		}
		i = lit = j;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	seq_free(s);
	return -ENOMEM;
inval:
	seq_free(s);
	return -EINVAL;
}

static void fmt_init(struct wf_alog_fmt *f)
{
	if (gethostname(f->hostname, sizeof(f->hostname) - 1) < 0)
		f->hostname[0] = 0;
	f->hostname[sizeof(f->hostname) - 1] = 0;
}

struct wf_alog_fmt *wf_alog_fmt_text(const char *fmt, char *err, size_t errlen)
{
	struct wf_alog_fmt *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (seq_compile(&f->text, fmt, strlen(fmt), err, errlen) < 0) {
		free(f);
		return NULL;
	}
	fmt_init(f);
	return f;
}

static void jnode_free(struct jnode *n)
{
	for (uint32_t i = 0; i < n->n_kids; i++)
		jnode_free(&n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->raw);
	seq_free(&n->seq);
}

static char *dup_json(const char *s, size_t n, int key, size_t *out_len)
{
	struct sb b = {0};
	sb_putc(&b, '"');
	sb_json_esc(&b, s, n);
	sb_put(&b, key ? "\":" : "\"", key ? 2 : 1);
	sb_putc(&b, 0);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*out_len = b.len - 1;
	return b.p;
}

static int set_raw(struct jnode *n, const char *s)
{
	n->kind = J_RAW;
	n->raw_len = strlen(s);
	return (n->raw = strdup(s)) ? 0 : -ENOMEM;
}

/* path: the key path so far ("a.b"), for error messages. */
static int jnode_compile(struct jnode *n, const Google__Protobuf__Value *v, char *path,
                         size_t path_cap, char *err, size_t errlen);

static int jnode_struct(struct jnode *n, const Google__Protobuf__Struct *st, char *path,
                        size_t path_cap, char *err, size_t errlen)
{
	n->kind = J_OBJ;
	if (!st->n_fields)
		return 0;
	if (!(n->kids = calloc(st->n_fields, sizeof(*n->kids))))
		return -ENOMEM;
	size_t base = strlen(path);
	for (size_t i = 0; i < st->n_fields; i++) {
		const Google__Protobuf__Struct__FieldsEntry *e = st->fields[i];
		struct jnode *k = &n->kids[n->n_kids++];
		const char *key = e->key ? e->key : "";
		if (!(k->key = dup_json(key, strlen(key), 1, &k->key_len)))
			return -ENOMEM;
		snprintf(path + base, path_cap - base, "%s%s", base ? "." : "", key);
		int r = jnode_compile(k, e->value, path, path_cap, err, errlen);
		if (r < 0)
			return r;
		path[base] = 0;
	}
	return 0;
}

static int jnode_compile(struct jnode *n, const Google__Protobuf__Value *v, char *path,
                         size_t path_cap, char *err, size_t errlen)
{
	char num[40];
	switch (v ? v->kind_case : GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET) {
	case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: {
		double d = v->number_value;
		if (d != d || d - d != 0) /* NaN, infinities: not JSON */
			return set_raw(n, "null");
		if (d == (double)(int64_t)d && d > -1e15 && d < 1e15)
			snprintf(num, sizeof(num), "%lld", (long long)d);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		return set_raw(n, num);
	}
	case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
		return set_raw(n, v->bool_value ? "true" : "false");
	case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: {
		n->kind = J_SEQ;
		char e[200];
		int r = seq_compile(&n->seq, v->string_value, strlen(v->string_value), e, sizeof(e));
		if (r < 0)
			snprintf(err, errlen, "key '%s': %s", path, e);
		return r;
	}
	case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
		return jnode_struct(n, v->struct_value, path, path_cap, err, errlen);
	case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
		const Google__Protobuf__ListValue *l = v->list_value;
		n->kind = J_ARR;
		if (!l->n_values)
			return 0;
		if (!(n->kids = calloc(l->n_values, sizeof(*n->kids))))
			return -ENOMEM;
		for (size_t i = 0; i < l->n_values; i++) {
			int r = jnode_compile(&n->kids[n->n_kids++], l->values[i], path, path_cap, err, errlen);
			if (r < 0)
				return r;
		}
		return 0;
	}
	default:
		return set_raw(n, "null");
	}
}

struct wf_alog_fmt *wf_alog_fmt_json(const ProtobufCMessage *json_struct, char *err, size_t errlen)
{
	if (!json_struct || json_struct->descriptor != &google__protobuf__struct__descriptor) {
		snprintf(err, errlen, "json_format must be a google.protobuf.Struct");
		return NULL;
	}
	struct wf_alog_fmt *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->json = 1;
	char path[256] = "";
	int r = jnode_struct(&f->root, (const Google__Protobuf__Struct *)json_struct, path,
	                     sizeof(path), err, errlen);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		wf_alog_fmt_free(f);
		return NULL;
	}
	fmt_init(f);
	return f;
}

void wf_alog_fmt_set_omit_empty(struct wf_alog_fmt *f, int on) { f->omit_empty = on != 0; }

void wf_alog_fmt_free(struct wf_alog_fmt *f)
{
	if (!f)
		return;
	seq_free(&f->text);
	jnode_free(&f->root);
	free(f);
}

/* ---- render ---- */

static void render_text(struct sb *b, const struct wf_alog_fmt *f, const struct seq *s,
                        const struct wf_stream_info *si, int json_str)
{
	char scratch[SCRATCH];
	for (uint32_t i = 0; i < s->n; i++) {
		struct val v;
		eval(f, &s->parts[i], si, scratch, &v);
		if (v.kind == V_NONE) {
			if (!f->omit_empty)
				sb_putc(b, '-');
		} else if (v.kind == V_NUM) {
			sb_u64(b, v.num);
		} else if (json_str) {
			sb_json_esc(b, v.p, v.n);
		} else {
			sb_put(b, v.p, v.n);
		}
	}
}

/* A string value alone in its JSON string keeps its type: numbers stay numbers and a
 * missing value is null. Returns 0 when it is missing and omit_empty is set (nothing written). */
static int render_jseq(struct sb *b, const struct wf_alog_fmt *f, const struct seq *s,
                       const struct wf_stream_info *si, int dry)
{
	if (s->n == 1 && s->parts[0].op != OP_LIT) {
		char scratch[SCRATCH];
		struct val v;
		eval(f, &s->parts[0], si, scratch, &v);
		if (v.kind == V_NONE && f->omit_empty)
			return 0;
		if (dry)
			return 1;
		if (v.kind == V_NONE) {
			sb_put(b, "null", 4);
		} else if (v.kind == V_NUM) {
			sb_u64(b, v.num);
		} else {
			sb_putc(b, '"');
			sb_json_esc(b, v.p, v.n);
			sb_putc(b, '"');
		}
		return 1;
	}
	if (dry)
		return 1;
	sb_putc(b, '"');
	render_text(b, f, s, si, 1);
	sb_putc(b, '"');
	return 1;
}

static void render_json(struct sb *b, const struct wf_alog_fmt *f, const struct jnode *n,
                        const struct wf_stream_info *si)
{
	switch (n->kind) {
	case J_RAW:
		sb_put(b, n->raw, n->raw_len);
		return;
	case J_SEQ:
		render_jseq(b, f, &n->seq, si, 0);
		return;
	case J_OBJ:
	case J_ARR: {
		sb_putc(b, n->kind == J_OBJ ? '{' : '[');
		int first = 1;
		for (uint32_t i = 0; i < n->n_kids; i++) {
			const struct jnode *k = &n->kids[i];
			if (f->omit_empty && k->kind == J_SEQ && !render_jseq(b, f, &k->seq, si, 1))
				continue;
			if (!first)
				sb_putc(b, ',');
			first = 0;
			if (k->key)
				sb_put(b, k->key, k->key_len);
			render_json(b, f, k, si);
		}
		sb_putc(b, n->kind == J_OBJ ? '}' : ']');
		return;
	}
	}
}

int wf_alog_render(const struct wf_alog_fmt *f, const struct wf_stream_info *si, char **out,
                   size_t *len, size_t *cap)
{
	struct sb b = {*out, *len, *cap, 0};
	if (f->json) {
		render_json(&b, f, &f->root, si);
		sb_putc(&b, '\n');
	} else {
		render_text(&b, f, &f->text, si, 0);
	}
	*out = b.p;
	*cap = b.cap;
	if (b.oom)
		return -ENOMEM; /* *len unchanged: the partial entry is dropped */
	*len = b.len;
	return 0;
}
