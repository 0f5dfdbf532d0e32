/* The HTTP/2 codec (RFC 9113): frames in, frames out, for one connection of either side.
 *
 * Receiving: bytes are cut into frames (a frame split across reads is gathered in `fb`); each
 * frame is checked and acted on at once. A header block (HEADERS + CONTINUATION) is gathered,
 * decoded with HPACK, checked against the message rules (h2_fields.c) and handed to the owner.
 * DATA goes to the owner as it comes; the peer's windows reopen only as the owner consumes.
 *
 * Sending: HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY and WINDOW_UPDATE are serialized into
 * `out` when submitted (so HPACK's order is the wire's order); DATA is cut from each stream's
 * queue when the owner asks for bytes to write (wf_h2_send_pending), as the windows allow,
 * taking streams in turn. Stream ends found while sending or receiving close the stream there
 * (never inside a call the owner made to submit something), and the owner hears of it. */
#include "http/h2.h"

#include "core/str.h"
#include "http/h2_fields.h"
#include "http/hpack.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CHUNK (64 * 1024)   /* DATA is framed while less than this waits to be written */
#define FRAME_MAX 16384         /* our SETTINGS_MAX_FRAME_SIZE (the default) */
#define WINDOW_MAX 2147483647
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN 24

enum { F_DATA, F_HEADERS, F_PRIORITY, F_RST_STREAM, F_SETTINGS, F_PUSH_PROMISE, F_PING, F_GOAWAY,
       F_WINDOW_UPDATE, F_CONTINUATION };
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4, FL_PADDED = 8, FL_PRIORITY = 0x20 };
enum { E_NO_ERROR, E_PROTOCOL, E_INTERNAL, E_FLOW_CONTROL, E_SETTINGS_TIMEOUT, E_STREAM_CLOSED, E_FRAME_SIZE,
       E_REFUSED_STREAM, E_CANCEL, E_COMPRESSION, E_CONNECT, E_ENHANCE_YOUR_CALM };
enum { S_HEADER_TABLE_SIZE = 1, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE,
       S_MAX_HEADER_LIST_SIZE, S_ENABLE_CONNECT_PROTOCOL = 8, S_NO_RFC7540_PRIORITIES = 9 };

struct stream {
	int32_t id;
	struct stream *hnext;              /* hash chain */
	struct stream *prev, *next;        /* every stream of the connection */
	struct stream *rnext;              /* DATA ready to frame (h->ready) */
	struct stream *cnext;              /* to close at the next chance (h->closing) */
	uint8_t in_ready, in_closing;
	uint8_t local_done;                /* our side ended (END_STREAM sent or queued) */
	uint8_t end_sent;                  /* END_STREAM went into `out` */
	uint8_t peer_done;                 /* the peer's END_STREAM came */
	uint8_t final_seen;                /* client: the final (non-1xx) response head came */
	uint8_t head_seen;                 /* the first header block came (server: the request head) */
	uint8_t bodiless;                  /* client: a HEAD request (its response has no body) */
	uint8_t unopened;                  /* client: its HEADERS wait for a slot under the peer's limit */
	struct stream *onext;              /* h->unopened, in id order */
	struct wf_hdr *head;               /* client: the request head kept while unopened */
	uint32_t n_head;
	uint32_t reset_code;               /* closing because of a reset: its code */
	uint8_t reset;
	int64_t send_win;                  /* the peer's window for this stream */
	int64_t recv_win;                  /* what the peer may still send on it */
	uint32_t unacked;                  /* consumed bytes not yet given back (WINDOW_UPDATE) */
	int64_t content_length, received;  /* the peer's declared and actual DATA bytes */
	struct wf_buf q;                   /* DATA to send */
	/* DATA lent by the owner (wf_h2_send_lent: not copied), each sent once the bytes queued in q
	 * before it went */
	struct lent {
		struct lent *next;
		uint64_t at;                   /* q_in when it was lent */
		const uint8_t *p;
		size_t n;                      /* not framed yet */
		void (*done)(void *arg);
		void *arg;
	} *lent, *lent_tail;
	uint64_t q_in, q_out;              /* bytes ever put into q, taken from q */
	size_t lent_len;                   /* lent bytes not framed yet */
	uint8_t end;                       /* no more DATA after q */
	struct wf_hdr *trailers;           /* to send once q is empty (one allocation) */
	uint32_t n_trailers;
	void *owner;
};

struct wf_h2 {
	struct wf_h2_limits lim;
	const struct wf_h2_ops *ops;
	void *ctx;
	struct wf_pool *pool;
	int server;
	/* streams */
	struct stream **tab;
	uint32_t tab_mask, n_open;
	struct stream *all, *ready, *ready_tail, *closing;
	int32_t last_peer_id;              /* highest stream id the peer opened */
	int32_t next_id;                   /* client: the next stream id */
	struct stream *unopened, *unopened_tail; /* client: requests over the peer's stream limit */
	uint32_t n_unopened;
	int32_t head_sid;                  /* server: a request head begun and not ended, or 0 */
	/* receiving */
	uint32_t preface_seen;             /* server: bytes of the client preface matched */
	uint8_t settings_seen;             /* the peer's first SETTINGS came */
	uint8_t settings_acked;            /* the peer acknowledged ours (our limits are known to it) */
	uint8_t *fb;                       /* a frame split across reads (9 + FRAME_MAX, on first need) */
	uint32_t fb_len;
	uint8_t *hb; uint32_t hb_len, hb_cap; /* a header block being gathered */
	int32_t hb_sid;                    /* its stream (0: none) */
	uint8_t hb_flags;                  /* its HEADERS flags (END_STREAM) */
	uint32_t continuations;
	char *fv; uint32_t fv_len, fv_cap; /* decoded fields: names and values */
	struct wf_hdr *fl; uint32_t n_fl, cap_fl;
	uint8_t *fl_how;                   /* what HPACK said of each (WF_HPACK_STATIC_...) */
	uint8_t fl_overflow;
	struct wf_hpack_dec dec;
	int64_t recv_win;                  /* connection: what the peer may still send */
	uint32_t unacked;                  /* connection: consumed, not yet given back */
	/* sending */
	struct wf_hpack_enc enc;
	struct wf_buf out;
	int64_t send_win;                  /* connection: the peer's window */
	uint32_t peer_initial_window, peer_max_frame, peer_max_streams;
	/* frames other than DATA waiting in `out` (DATA is framed only while out is short):
	 * where each starts in the connection's output, oldest first, for the flood limits */
	uint64_t out_done;                 /* bytes of output written so far */
	struct queued { uint64_t start; uint8_t control; } *oq;
	uint32_t oq_head, oq_n, oq_cap;
	uint32_t out_frames, out_control;  /* of them, all / PING and SETTINGS acks and resets */
	uint8_t goaway_sent, goaway_received;
	int32_t goaway_last;               /* the last stream id we said we would process */
	enum wf_h2_error err;
	uint8_t fatal;
	/* abuse accounting */
	uint32_t empty_run;
	uint64_t streams_opened, streams_closed, premature_resets;
	uint64_t priority_frames, window_updates, data_frames_sent;
};

