#include "http/h2.h"

#include "core/str.h"
#include "core/tcache.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CHUNK (64 * 1024)  /* serialize up to this much per wf_h2_send_pending */

/* Per stream: the header block being received, and the DATA queued to send. */
struct stream {
	int32_t id;
	struct stream *prev, *next;        /* every stream of the connection */
	struct stream *next_unopened;
	uint8_t too_large;                 /* its header block went over the limits */
	/* sending */
	struct wf_buf q;
	uint8_t end;                       /* no more DATA after q */
	uint8_t provider;                  /* a data provider is attached (nghttp2 reads q) */
	uint8_t deferred;                  /* the provider said "nothing yet" */
	uint8_t local_done;                /* our side ended (END_STREAM sent or queued) */
	uint8_t peer_done;                 /* the peer's side ended */
	nghttp2_nv *trailers; size_t n_trailers;
	void *owner;                       /* the owner's object for the stream */
};

struct wf_h2 {
	nghttp2_session *s;
	struct stream *unopened;           /* client: requests submitted, not yet sent */
	struct stream *all;
	struct wf_h2_limits lim;
	const struct wf_h2_ops *ops;
	void *ctx;
	struct wf_pool *pool;
	int server;
	struct wf_buf out;                 /* serialized frames not yet written */
	/* the header block being received (one at a time per connection: a block's frames are
	 * contiguous): names and values in hb, (offset, length) pairs in idx */
	char *hb; uint32_t hb_len, hb_cap;
	uint32_t *idx; uint32_t n_idx, cap_idx;
	uint32_t list_bytes;
	int32_t head_sid;                  /* server: a request head begun and not ended, or 0 */
	enum wf_h2_error err;
	uint8_t fatal;
	/* abuse accounting */
	uint32_t continuations;            /* CONTINUATION frames in the current header block */
	uint32_t empty_run;                /* consecutive frames with an empty payload */
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

/* A fatal abuse: GOAWAY (ENHANCE_YOUR_CALM, or PROTOCOL_ERROR) and stop. */
static int fail(struct wf_h2 *h, enum wf_h2_error e)
{
	if (!h->fatal) {
		h->fatal = 1;
		h->err = e;
		nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
		                      e == WF_H2_PROTOCOL ? NGHTTP2_PROTOCOL_ERROR : NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0);
	}
	return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static struct stream *stream_of(struct wf_h2 *h, int32_t id)
{
	struct stream *st = nghttp2_session_get_stream_user_data(h->s, id);
	for (struct stream *u = h->unopened; !st && u; u = u->next_unopened)
		if (u->id == id)
			st = u; /* nghttp2 makes the stream when its HEADERS leave */
	return st;
}

static void opened(struct wf_h2 *h, int32_t id)
{
	for (struct stream **u = &h->unopened; *u; u = &(*u)->next_unopened)
		if ((*u)->id == id) {
			*u = (*u)->next_unopened;
			return;
		}
}

/* Stream objects are recycled per thread (a stream costs no allocation of ours once warm). */
static __thread struct stream *free_streams;
static __thread unsigned n_free_streams;

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
	st->next = h->all;
	if (h->all)
		h->all->prev = st;
	h->all = st;
	h->streams_opened++;
	return st;
}

static void free_nv(nghttp2_nv *nv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(nv[i].name);
		free(nv[i].value);
	}
	free(nv);
}