void wf_h2_limits_default(struct wf_h2_limits *l)
{
	*l = (struct wf_h2_limits){
	    .max_concurrent_streams = 2147483647u,
	    .initial_stream_window = 268435456u,
	    .initial_connection_window = 268435456u,
	    .hpack_table_size = 4096,
	    .max_header_list = 60 * 1024,
	    .max_headers = 100,
	    .max_outbound_frames = 10000,
	    .max_outbound_control_frames = 1000,
	    .max_consecutive_empty_frames = 1,
	    .max_priority_frames_per_stream = 100,
	    .max_window_updates_per_data_sent = 10,
	    .max_continuations = 8,
	};
}

const char *wf_h2_error_str(enum wf_h2_error e)
{
	switch (e) {
	case WF_H2_OK: return "ok";
	case WF_H2_PROTOCOL: return "protocol error";
	case WF_H2_RAPID_RESET: return "too many streams reset by the peer (rapid reset)";
	case WF_H2_CONTINUATION_FLOOD: return "too many CONTINUATION frames";
	case WF_H2_HEADER_LIST_TOO_LARGE: return "header list too large";
	case WF_H2_CONTROL_FLOOD: return "too many control frames queued (PING/SETTINGS flood)";
	case WF_H2_OUTBOUND_FLOOD: return "too many frames queued for a peer that does not read";
	case WF_H2_EMPTY_FRAMES: return "too many consecutive empty frames";
	case WF_H2_PRIORITY_FLOOD: return "too many PRIORITY frames";
	case WF_H2_WINDOW_UPDATE_FLOOD: return "too many WINDOW_UPDATE frames";
	}
	return "?";
}

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* ---- output ---------------------------------------------------------------------------------- */

/* Room for a frame of len payload bytes at the end of `out`: its 9-byte header is written,
 * the payload's place returned. */
static uint8_t *frame(struct wf_h2 *h, uint32_t len, uint8_t type, uint8_t flags, int32_t sid)
{
	if (wf_buf_reserve(&h->out, h->pool, 9 + len, UINT32_MAX) < (int)(9 + len))
		return NULL;
	if (type != F_DATA) {
		if (h->oq_n == h->oq_cap) { /* grow the ring, oldest first again */
			uint32_t cap = h->oq_cap ? h->oq_cap * 2 : 16;
			struct queued *q = malloc(cap * sizeof(*q));
			for (uint32_t i = 0; i < h->oq_n; i++)
				q[i] = h->oq[(h->oq_head + i) % h->oq_cap];
			free(h->oq);
			h->oq = q, h->oq_cap = cap, h->oq_head = 0;
		}
		h->oq[(h->oq_head + h->oq_n++) % h->oq_cap] = (struct queued){h->out_done + wf_buf_len(&h->out), 0};
		h->out_frames++;
	}
	uint8_t *p = (uint8_t *)h->out.p + h->out.w;
	p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
	p[3] = type, p[4] = flags;
	put32(p + 5, (uint32_t)sid & 0x7fffffffu);
	h->out.w += 9 + len;
	return p + 9;
}

static void control_frame(struct wf_h2 *h, uint8_t type, uint8_t flags, int32_t sid, const uint8_t *payload, uint32_t len)
{
	uint8_t *p = frame(h, len, type, flags, sid);
	if (!p)
		return;
	if (len)
		memcpy(p, payload, len);
	h->oq[(h->oq_head + h->oq_n - 1) % h->oq_cap].control = 1;
	h->out_control++;
}

static void send_rst(struct wf_h2 *h, int32_t sid, uint32_t code)
{
	uint8_t b[4];
	put32(b, code);
	control_frame(h, F_RST_STREAM, 0, sid, b, 4);
}

static void send_window_update(struct wf_h2 *h, int32_t sid, uint32_t inc)
{
	uint8_t b[4];
	put32(b, inc);
	uint8_t *p = frame(h, 4, F_WINDOW_UPDATE, 0, sid);
	if (p)
		memcpy(p, b, 4);
}

static void send_goaway(struct wf_h2 *h, uint32_t code)
{
	uint8_t b[8];
	h->goaway_last = h->last_peer_id;
	put32(b, (uint32_t)h->goaway_last);
	put32(b + 4, code);
	control_frame(h, F_GOAWAY, 0, 0, b, 8);
	h->goaway_sent = 1;
}

/* A connection error: GOAWAY with the code, and nothing more is read. */
static int fail_code(struct wf_h2 *h, enum wf_h2_error e, uint32_t code)
{
	if (!h->fatal) {
		h->fatal = 1;
		h->err = e;
		send_goaway(h, code);
	}
	return -1;
}

static int fail(struct wf_h2 *h, enum wf_h2_error e)
{
	return fail_code(h, e, e == WF_H2_PROTOCOL ? E_PROTOCOL : E_ENHANCE_YOUR_CALM);
}

/* Header block fragments: HEADERS, then CONTINUATIONs of at most the peer's frame size. */
static int send_headers(struct wf_h2 *h, int32_t sid, const struct wf_hdr *hdrs, uint32_t n, int end_stream);

/* ---- streams ------------------------------------------------------------------------------------ */

static __thread struct stream *free_streams;
static __thread unsigned n_free_streams;

static struct stream *stream_of(const struct wf_h2 *h, int32_t id)
{
	for (struct stream *st = h->tab[(uint32_t)id & h->tab_mask]; st; st = st->hnext)
		if (st->id == id)
			return st;
	return NULL;
}

static void tab_grow(struct wf_h2 *h)
{
	uint32_t n = (h->tab_mask + 1) * 2;
	struct stream **t = calloc(n, sizeof(*t));
	for (struct stream *st = h->all; st; st = st->next) {
		st->hnext = t[(uint32_t)st->id & (n - 1)];
		t[(uint32_t)st->id & (n - 1)] = st;
	}
	free(h->tab);
	h->tab = t;
	h->tab_mask = n - 1;
}

static struct stream *stream_new(struct wf_h2 *h, int32_t id)
{
	struct stream *st = free_streams;
	if (st) {
		free_streams = st->next;
		n_free_streams--;
		memset(st, 0, sizeof(*st));
	} else {
		st = calloc(1, sizeof(*st));
	}
	st->id = id;
	if (++h->n_open > h->tab_mask + 1)
		tab_grow(h); /* rehashes h->all, which st is not in yet */
	st->next = h->all;
	if (h->all)
		h->all->prev = st;
	h->all = st;
	st->hnext = h->tab[(uint32_t)id & h->tab_mask];
	h->tab[(uint32_t)id & h->tab_mask] = st;
	st->send_win = h->peer_initial_window;
	st->recv_win = h->lim.initial_stream_window > WINDOW_MAX ? WINDOW_MAX : h->lim.initial_stream_window;
	st->content_length = -1;
	h->streams_opened++;
	return st;
}

/* Take st out of a singly linked FIFO (head, tail) whose links are at next_off in a stream. */
static void fifo_unlink(struct stream **head, struct stream **tail, struct stream *st, size_t next_off)
{
#define NEXT(x) (*(struct stream **)((char *)(x) + next_off))
	struct stream **pp = head, *last = NULL;
	while (*pp != st)
		last = *pp, pp = &NEXT(*pp);
	*pp = NEXT(st);
	if (*tail == st)
		*tail = last;
#undef NEXT
}

/* DATA the stream has to send, copied or lent. */
static size_t pending(const struct stream *st) { return wf_buf_len(&st->q) + st->lent_len; }

/* Give back the stream's first lent bytes. */
static void lent_pop(struct stream *st)
{
	struct lent *l = st->lent;
	st->lent = l->next;
	if (!st->lent)
		st->lent_tail = NULL;
	st->lent_len -= l->n;
	l->done(l->arg);
	free(l);
}

static void stream_free(struct wf_h2 *h, struct stream *st)
{
	struct stream **pp = &h->tab[(uint32_t)st->id & h->tab_mask];
	while (*pp != st)
		pp = &(*pp)->hnext;
	*pp = st->hnext;
	if (st->prev)
		st->prev->next = st->next;
	else
		h->all = st->next;
	if (st->next)
		st->next->prev = st->prev;
	if (st->in_ready)
		fifo_unlink(&h->ready, &h->ready_tail, st, offsetof(struct stream, rnext));
	if (st->unopened) {
		fifo_unlink(&h->unopened, &h->unopened_tail, st, offsetof(struct stream, onext));
		h->n_unopened--;
		free(st->head);
	}
	h->n_open--;
	wf_buf_release(&st->q, h->pool);
	while (st->lent)
		lent_pop(st);
	free(st->trailers);
#ifndef __SANITIZE_ADDRESS__
	if (n_free_streams < 256) {
		st->next = free_streams;
		free_streams = st;
		n_free_streams++;
		return;
	}
#endif
	free(st);
}

/* The stream is over: closed once it is safe to call the owner (receive or send time). */
static void want_close(struct wf_h2 *h, struct stream *st)
{
	if (!st->in_closing) {
		st->in_closing = 1;
		st->cnext = h->closing;
		h->closing = st;
	}
}

static void maybe_done(struct wf_h2 *h, struct stream *st)
{
	if (st->end_sent && st->peer_done)
		want_close(h, st);
}

/* Reset a stream (RST_STREAM with the code) and close it. */
static void reset_stream(struct wf_h2 *h, struct stream *st, uint32_t code)
{
	if (st->reset)
		return;
	/* a stream ended both ways is closed (§5.1): a reset would only tell the peer of a stream
	 * it has forgotten; nor has the peer heard of a stream still waiting to open */
	if (!st->unopened && !(st->end_sent && st->peer_done))
		send_rst(h, st->id, code);
	st->reset = 1;
	st->reset_code = code;
	want_close(h, st);
}

static void close_pending(struct wf_h2 *h)
{
	while (h->closing) {
		struct stream *st = h->closing;
		h->closing = st->cnext;
		if (st->id == h->head_sid)
			h->head_sid = 0;
		h->ops->closed(h->ctx, st->id, st->reset ? st->reset_code : 0); /* the owner may still look it up */
		h->streams_closed++;
		stream_free(h, st);
	}
	if (h->server && h->streams_closed >= 100 && h->premature_resets * 2 >= h->streams_closed)
		fail(h, WF_H2_RAPID_RESET);
}

static void make_ready(struct wf_h2 *h, struct stream *st)
{
	if (st->in_ready || st->reset)
		return;
	st->in_ready = 1;
	st->rnext = NULL;
	if (h->ready_tail)
		h->ready_tail->rnext = st;
	else
		h->ready = st;
	h->ready_tail = st;
}

/* ---- receiving: header blocks -------------------------------------------------------------------- */

static int emit_field(void *ctx, const char *name, uint32_t nl, const char *value, uint32_t vl, unsigned how)
{
	struct wf_h2 *h = ctx;
	if (h->n_fl >= h->lim.max_headers) {
		h->fl_overflow = 1;
		return WF_HPACK_TOO_LARGE; /* too many fields: as too many bytes */
	}
	if (h->fv_len + nl + vl > h->fv_cap || !h->fv) {
		while (h->fv_len + nl + vl > h->fv_cap || !h->fv_cap)
			h->fv_cap = h->fv_cap ? h->fv_cap * 2 : 1024;
		h->fv = realloc(h->fv, h->fv_cap);
	}
	if (h->n_fl == h->cap_fl) {
		h->cap_fl = h->cap_fl ? h->cap_fl * 2 : 32;
		h->fl = realloc(h->fl, h->cap_fl * sizeof(*h->fl));
		h->fl_how = realloc(h->fl_how, h->cap_fl);
	}
	char *p = h->fv + h->fv_len;
	memcpy(p, name, nl);
	memcpy(p + nl, value, vl);
	/* offsets until the block is decoded (fv may move): header_block makes them pointers */
	h->fl_how[h->n_fl] = (uint8_t)how;
	h->fl[h->n_fl++] = (struct wf_hdr){(const char *)(uintptr_t)h->fv_len, (const char *)(uintptr_t)(h->fv_len + nl), nl, vl};
	h->fv_len += nl + vl;
	return 0;
}

/* Server: the peer's HEADERS opens stream sid (the stream exists while its head arrives, so
 * that a request_headers_timeout can answer it). */
static int open_stream(struct wf_h2 *h, int32_t sid)
{
	if (!(sid & 1))
		return fail(h, WF_H2_PROTOCOL);
	h->last_peer_id = sid;
	if (h->goaway_sent)
		return 0; /* after our GOAWAY: not processed */
	if (h->n_open >= h->lim.max_concurrent_streams) {
		/* over a limit the peer has acknowledged: it breaks the protocol (§5.1.2) */
		if (h->settings_acked)
			return fail(h, WF_H2_PROTOCOL);
		reset_stream(h, stream_new(h, sid), E_REFUSED_STREAM);
		return 0;
	}
	stream_new(h, sid);
	h->head_sid = sid;
	return 0;
}