static void stream_free(struct wf_h2 *h, struct stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		h->all = st->next;
	if (st->next)
		st->next->prev = st->prev;
	wf_buf_release(&st->q, h->pool);
	free_nv(st->trailers, st->n_trailers);
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

/* ---- receiving ----------------------------------------------------------------------------- */

static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *user)
{
	struct wf_h2 *h = user;
	if (hd->type == NGHTTP2_CONTINUATION && ++h->continuations > h->lim.max_continuations)
		return fail(h, WF_H2_CONTINUATION_FLOOD);
	if (hd->type == NGHTTP2_HEADERS)
		h->continuations = 0;
	/* frames that carry nothing and do not end anything: a cheap way to keep a peer busy */
	int empty = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM) &&
	            (hd->type == NGHTTP2_DATA || hd->type == NGHTTP2_CONTINUATION);
	if (!empty)
		h->empty_run = 0;
	else if (++h->empty_run > h->lim.max_consecutive_empty_frames)
		return fail(h, WF_H2_EMPTY_FRAMES);
	if (hd->type == NGHTTP2_PRIORITY &&
	    ++h->priority_frames > (uint64_t)h->lim.max_priority_frames_per_stream * (1 + h->streams_opened))
		return fail(h, WF_H2_PRIORITY_FLOOD);
	if (hd->type == NGHTTP2_WINDOW_UPDATE &&
	    ++h->window_updates > 10 + 2 * h->streams_opened + (uint64_t)h->lim.max_window_updates_per_data_sent * h->data_frames_sent)
		return fail(h, WF_H2_WINDOW_UPDATE_FLOOD);
	return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct wf_h2 *h = user;
	struct stream *st = stream_of(h, f->hd.stream_id);
	if (!st) {
		if (!h->server)
			return 0; /* a push or an unknown stream: nghttp2 refuses pushes (disabled) */
		st = stream_new(h, f->hd.stream_id);
		nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
	}
	h->hb_len = h->n_idx = h->list_bytes = 0;
	st->too_large = 0;
	if (h->server && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		h->head_sid = f->hd.stream_id;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl, uint8_t flags, void *user)
{
	struct wf_h2 *h = user;
	struct stream *st = stream_of(h, f->hd.stream_id);
	if (!st || st->too_large)
		return 0;
	h->list_bytes += (uint32_t)(nl + vl + 32);
	if (h->list_bytes > h->lim.max_header_list || h->n_idx / 4 >= h->lim.max_headers) {
		/* an HPACK bomb decodes to far more than it weighs: refuse the stream, and count it */
		st->too_large = 1;
		h->premature_resets++;
		if (h->ops->header_overflow)
			h->ops->header_overflow(h->ctx, st->id);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (h->hb_len + nl + vl > h->hb_cap) {
		while (h->hb_len + nl + vl > h->hb_cap)
			h->hb_cap = h->hb_cap ? h->hb_cap * 2 : 1024;
		h->hb = realloc(h->hb, h->hb_cap);
	}
	if (h->n_idx + 4 > h->cap_idx) {
		h->cap_idx = h->cap_idx ? h->cap_idx * 2 : 64;
		h->idx = realloc(h->idx, h->cap_idx * sizeof(*h->idx));
	}
	h->idx[h->n_idx++] = h->hb_len;
	h->idx[h->n_idx++] = (uint32_t)nl;
	memcpy(h->hb + h->hb_len, name, nl);
	h->hb_len += (uint32_t)nl;
	h->idx[h->n_idx++] = h->hb_len;
	h->idx[h->n_idx++] = (uint32_t)vl;
	memcpy(h->hb + h->hb_len, value, vl);
	h->hb_len += (uint32_t)vl;
	return 0;
}

static int deliver_headers(struct wf_h2 *h, struct stream *st, int end_stream, int trailers)
{
	uint32_t n = h->n_idx / 4;
	struct wf_hdr small[32], *hv = !n ? NULL : n <= 32 ? small : malloc(n * sizeof(*hv));
	for (uint32_t i = 0; i < n; i++)
		hv[i] = (struct wf_hdr){h->hb + h->idx[4 * i], h->hb + h->idx[4 * i + 2], h->idx[4 * i + 1],
		                        h->idx[4 * i + 3]};
	int r = h->ops->headers(h->ctx, st->id, hv, n, end_stream, trailers);
	if (hv && hv != small)
		free(hv);
	return r;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct wf_h2 *h = user;
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
	struct stream *st = f->hd.stream_id ? stream_of(h, f->hd.stream_id) : NULL;
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (f->hd.stream_id == h->head_sid)
			h->head_sid = 0;
		if (!st || st->too_large)
			return 0;
	{
		if (end)
			st->peer_done = 1;
		/* a later block without pseudo-headers is a trailer section (a final response after
		 * a 1xx is also a later block, but starts with :status) */
		int trailers = f->headers.cat == NGHTTP2_HCAT_HEADERS && (!h->n_idx || h->hb[h->idx[0]] != ':');
		if (h->server && !trailers && st->local_done)
			return 0; /* answered before its head was complete (request_headers_timeout) */
		if (deliver_headers(h, st, end, trailers) < 0)
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	case NGHTTP2_DATA:
		if (st && end) {
			st->peer_done = 1;
			if (h->ops->data(h->ctx, st->id, NULL, 0, 1) < 0)
				nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		}
		return 0;
	case NGHTTP2_RST_STREAM:
		/* a reset before our answer was complete: the shape of a rapid-reset attack when most
		 * streams end so (Envoy's rule: half of at least 100 closed streams) */
		if (st && !st->local_done)
			h->premature_resets++;
		return 0;
	case NGHTTP2_GOAWAY:
		if (h->ops->goaway)
			h->ops->goaway(h->ctx, f->goaway.last_stream_id, f->goaway.error_code);
		return 0;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *p, size_t n, void *user)
{
	struct wf_h2 *h = user;
	struct stream *st = stream_of(h, id);
	if (!st) {
		nghttp2_session_consume(s, id, n);
		return 0;
	}
	if (h->ops->data(h->ctx, id, p, n, 0) < 0)
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct wf_h2 *h = user;
	struct stream *st = stream_of(h, id);
	if (!st)
		return 0;
	if (id == h->head_sid)
		h->head_sid = 0;
	h->ops->closed(h->ctx, id, code); /* the owner may still look the stream up */
	nghttp2_session_set_stream_user_data(s, id, NULL);
	opened(h, id);
	h->streams_closed++;
	stream_free(h, st);
	if (h->server && h->streams_closed >= 100 && h->premature_resets * 2 >= h->streams_closed)
		return fail(h, WF_H2_RAPID_RESET);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct wf_h2 *h = user;
	if (f->hd.type == NGHTTP2_DATA)
		h->data_frames_sent++;
	else if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code && !h->fatal) {
		h->fatal = 1; /* nghttp2 found a connection error itself */
		h->err = WF_H2_PROTOCOL;
	}
	else if (f->hd.type == NGHTTP2_HEADERS && !h->server && h->unopened)
		opened(h, f->hd.stream_id);
	return 0;
}

/* ---- sending DATA ---------------------------------------------------------------------------- */

static ssize_t read_data(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	struct wf_h2 *h = user;
	struct stream *st = src->ptr;
	size_t avail = wf_buf_len(&st->q), n = avail < len ? avail : len;
	if (n) {
		memcpy(buf, wf_buf_data(&st->q), n);
		wf_buf_consume(&st->q, h->pool, (uint32_t)n);
	}
	if (!wf_buf_len(&st->q)) {
		if (st->end) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			st->provider = 0;
			if (st->trailers) {
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
				nghttp2_submit_trailer(s, id, st->trailers, st->n_trailers);
			}
		} else if (!n) {
			st->deferred = 1;
			return NGHTTP2_ERR_DEFERRED;
		}
		if (h->ops->drained)
			h->ops->drained(h->ctx, id);
	}
	return (ssize_t)n;
}