/* A whole header block for stream sid arrived (flags: its HEADERS flags). */
static int header_block(struct wf_h2 *h, int32_t sid, uint8_t flags, const uint8_t *p, size_t n)
{
	int end = (flags & FL_END_STREAM) != 0;
	if (sid == h->head_sid)
		h->head_sid = 0;
	h->fv_len = h->n_fl = 0;
	h->fl_overflow = 0;
	int r = wf_hpack_decode(&h->dec, p, n, h->lim.max_header_list, emit_field, h);
	if (r == WF_HPACK_ERROR)
		return fail_code(h, WF_H2_PROTOCOL, E_COMPRESSION);
	int too_large = r == WF_HPACK_TOO_LARGE || h->fl_overflow;
	for (uint32_t i = 0; i < h->n_fl; i++) {
		h->fl[i].name = h->fv + (uintptr_t)h->fl[i].name;
		h->fl[i].value = h->fv + (uintptr_t)h->fl[i].value;
	}
	struct stream *st = stream_of(h, sid);
	enum wf_h2_block kind;
	if (h->server) {
		if (!st)
			return 0; /* closed, refused, or after our GOAWAY: the block kept HPACK in step */
		kind = st->head_seen ? WF_H2B_TRAILERS : WF_H2B_REQUEST;
	} else {
		if (!st)
			return sid > h->next_id - 2 || !(sid & 1) ? fail(h, WF_H2_PROTOCOL) : 0;
		kind = st->final_seen ? WF_H2B_TRAILERS : WF_H2B_RESPONSE;
	}
	if (st->peer_done || st->reset) {
		if (!st->reset)
			reset_stream(h, st, E_STREAM_CLOSED);
		return 0;
	}
	if (kind == WF_H2B_TRAILERS && !end) { /* a trailer section ends the stream (§8.1) */
		reset_stream(h, st, E_PROTOCOL);
		return 0;
	}
	if (too_large) {
		/* an HPACK bomb decodes to far more than it weighs: refuse the stream, and count it */
		h->premature_resets++;
		if (h->ops->header_overflow)
			h->ops->header_overflow(h->ctx, sid);
		reset_stream(h, st, E_INTERNAL);
		return 0;
	}
	struct wf_h2_msg m;
	if (wf_h2_check_fields(h->fl, h->fl_how, h->n_fl, kind, h->server && h->lim.connect_protocol, &m) < 0) {
		reset_stream(h, st, E_PROTOCOL);
		return 0;
	}
	if (kind == WF_H2B_RESPONSE && m.status >= 200)
		st->final_seen = 1;
	if (kind == WF_H2B_RESPONSE && m.status < 200 && end) {
		reset_stream(h, st, E_PROTOCOL); /* a 1xx cannot end the stream */
		return 0;
	}
	if (kind != WF_H2B_TRAILERS && (kind == WF_H2B_REQUEST || m.status >= 200))
		st->content_length = m.connect || st->bodiless || m.status == 204 || m.status == 304 ? -1 : m.content_length;
	st->head_seen = 1;
	if (end) {
		st->peer_done = 1;
		if (st->content_length > 0 && kind != WF_H2B_TRAILERS) {
			reset_stream(h, st, E_PROTOCOL); /* declared a body and sent none */
			return 0;
		}
	}
	if (h->server && kind == WF_H2B_REQUEST && st->local_done) {
		maybe_done(h, st);
		return 0; /* answered before its head was complete (request_headers_timeout) */
	}
	if (h->ops->headers(h->ctx, sid, h->fl, h->n_fl, end, kind == WF_H2B_TRAILERS) < 0)
		reset_stream(h, st, E_INTERNAL);
	else
		maybe_done(h, st);
	return 0;
}

static int gather(struct wf_h2 *h, const uint8_t *p, size_t n)
{
	if (h->hb_len + n > h->hb_cap || !h->hb) { /* (allocated even for an empty fragment) */
		while (h->hb_len + n > h->hb_cap || !h->hb_cap)
			h->hb_cap = h->hb_cap ? h->hb_cap * 2 : 4096;
		h->hb = realloc(h->hb, h->hb_cap);
	}
	memcpy(h->hb + h->hb_len, p, n);
	h->hb_len += (uint32_t)n;
	return 0;
}

/* ---- receiving: frames ------------------------------------------------------------------------- */

/* Strip padding: the payload without its Pad Length byte and padding, or -1 (PROTOCOL_ERROR). */
static int unpad(uint8_t flags, const uint8_t **p, uint32_t *len)
{
	if (!(flags & FL_PADDED))
		return 0;
	if (*len < 1 || (*p)[0] >= *len)
		return -1;
	uint32_t pad = (*p)[0];
	*p += 1;
	*len -= 1 + pad;
	return 0;
}

static void consume_connection(struct wf_h2 *h, uint32_t n)
{
	h->unacked += n;
	int64_t initial = h->lim.initial_connection_window > WINDOW_MAX ? WINDOW_MAX : (int64_t)h->lim.initial_connection_window;
	if (initial < 65535)
		initial = 65535;
	if (h->unacked >= initial / 2 && !h->fatal) {
		send_window_update(h, 0, h->unacked);
		h->recv_win += h->unacked;
		h->unacked = 0;
	}
}

static int on_data(struct wf_h2 *h, uint8_t flags, int32_t sid, const uint8_t *p, uint32_t len)
{
	uint32_t flen = len;
	if (!sid)
		return fail(h, WF_H2_PROTOCOL);
	if (unpad(flags, &p, &len) < 0)
		return fail(h, WF_H2_PROTOCOL);
	h->recv_win -= flen;
	if (h->recv_win < 0)
		return fail_code(h, WF_H2_PROTOCOL, E_FLOW_CONTROL);
	struct stream *st = stream_of(h, sid);
	if (!st) {
		if ((h->server && sid > h->last_peer_id) || (!h->server && sid >= h->next_id))
			return fail(h, WF_H2_PROTOCOL); /* an idle stream */
		consume_connection(h, flen); /* a closed stream's: nobody wants it */
		return 0;
	}
	if (flen - len)
		consume_connection(h, flen - len); /* padding is acknowledged at once */
	if (st->peer_done || !st->head_seen) {
		consume_connection(h, len);
		if (!st->reset)
			reset_stream(h, st, st->peer_done ? E_STREAM_CLOSED : E_PROTOCOL);
		return 0;
	}
	st->recv_win -= flen;
	if (st->recv_win < 0) {
		consume_connection(h, len);
		reset_stream(h, st, E_FLOW_CONTROL);
		return 0;
	}
	if (st->reset) {
		consume_connection(h, len);
		return 0;
	}
	st->received += len;
	int end = (flags & FL_END_STREAM) != 0;
	if (st->content_length >= 0 && (st->received > st->content_length || (end && st->received != st->content_length))) {
		consume_connection(h, len);
		reset_stream(h, st, E_PROTOCOL);
		return 0;
	}
	if (end)
		st->peer_done = 1;
	if (len && h->ops->data(h->ctx, sid, p, len, 0) < 0) {
		reset_stream(h, st, E_INTERNAL);
		return 0;
	}
	if (end) {
		if (h->ops->data(h->ctx, sid, NULL, 0, 1) < 0)
			reset_stream(h, st, E_INTERNAL);
		else
			maybe_done(h, st);
	}
	return 0;
}

static int on_settings(struct wf_h2 *h, uint8_t flags, int32_t sid, const uint8_t *p, uint32_t len)
{
	if (sid)
		return fail(h, WF_H2_PROTOCOL);
	if (flags & FL_ACK) {
		h->settings_acked = 1;
		return len ? fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE) : 0;
	}
	if (len % 6)
		return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
	for (uint32_t i = 0; i < len; i += 6) {
		uint16_t id = (uint16_t)(p[i] << 8 | p[i + 1]);
		uint32_t v = get32(p + i + 2);
		switch (id) {
		case S_HEADER_TABLE_SIZE:
			wf_hpack_enc_peer_max(&h->enc, v);
			break;
		case S_ENABLE_PUSH:
			if (v > 1 || (!h->server && v))
				return fail(h, WF_H2_PROTOCOL);
			break;
		case S_MAX_CONCURRENT_STREAMS:
			h->peer_max_streams = v;
			break;
		case S_INITIAL_WINDOW_SIZE: {
			if (v > WINDOW_MAX)
				return fail_code(h, WF_H2_PROTOCOL, E_FLOW_CONTROL);
			int64_t delta = (int64_t)v - h->peer_initial_window;
			h->peer_initial_window = v;
			for (struct stream *st = h->all; st; st = st->next) {
				st->send_win += delta;
				if (st->send_win > WINDOW_MAX)
					return fail_code(h, WF_H2_PROTOCOL, E_FLOW_CONTROL);
				if (delta > 0 && (pending(st) || (st->end && !st->end_sent)))
					make_ready(h, st);
			}
			break;
		}
		case S_MAX_FRAME_SIZE:
			if (v < 16384 || v > 16777215)
				return fail(h, WF_H2_PROTOCOL);
			h->peer_max_frame = v;
			break;
		case S_ENABLE_CONNECT_PROTOCOL:
			if (v > 1)
				return fail(h, WF_H2_PROTOCOL);
			break;
		}
	}
	h->settings_seen = 1;
	control_frame(h, F_SETTINGS, FL_ACK, 0, NULL, 0);
	return 0;
}