/* Fields whose value changes with every message: indexing them in the HPACK dynamic table
 * would only push out the ones that repeat. */
static int once_per_message(const uint8_t *name, size_t n)
{
#define IS(lit) (!memcmp(name, lit, sizeof(lit) - 1))
	switch (n) {
	case 4: return IS("date");
	case 11: return IS("traceparent") || IS("x-b3-spanid");
	case 12: return IS("x-request-id") || IS("x-b3-traceid");
	case 14: return IS("content-length");
	case 29: return IS("x-envoy-upstream-service-time");
	}
	return 0;
#undef IS
}

/* nghttp2 copies the fields it is given: they go through a per-thread scratch array, names
 * lower-cased into a per-thread buffer, values as they are. Valid until the next call. */
static __thread nghttp2_nv *scratch_nv;
static __thread uint32_t scratch_nv_cap;
static __thread uint8_t *scratch_names;
static __thread size_t scratch_names_cap;

static nghttp2_nv *nv_scratch(const struct wf_hdr *hdrs, uint32_t n)
{
	size_t names = 0;
	for (uint32_t i = 0; i < n; i++)
		names += hdrs[i].name_len;
	if (n > scratch_nv_cap) {
		scratch_nv_cap = n * 2;
		free(scratch_nv);
		scratch_nv = malloc(scratch_nv_cap * sizeof(*scratch_nv));
	}
	if (names + 1 > scratch_names_cap) {
		scratch_names_cap = (names + 1) * 2;
		free(scratch_names);
		scratch_names = malloc(scratch_names_cap);
	}
	uint8_t *o = scratch_names;
	for (uint32_t i = 0; i < n; i++) {
		wf_lower_copy((char *)o, hdrs[i].name, hdrs[i].name_len); /* HTTP/2 field names are lower case */
		scratch_nv[i] = (nghttp2_nv){o, (uint8_t *)hdrs[i].value, hdrs[i].name_len, hdrs[i].value_len,
		                             once_per_message(o, hdrs[i].name_len) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
		o += hdrs[i].name_len;
	}
	return scratch_nv;
}

/* nghttp2 allocates for every frame and stream: from the per-thread block caches. */
static void *tc_malloc(size_t n, void *u) { return wf_tc_malloc(n); }
static void tc_free(void *p, void *u) { wf_tc_free(p); }
static void *tc_calloc(size_t nmemb, size_t size, void *u) { return wf_tc_calloc(nmemb, size); }
static void *tc_realloc(void *p, size_t n, void *u) { return wf_tc_realloc(p, n); }
static nghttp2_mem tc_mem = {NULL, tc_malloc, tc_free, tc_calloc, tc_realloc};

void wf_h2_thread_exit(void)
{
	while (free_streams) {
		struct stream *st = free_streams;
		free_streams = st->next;
		free(st);
	}
	n_free_streams = 0;
	free(scratch_nv);
	free(scratch_names);
	wf_tc_thread_exit();
	scratch_nv = NULL;
	scratch_names = NULL;
	scratch_nv_cap = 0;
	scratch_names_cap = 0;
}

/* A copy the stream keeps (trailers waiting for the DATA before them). */
static nghttp2_nv *to_nv(const struct wf_hdr *hdrs, uint32_t n)
{
	nghttp2_nv *nv = calloc(n ? n : 1, sizeof(*nv));
	for (uint32_t i = 0; i < n; i++) {
		nv[i].name = malloc(hdrs[i].name_len + 1);
		nv[i].value = malloc(hdrs[i].value_len + 1);
		wf_lower_copy((char *)nv[i].name, hdrs[i].name, hdrs[i].name_len); /* HTTP/2 names are lower case */
		memcpy(nv[i].value, hdrs[i].value, hdrs[i].value_len);
		nv[i].namelen = hdrs[i].name_len;
		nv[i].valuelen = hdrs[i].value_len;
	}
	return nv;
}

int32_t wf_h2_submit_request(struct wf_h2 *h, const struct wf_hdr *hdrs, uint32_t n, int end_stream)
{
	struct stream *st = stream_new(h, 0);
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_data};
	st->provider = !end_stream;
	st->local_done = (uint8_t)end_stream;
	int32_t id = nghttp2_submit_request(h->s, NULL, nv_scratch(hdrs, n), n, end_stream ? NULL : &dp, st);
	if (id < 0) {
		h->streams_opened--;
		stream_free(h, st);
		return -1;
	}
	st->id = id;
	st->next_unopened = h->unopened;
	h->unopened = st;
	return id;
}