static int on_window_update(struct wf_h2 *h, int32_t sid, const uint8_t *p, uint32_t len)
{
	if (len != 4)
		return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
	if (++h->window_updates > 10 + 2 * h->streams_opened + (uint64_t)h->lim.max_window_updates_per_data_sent * h->data_frames_sent)
		return fail(h, WF_H2_WINDOW_UPDATE_FLOOD);
	uint32_t inc = get32(p) & 0x7fffffffu;
	if (!sid) {
		if (!inc)
			return fail(h, WF_H2_PROTOCOL);
		h->send_win += inc;
		if (h->send_win > WINDOW_MAX)
			return fail_code(h, WF_H2_PROTOCOL, E_FLOW_CONTROL);
		for (struct stream *st = h->all; st; st = st->next) /* those the connection's window held */
			if (pending(st))
				make_ready(h, st);
		return 0;
	}
	struct stream *st = stream_of(h, sid);
	if (!st) {
		if ((h->server && sid > h->last_peer_id) || (!h->server && sid >= h->next_id))
			return fail(h, WF_H2_PROTOCOL);
		return 0;
	}
	if (!inc) {
		reset_stream(h, st, E_PROTOCOL);
		return 0;
	}
	st->send_win += inc;
	if (st->send_win > WINDOW_MAX) {
		reset_stream(h, st, E_FLOW_CONTROL);
		return 0;
	}
	if (pending(st) || (st->end && !st->end_sent))
		make_ready(h, st);
	return 0;
}

static int on_rst_stream(struct wf_h2 *h, int32_t sid, const uint8_t *p, uint32_t len)
{
	if (!sid)
		return fail(h, WF_H2_PROTOCOL);
	if (len != 4)
		return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
	struct stream *st = stream_of(h, sid);
	if (!st) {
		if ((h->server && sid > h->last_peer_id) || (!h->server && sid >= h->next_id))
			return fail(h, WF_H2_PROTOCOL);
		return 0;
	}
	/* a reset before our answer was complete: the shape of a rapid-reset attack when most
	 * streams end so (Envoy's rule: half of at least 100 closed streams) */
	if (!st->local_done)
		h->premature_resets++;
	if (!st->reset) {
		st->reset = 1;
		st->reset_code = get32(p);
		want_close(h, st);
	}
	return 0;
}

static int on_goaway(struct wf_h2 *h, int32_t sid, const uint8_t *p, uint32_t len)
{
	if (sid)
		return fail(h, WF_H2_PROTOCOL);
	if (len < 8)
		return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
	int32_t last = (int32_t)(get32(p) & 0x7fffffffu);
	h->goaway_received = 1;
	if (h->ops->goaway)
		h->ops->goaway(h->ctx, last, get32(p + 4));
	if (!h->server) /* our streams the server will not process: refused, safe to send again */
		for (struct stream *st = h->all; st; st = st->next)
			if (st->id > last && !st->reset) {
				st->reset = 1;
				st->reset_code = E_REFUSED_STREAM;
				want_close(h, st);
			}
	return 0;
}

/* One whole frame. <0: the connection failed. */
static int on_frame(struct wf_h2 *h, const uint8_t *hd, const uint8_t *p)
{
	uint32_t len = (uint32_t)hd[0] << 16 | (uint32_t)hd[1] << 8 | hd[2];
	uint8_t type = hd[3], flags = hd[4];
	int32_t sid = (int32_t)(get32(hd + 5) & 0x7fffffffu);
	if (!h->settings_seen && type != F_SETTINGS)
		return fail(h, WF_H2_PROTOCOL); /* the preface's SETTINGS comes first */
	if (h->hb_sid && (type != F_CONTINUATION || sid != h->hb_sid))
		return fail(h, WF_H2_PROTOCOL); /* a header block's frames are contiguous */
	/* frames that carry nothing and do not end anything: a cheap way to keep a peer busy */
	int empty = !len && !(flags & FL_END_STREAM) && (type == F_DATA || type == F_CONTINUATION);
	if (!empty)
		h->empty_run = 0;
	else if (++h->empty_run > h->lim.max_consecutive_empty_frames)
		return fail(h, WF_H2_EMPTY_FRAMES);
	switch (type) {
	case F_DATA:
		return on_data(h, flags, sid, p, len);
	case F_HEADERS:
		if (!sid || unpad(flags, &p, &len) < 0)
			return fail(h, WF_H2_PROTOCOL);
		if (flags & FL_PRIORITY) {
			if (len < 5)
				return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
			p += 5, len -= 5;
		}
		if (h->server && sid > h->last_peer_id && open_stream(h, sid) < 0)
			return -1;
		if (flags & FL_END_HEADERS)
			return header_block(h, sid, flags, p, len);
		h->hb_sid = sid;
		h->hb_flags = flags;
		h->hb_len = 0;
		h->continuations = 0;
		return gather(h, p, len);
	case F_CONTINUATION:
		if (!h->hb_sid)
			return fail(h, WF_H2_PROTOCOL);
		if (++h->continuations > h->lim.max_continuations)
			return fail(h, WF_H2_CONTINUATION_FLOOD);
		gather(h, p, len);
		if (!(flags & FL_END_HEADERS))
			return 0;
		h->hb_sid = 0;
		return header_block(h, sid, h->hb_flags, h->hb, h->hb_len);
	case F_PRIORITY:
		if (!sid)
			return fail(h, WF_H2_PROTOCOL);
		if (len != 5)
			return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
		if (++h->priority_frames > (uint64_t)h->lim.max_priority_frames_per_stream * (1 + h->streams_opened))
			return fail(h, WF_H2_PRIORITY_FLOOD);
		return 0;
	case F_RST_STREAM:
		return on_rst_stream(h, sid, p, len);
	case F_SETTINGS:
		return on_settings(h, flags, sid, p, len);
	case F_PUSH_PROMISE:
		return fail(h, WF_H2_PROTOCOL); /* pushes are disabled (and a client never pushes) */
	case F_PING:
		if (sid)
			return fail(h, WF_H2_PROTOCOL);
		if (len != 8)
			return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
		if (!(flags & FL_ACK))
			control_frame(h, F_PING, FL_ACK, 0, p, 8);
		return 0;
	case F_GOAWAY:
		return on_goaway(h, sid, p, len);
	case F_WINDOW_UPDATE:
		return on_window_update(h, sid, p, len);
	}
	return 0; /* an unknown type is ignored (§5.5) */
}

int wf_h2_recv(struct wf_h2 *h, const uint8_t *p, size_t n)
{
	if (h->fatal)
		return -1;
	while (h->server && h->preface_seen < PREFACE_LEN && n) {
		if (*p != (uint8_t)PREFACE[h->preface_seen])
			return fail(h, WF_H2_PROTOCOL);
		h->preface_seen++, p++, n--;
	}
	while (n && !h->fatal) {
		const uint8_t *f;
		uint32_t have;
		if (h->fb_len || n < 9) {
			if (!h->fb)
				h->fb = malloc(9 + FRAME_MAX);
			/* gather a split frame: its header first, then its payload */
			uint32_t need = 9;
			if (h->fb_len >= 9)
				need = 9 + ((uint32_t)h->fb[0] << 16 | (uint32_t)h->fb[1] << 8 | h->fb[2]);
			uint32_t take = need - h->fb_len < n ? need - h->fb_len : (uint32_t)n;
			memcpy(h->fb + h->fb_len, p, take);
			h->fb_len += take, p += take, n -= take;
			if (h->fb_len < need)
				continue;
			if (need == 9) {
				uint32_t len = (uint32_t)h->fb[0] << 16 | (uint32_t)h->fb[1] << 8 | h->fb[2];
				if (len > FRAME_MAX)
					return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
				if (len)
					continue;
			}
			f = h->fb;
			have = h->fb_len;
			h->fb_len = 0;
		} else {
			uint32_t len = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
			if (len > FRAME_MAX)
				return fail_code(h, WF_H2_PROTOCOL, E_FRAME_SIZE);
			if (n < 9 + len) {
				if (!h->fb)
					h->fb = malloc(9 + FRAME_MAX);
				memcpy(h->fb, p, n);
				h->fb_len = (uint32_t)n;
				break;
			}
			f = p;
			have = 9 + len;
			p += have, n -= have;
		}
		(void)have;
		if (on_frame(h, f, f + 9) < 0)
			break;
		close_pending(h);
	}
	close_pending(h);
	if (!h->fatal && h->out_control > h->lim.max_outbound_control_frames)
		fail(h, WF_H2_CONTROL_FLOOD);
	if (!h->fatal && h->out_frames > h->lim.max_outbound_frames)
		fail(h, WF_H2_OUTBOUND_FLOOD);
	return h->fatal ? -1 : 0;
}

/* ---- sending --------------------------------------------------------------------------------- */

/* HPACK flags by field name. Fields whose value changes with every message: indexing them in
 * the dynamic table would only push out the ones that repeat. Of those, the random identifiers
 * are unique. */
static uint8_t field_flags(const char *name, size_t n)
{
#define IS(lit) (!memcmp(name, lit, sizeof(lit) - 1))
	enum { CHANGES = WF_HPACK_NO_INDEX, UNIQUE = WF_HPACK_NO_INDEX | WF_HPACK_UNIQUE };
	switch (n) {
	case 4: return IS("date") ? CHANGES : 0;
	case 11: return IS("traceparent") || IS("x-b3-spanid") ? UNIQUE : 0;
	case 12: return IS("x-request-id") || IS("x-b3-traceid") ? UNIQUE : 0;
	case 14: return IS("content-length") ? CHANGES : 0;
	case 29: return IS("x-envoy-upstream-service-time") ? CHANGES : 0;
	}
	return 0;
#undef IS
}

/* The names lower-cased (HTTP/2 field names are lower case) into a per-thread scratch list. */
static __thread struct wf_hdr *scratch;
static __thread uint8_t *scratch_flags;
static __thread char *scratch_names;
static __thread uint32_t scratch_cap, scratch_names_cap;

static int send_headers(struct wf_h2 *h, int32_t sid, const struct wf_hdr *hdrs, uint32_t n, int end_stream)
{
	size_t names = 0;
	for (uint32_t i = 0; i < n; i++)
		names += hdrs[i].name_len;
	if (n > scratch_cap) {
		scratch_cap = n * 2;
		free(scratch);
		free(scratch_flags);
		scratch = malloc(scratch_cap * sizeof(*scratch));
		scratch_flags = malloc(scratch_cap);
	}
	if (names + 1 > scratch_names_cap) {
		scratch_names_cap = (uint32_t)(names + 1) * 2;
		free(scratch_names);
		scratch_names = malloc(scratch_names_cap);
	}
	char *o = scratch_names;
	for (uint32_t i = 0; i < n; i++) {
		wf_lower_copy(o, hdrs[i].name, hdrs[i].name_len);
		scratch[i] = (struct wf_hdr){o, hdrs[i].value, hdrs[i].name_len, hdrs[i].value_len};
		scratch_flags[i] = field_flags(o, hdrs[i].name_len);
		o += hdrs[i].name_len;
	}
	size_t bound = wf_hpack_encode_bound(scratch, n);
	uint32_t max = h->peer_max_frame;
	if (bound <= max) {
		/* the usual case: one HEADERS frame, encoded in place and its length set after */
		uint8_t *p = frame(h, (uint32_t)bound, F_HEADERS, (uint8_t)(FL_END_HEADERS | (end_stream ? FL_END_STREAM : 0)), sid);
		if (!p)
			return -1;
		size_t len = wf_hpack_encode(&h->enc, scratch, n, scratch_flags, p);
		p[-9] = (uint8_t)(len >> 16), p[-8] = (uint8_t)(len >> 8), p[-7] = (uint8_t)len;
		h->out.w -= (uint32_t)(bound - len);
		return 0;
	}
	uint8_t *blk = malloc(bound);
	size_t len = wf_hpack_encode(&h->enc, scratch, n, scratch_flags, blk);
	size_t off = 0;
	do {
		uint32_t k = len - off > max ? max : (uint32_t)(len - off);
		int last = off + k == len;
		uint8_t fl = (uint8_t)(last ? FL_END_HEADERS : 0);
		uint8_t *p = off ? frame(h, k, F_CONTINUATION, fl, sid)
		                 : frame(h, k, F_HEADERS, (uint8_t)(fl | (end_stream ? FL_END_STREAM : 0)), sid);
		if (p)
			memcpy(p, blk + off, k);
		off += k;
	} while (off < len);
	free(blk);
	return 0;
}

static void open_waiting(struct wf_h2 *h);

/* Copy the stream's next k bytes to p, in order: from q, and from each lent piece once what q
 * held before it went. */
static void take(struct wf_h2 *h, struct stream *st, uint8_t *p, size_t k)
{
	while (k) {
		struct lent *l = st->lent;
		size_t c;
		if (l && l->at == st->q_out) {
			c = k < l->n ? k : l->n;
			memcpy(p, l->p, c);
			l->p += c;
			l->n -= c;
			st->lent_len -= c;
			if (!l->n)
				lent_pop(st);
		} else {
			c = wf_buf_len(&st->q);
			if (l && c > l->at - st->q_out)
				c = (size_t)(l->at - st->q_out);
			if (c > k)
				c = k;
			memcpy(p, wf_buf_data(&st->q), c);
			wf_buf_consume(&st->q, h->pool, (uint32_t)c);
			st->q_out += c;
		}
		p += c;
		k -= c;
	}
}