int wf_h2_submit_headers(struct wf_h2 *h, int32_t id, const struct wf_hdr *hdrs, uint32_t n, int end_stream)
{
	struct stream *st = stream_of(h, id);
	if (!st)
		return -1;
	if (st->provider || wf_buf_len(&st->q)) {
		/* trailers after queued DATA: they leave when the queue is empty */
		if (!end_stream || st->trailers)
			return -1;
		st->trailers = to_nv(hdrs, n);
		st->n_trailers = n;
		st->end = 1;
		st->local_done = 1;
		if (st->deferred) {
			st->deferred = 0;
			nghttp2_session_resume_data(h->s, id);
		}
		return 0;
	}
	int r = nghttp2_submit_headers(h->s, end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, id, NULL,
	                               nv_scratch(hdrs, n), n, NULL);
	if (end_stream)
		st->local_done = 1;
	return r < 0 ? -1 : 0;
}

int wf_h2_send_data(struct wf_h2 *h, int32_t id, const void *p, size_t n, int end_stream)
{
	struct stream *st = stream_of(h, id);
	if (!st || st->end)
		return -1;
	if (n && wf_buf_append(&st->q, h->pool, p, n) < 0)
		return -1;
	if (end_stream) {
		st->end = 1;
		st->local_done = 1;
	}
	if (!st->provider) {
		nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_data};
		if (nghttp2_submit_data(h->s, NGHTTP2_FLAG_END_STREAM, id, &dp) < 0)
			return -1;
		st->provider = 1;
		st->deferred = 0;
	} else if (st->deferred) {
		st->deferred = 0;
		nghttp2_session_resume_data(h->s, id);
	}
	return 0;
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
	return st ? wf_buf_len(&st->q) : 0;
}

void wf_h2_consume(struct wf_h2 *h, int32_t id, size_t n)
{
	nghttp2_session_consume(h->s, id, n);
}