/* Frame a stream's queued DATA, as far as the windows go. */
static void frame_stream(struct wf_h2 *h, struct stream *st)
{
	/* a long queue: room for all the frames this call may write, once (growing the output
	 * frame by frame would copy it at each doubling) */
	size_t most = (size_t)OUT_CHUNK + 9 + h->peer_max_frame, have = wf_buf_len(&h->out);
	if (pending(st) > WF_BLOCK && have < most)
		wf_buf_reserve(&h->out, h->pool, (uint32_t)(most - have), UINT32_MAX);
	while (!st->reset && !st->end_sent && !st->unopened) {
		size_t avail = pending(st);
		int64_t win = st->send_win < h->send_win ? st->send_win : h->send_win;
		if (avail && win <= 0)
			return; /* blocked: ready again when a WINDOW_UPDATE comes */
		uint32_t k = avail < (size_t)h->peer_max_frame ? (uint32_t)avail : h->peer_max_frame;
		if (k > win)
			k = (uint32_t)win;
		int last = k == avail && st->end;
		if (!k && !last)
			return;
		uint8_t fl = (uint8_t)(last && !st->trailers ? FL_END_STREAM : 0);
		uint8_t *p = frame(h, k, F_DATA, fl, st->id);
		if (!p)
			return;
		take(h, st, p, k);
		st->send_win -= k;
		h->send_win -= k;
		h->data_frames_sent++;
		if (last) {
			if (st->trailers) {
				send_headers(h, st->id, st->trailers, st->n_trailers, 1);
				free(st->trailers);
				st->trailers = NULL;
			}
			st->end_sent = 1;
			maybe_done(h, st);
		}
		if (!pending(st)) {
			if (h->ops->drained)
				h->ops->drained(h->ctx, st->id);
			return;
		}
		if (wf_buf_len(&h->out) >= OUT_CHUNK) {
			make_ready(h, st); /* more next time */
			return;
		}
	}
}

size_t wf_h2_send_pending(struct wf_h2 *h, const uint8_t **p)
{
	if (h->unopened)
		open_waiting(h);
	while (h->ready && wf_buf_len(&h->out) < OUT_CHUNK && (h->send_win > 0 || !wf_buf_len(&h->ready->q))) {
		struct stream *st = h->ready;
		h->ready = st->rnext;
		if (!h->ready)
			h->ready_tail = NULL;
		st->in_ready = 0;
		frame_stream(h, st);
	}
	close_pending(h);
	size_t n = wf_buf_len(&h->out);
	*p = n ? (const uint8_t *)wf_buf_data(&h->out) : NULL;
	return n;
}

/* n more bytes of output left the codec: the frames they begin are no longer queued. */
static void out_left(struct wf_h2 *h, size_t n)
{
	h->out_done += n;
	while (h->oq_n && h->oq[h->oq_head].start < h->out_done) { /* begun to leave: gone */
		h->out_frames--;
		h->out_control -= h->oq[h->oq_head].control;
		h->oq_head = (h->oq_head + 1) % h->oq_cap;
		h->oq_n--;
	}
}

void wf_h2_sent(struct wf_h2 *h, size_t n)
{
	wf_buf_consume(&h->out, h->pool, (uint32_t)n);
	out_left(h, n);
}

int wf_h2_hand_out(struct wf_h2 *h, struct wf_buf *dst, struct wf_pool *pool)
{
	if (wf_buf_len(dst) || pool != h->pool)
		return -1;
	size_t n = wf_buf_len(&h->out);
	wf_buf_release(dst, pool);
	*dst = h->out;
	memset(&h->out, 0, sizeof(h->out));
	out_left(h, n);
	return 0;
}

/* ---- the owner's calls ------------------------------------------------------------------------- */

/* Client: send the HEADERS of waiting requests, in id order, while the peer's limit allows. */
static void open_waiting(struct wf_h2 *h)
{
	while (h->unopened && h->n_open - h->n_unopened < h->peer_max_streams) {
		struct stream *st = h->unopened;
		h->unopened = st->onext;
		if (!h->unopened)
			h->unopened_tail = NULL;
		h->n_unopened--;
		st->unopened = 0;
		send_headers(h, st->id, st->head, st->n_head, st->end && !pending(st) && !st->trailers);
		if (st->end && !pending(st) && !st->trailers)
			st->end_sent = 1;
		free(st->head);
		st->head = NULL;
		if (pending(st) || (st->end && !st->end_sent))
			make_ready(h, st);
	}
}

int32_t wf_h2_submit_request(struct wf_h2 *h, const struct wf_hdr *hdrs, uint32_t n, int end_stream)
{
	if (h->fatal || h->goaway_received || h->goaway_sent || h->next_id > WINDOW_MAX - 2)
		return -1;
	int32_t id = h->next_id;
	h->next_id += 2;
	struct stream *st = stream_new(h, id);
	st->local_done = (uint8_t)end_stream;
	for (uint32_t i = 0; i < n && hdrs[i].name_len && hdrs[i].name[0] == ':'; i++)
		if (wf_hdr_name_is(&hdrs[i], ":method", 7) && hdrs[i].value_len == 4 && !memcmp(hdrs[i].value, "HEAD", 4))
			st->bodiless = 1;
	st->end = (uint8_t)end_stream;
	if (h->unopened || h->n_open - 1 - h->n_unopened >= h->peer_max_streams) {
		/* the peer takes no more streams now: the request waits for one to end (its HEADERS
		 * must still leave in id order) */
		st->head = wf_hdrs_dup(hdrs, n); /* kept until it can be sent */
		if (!st->head) {
			stream_free(h, st);
			h->streams_opened--;
			return -1;
		}
		st->unopened = 1;
		st->n_head = n;
		if (h->unopened_tail)
			h->unopened_tail->onext = st;
		else
			h->unopened = st;
		h->unopened_tail = st;
		h->n_unopened++;
		return id;
	}
	if (send_headers(h, id, hdrs, n, end_stream) < 0) {
		stream_free(h, st);
		h->streams_opened--;
		return -1;
	}
	st->end_sent = (uint8_t)end_stream;
	return id;
}

int wf_h2_submit_headers(struct wf_h2 *h, int32_t id, const struct wf_hdr *hdrs, uint32_t n, int end_stream)
{
	struct stream *st = stream_of(h, id);
	if (!st || st->reset || st->end_sent)
		return -1;
	if (pending(st) || st->unopened) {
		/* trailers after queued DATA: they leave when the queue is empty */
		if (!end_stream || st->trailers || st->end)
			return -1;
		st->trailers = wf_hdrs_dup(hdrs, n);
		if (!st->trailers)
			return -1;
		st->n_trailers = n;
		st->end = 1;
		st->local_done = 1;
		make_ready(h, st);
		return 0;
	}
	if (send_headers(h, id, hdrs, n, end_stream) < 0)
		return -1;
	if (end_stream) {
		st->local_done = st->end = st->end_sent = 1;
		maybe_done(h, st);
	}
	return 0;
}

void *wf_h2_send_reserve(struct wf_h2 *h, int32_t id, size_t n)
{
	struct stream *st = stream_of(h, id);
	if (!st || st->end || st->reset || n > UINT32_MAX - WF_BLOCK)
		return NULL;
	if (wf_buf_reserve(&st->q, h->pool, n ? (uint32_t)n : 1, UINT32_MAX - WF_BLOCK) < (int)(n ? n : 1))
		return NULL;
	return st->q.p + st->q.w;
}