void wf_h2_reset(struct wf_h2 *h, int32_t id, uint32_t code)
{
	nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, id, code);
}

void wf_h2_goaway(struct wf_h2 *h, uint32_t code)
{
	nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s), code, NULL, 0);
}

void wf_h2_ping(struct wf_h2 *h)
{
	nghttp2_submit_ping(h->s, NGHTTP2_FLAG_NONE, NULL);
}

uint32_t wf_h2_peer_max_streams(const struct wf_h2 *h)
{
	return nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

uint32_t wf_h2_streams(const struct wf_h2 *h)
{
	return (uint32_t)(h->streams_opened - h->streams_closed);
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
	nghttp2_session_callbacks *cb;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_option *opt;
	nghttp2_option_new(&opt);
	nghttp2_option_set_no_auto_window_update(opt, 1);  /* wf_h2_consume acknowledges */
	nghttp2_option_set_max_outbound_ack(opt, lim->max_outbound_control_frames);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, lim->hpack_table_size);
	nghttp2_option_set_max_continuations(opt, lim->max_continuations + 1);
	nghttp2_option_set_no_closed_streams(opt, 1); /* no RFC 7540 priority tree to keep */
	if (!server)
		nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
	int r = server ? nghttp2_session_server_new3(&h->s, cb, h, opt, &tc_mem)
	               : nghttp2_session_client_new3(&h->s, cb, h, opt, &tc_mem);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (r) {
		free(h);
		return NULL;
	}
	/* Priorities are not used to schedule streams (as in Envoy): RFC 9218's
	 * SETTINGS_NO_RFC7540_PRIORITIES spares nghttp2 its dependency tree. ENABLE_PUSH is a
	 * client setting only; ENABLE_CONNECT_PROTOCOL a server's. */
	nghttp2_settings_entry iv[7] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_concurrent_streams},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->initial_stream_window > 2147483647u ? 2147483647u : lim->initial_stream_window},
	    {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, lim->hpack_table_size},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->max_header_list},
	    {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
	};
	size_t n_iv = 5;
	if (!server)
		iv[n_iv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
	else if (lim->connect_protocol)
		iv[n_iv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
	nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, n_iv);
	if (lim->initial_connection_window > 65535)
		nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, (int32_t)(lim->initial_connection_window > 2147483647u
		                                                                            ? 2147483647u : lim->initial_connection_window));
	return h;
}

void wf_h2_free(struct wf_h2 *h)
{
	if (!h)
		return;
	nghttp2_session_del(h->s); /* no stream callbacks from here: free what is left */
	while (h->all)
		stream_free(h, h->all);
	wf_buf_release(&h->out, h->pool);
	free(h->hb);
	free(h->idx);
	free(h);
}

int wf_h2_recv(struct wf_h2 *h, const uint8_t *p, size_t n)
{
	if (h->fatal)
		return -1;
	ssize_t r = nghttp2_session_mem_recv(h->s, p, n);
	if (r < 0 && !h->fatal) {
		h->fatal = 1;
		h->err = r == NGHTTP2_ERR_FLOODED                 ? WF_H2_CONTROL_FLOOD
		         : r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? WF_H2_CONTINUATION_FLOOD
		                                                   : WF_H2_PROTOCOL;
	}
	if (!h->fatal && nghttp2_session_get_outbound_queue_size(h->s) > h->lim.max_outbound_frames)
		fail(h, WF_H2_OUTBOUND_FLOOD);
	return h->fatal ? -1 : 0;
}

size_t wf_h2_send_pending(struct wf_h2 *h, const uint8_t **p)
{
	while (wf_buf_len(&h->out) < OUT_CHUNK) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(h->s, &d);
		if (n <= 0)
			break;
		if (wf_buf_append(&h->out, h->pool, d, (size_t)n) < 0)
			break;
	}
	size_t n = wf_buf_len(&h->out);
	*p = n ? (const uint8_t *)wf_buf_data(&h->out) : NULL;
	return n;
}

void wf_h2_sent(struct wf_h2 *h, size_t n)
{
	wf_buf_consume(&h->out, h->pool, (uint32_t)n);
}

int32_t wf_h2_head_pending(const struct wf_h2 *h)
{
	return h->head_sid;
}

int wf_h2_done(const struct wf_h2 *h)
{
	if (wf_buf_len(&h->out))
		return 0;
	return h->fatal || (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s));
}

enum wf_h2_error wf_h2_error(const struct wf_h2 *h)
{
	return h->err;
}