int wf_h2_send_commit(struct wf_h2 *h, int32_t id, size_t n, int end_stream)
{
	struct stream *st = stream_of(h, id);
	if (!st || st->end || st->reset || n > wf_buf_room(&st->q))
		return -1;
	st->q.w += (uint32_t)n;
	st->q_in += n;
	if (end_stream)
		st->end = st->local_done = 1;
	make_ready(h, st);
	return 0;
}

int wf_h2_send_lent(struct wf_h2 *h, int32_t id, const void *p, size_t n, void (*done)(void *arg), void *arg)
{
	struct stream *st = stream_of(h, id);
	if (!st || st->end || st->reset || !n)
		return -1;
	struct lent *l = malloc(sizeof(*l));
	if (!l)
		return -1;
	*l = (struct lent){NULL, st->q_in, p, n, done, arg};
	if (st->lent_tail)
		st->lent_tail->next = l;
	else
		st->lent = l;
	st->lent_tail = l;
	st->lent_len += n;
	make_ready(h, st);
	return 0;
}

int wf_h2_send_data(struct wf_h2 *h, int32_t id, const void *p, size_t n, int end_stream)
{
	if (n) {
		void *q = wf_h2_send_reserve(h, id, n);
		if (!q)
			return -1;
		memcpy(q, p, n);
	}
	return wf_h2_send_commit(h, id, n, end_stream);
}

void wf_h2_set_owner(struct wf_h2 *h, int32_t id, void *owner)
{
	struct stream *st = stream_of(h, id);
	if (st)
		st->owner = owner;
}

void *wf_h2_owner(struct wf_h2 *h, int32_t id)
{
	struct stream *st = stream_of(h, id);
	return st ? st->owner : NULL;
}

size_t wf_h2_stream_queued(struct wf_h2 *h, int32_t id)
{
	struct stream *st = stream_of(h, id);
	return st ? pending(st) : 0;
}

void wf_h2_consume(struct wf_h2 *h, int32_t id, size_t n)
{
	if (!n || h->fatal)
		return;
	consume_connection(h, (uint32_t)n);
	struct stream *st = stream_of(h, id);
	if (!st || st->peer_done || st->reset)
		return;
	st->unacked += (uint32_t)n;
	int64_t initial = h->lim.initial_stream_window > WINDOW_MAX ? WINDOW_MAX : (int64_t)h->lim.initial_stream_window;
	if (st->unacked >= initial / 2) {
		send_window_update(h, id, st->unacked);
		st->recv_win += st->unacked;
		st->unacked = 0;
	}
}

void wf_h2_reset(struct wf_h2 *h, int32_t id, uint32_t code)
{
	struct stream *st = stream_of(h, id);
	if (st)
		reset_stream(h, st, code);
}

void wf_h2_goaway(struct wf_h2 *h, uint32_t code)
{
	if (!h->goaway_sent && !h->fatal)
		send_goaway(h, code);
}

void wf_h2_ping(struct wf_h2 *h)
{
	static const uint8_t opaque[8];
	if (!h->fatal)
		control_frame(h, F_PING, 0, 0, opaque, 8);
}

uint32_t wf_h2_peer_max_streams(const struct wf_h2 *h)
{
	return h->peer_max_streams;
}

uint32_t wf_h2_streams(const struct wf_h2 *h)
{
	return h->n_open;
}

int32_t wf_h2_head_pending(const struct wf_h2 *h)
{
	return h->head_sid;
}

int wf_h2_done(const struct wf_h2 *h)
{
	if (wf_buf_len(&h->out))
		return 0;
	return h->fatal || ((h->goaway_sent || h->goaway_received) && !h->n_open);
}

enum wf_h2_error wf_h2_error(const struct wf_h2 *h)
{
	return h->err;
}

/* ---- the connection ---------------------------------------------------------------------------- */

struct wf_h2 *wf_h2_new(int server, const struct wf_h2_limits *lim, const struct wf_h2_ops *ops, void *ctx,
                        struct wf_pool *pool)
{
	struct wf_h2 *h = calloc(1, sizeof(*h));
	h->lim = *lim;
	h->ops = ops;
	h->ctx = ctx;
	h->pool = pool;
	h->server = server;
	h->tab_mask = 15;
	h->tab = calloc(16, sizeof(*h->tab));
	h->next_id = 1;
	h->recv_win = 65535;
	h->send_win = 65535;
	h->peer_initial_window = 65535;
	h->peer_max_frame = 16384;
	h->peer_max_streams = server ? 0xffffffffu : 100; /* a client assumes 100 until told */
	wf_hpack_dec_init(&h->dec, lim->hpack_table_size);
	wf_hpack_enc_init(&h->enc, lim->hpack_table_size < 4096 ? lim->hpack_table_size : 4096);
	if (!server)
		wf_buf_append(&h->out, pool, PREFACE, PREFACE_LEN);
	/* Priorities are not used to schedule streams (as in Envoy): RFC 9218's
	 * SETTINGS_NO_RFC7540_PRIORITIES says so. ENABLE_PUSH is a client setting only;
	 * ENABLE_CONNECT_PROTOCOL a server's. */
	uint8_t s[7 * 6];
	uint32_t k = 0;
#define SET(id, v) (s[k] = 0, s[k + 1] = (uint8_t)(id), put32(s + k + 2, (uint32_t)(v)), k += 6)
	SET(S_MAX_CONCURRENT_STREAMS, lim->max_concurrent_streams);
	SET(S_INITIAL_WINDOW_SIZE, lim->initial_stream_window > WINDOW_MAX ? WINDOW_MAX : lim->initial_stream_window);
	SET(S_HEADER_TABLE_SIZE, lim->hpack_table_size);
	SET(S_MAX_HEADER_LIST_SIZE, lim->max_header_list);
	SET(S_NO_RFC7540_PRIORITIES, 1);
	if (!server)
		SET(S_ENABLE_PUSH, 0);
	else if (lim->connect_protocol)
		SET(S_ENABLE_CONNECT_PROTOCOL, 1);
#undef SET
	control_frame(h, F_SETTINGS, 0, 0, s, k);
	if (lim->initial_connection_window > 65535) {
		uint32_t w = lim->initial_connection_window > WINDOW_MAX ? WINDOW_MAX : lim->initial_connection_window;
		send_window_update(h, 0, w - 65535);
		h->recv_win = w;
	}
	return h;
}

void wf_h2_free(struct wf_h2 *h)
{
	if (!h)
		return;
	while (h->all)
		stream_free(h, h->all);
	wf_hpack_dec_free(&h->dec);
	wf_hpack_enc_free(&h->enc);
	wf_buf_release(&h->out, h->pool);
	free(h->tab);
	free(h->oq);
	free(h->fb);
	free(h->hb);
	free(h->fv);
	free(h->fl);
	free(h->fl_how);
	free(h);
}

void wf_h2_thread_exit(void)
{
	while (free_streams) {
		struct stream *st = free_streams;
		free_streams = st->next;
		free(st);
	}
	n_free_streams = 0;
	free(scratch);
	free(scratch_flags);
	free(scratch_names);
	scratch = NULL;
	scratch_flags = NULL;
	scratch_names = NULL;
	scratch_cap = scratch_names_cap = 0;
	wf_hpack_thread_exit();
}
