/* The socket layer's HTTP/2 output (proxy/sio.c wf_sio_take_h2) over a socketpair whose
 * send buffer fills: what the kernel does not take is handed over with the codec's buffer, not
 * copied, and a full socket takes no more. */
#include "test.h"

#include "http/h2.h"
#include "proxy/sio.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static int noop_headers(void *ctx, int32_t sid, const struct wf_hdr *h, uint32_t n, int end, int tr) { return 0; }
static int noop_data(void *ctx, int32_t sid, const uint8_t *p, size_t n, int end) { return 0; }
static void noop_closed(void *ctx, int32_t sid, uint32_t code) {}
static void noop_goaway(void *ctx, int32_t last, uint32_t code) {}
static const struct wf_h2_ops OPS = {noop_headers, noop_data, noop_closed, noop_goaway};

struct rig {
	struct wf_loop loop;
	struct wf_pool pool;
	struct wf_sio s;
	struct wf_h2 *h2;
	int peer;
	int32_t sid;
};

/* A client codec with a request whose body (64 KB: the peer's initial window) waits to be
 * framed, on a socket with a small send buffer. */
static int rig_init(struct rig *r)
{
	int sp[2], small = 4096;
	memset(r, 0, sizeof(*r));
	signal(SIGPIPE, SIG_IGN);
	if (wf_loop_init(&r->loop) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp) < 0)
		return -1;
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	wf_pool_init(&r->pool, 4);
	r->peer = sp[1];
	r->s.io.fd = sp[0];
	r->s.want = EPOLLIN;
	wf_sio_update(&r->loop, &r->s);
	struct wf_h2_limits lim;
	wf_h2_limits_default(&lim);
	r->h2 = wf_h2_new(0, &lim, &OPS, r, &r->pool);
	struct wf_hdr head[] = {{":method", "POST", 7, 4}, {":scheme", "http", 7, 4}, {":authority", "a", 10, 1},
	                        {":path", "/", 5, 1}};
	r->sid = wf_h2_submit_request(r->h2, head, 4, 0);
	static uint8_t body[65535];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 13);
	return r->h2 && r->sid > 0 && wf_h2_send_data(r->h2, r->sid, body, sizeof(body), 1) == 0 ? 0 : -1;
}

static void rig_fini(struct rig *r)
{
	wf_h2_free(r->h2);
	wf_sio_close(&r->loop, &r->pool, &r->s);
	close(r->peer);
	wf_pool_fini(&r->pool);
	wf_loop_fini(&r->loop);
}

TEST(what_the_kernel_leaves_is_handed_over_not_copied)
{
	struct rig r;
	CHECK_EQ(rig_init(&r), 0);
	const uint8_t *p0;
	size_t total = wf_h2_send_pending(r.h2, &p0); /* framed, not sent: the codec's buffer */
	CHECK(total > 65535);
	static uint8_t expect[128 * 1024];
	CHECK(total <= sizeof(expect));
	memcpy(expect, p0, total);
	CHECK_EQ(wf_sio_take_h2(&r.loop, &r.pool, &r.s, r.h2, UINT32_MAX), 0);
	const uint8_t *p;
	CHECK_EQ(wf_h2_send_pending(r.h2, &p), 0);      /* nothing left in the codec */
	uint32_t queued = wf_buf_len(&r.s.wb);
	CHECK(queued > 0 && queued < total);             /* the kernel took some, not all */
	CHECK((const uint8_t *)r.s.wb.p == p0);          /* the codec's own buffer, not a copy */
	CHECK(r.s.io.events & EPOLLOUT);                 /* waits to be writable */
	/* everything reaches the peer, in order */
	static uint8_t got[128 * 1024];
	size_t n = 0;
	for (int i = 0; i < 1000 && n < total; i++) {
		ssize_t k = read(r.peer, got + n, sizeof(got) - n);
		if (k > 0)
			n += (size_t)k;
		CHECK(wf_sio_flush(&r.loop, &r.pool, &r.s) >= 0);
	}
	CHECK_EQ(n, total);
	CHECK(!memcmp(got, expect, total));
	CHECK_EQ(wf_buf_len(&r.s.wb), 0);
	rig_fini(&r);
}

TEST(a_full_socket_takes_no_more_frames)
{
	struct rig r;
	CHECK_EQ(rig_init(&r), 0);
	CHECK_EQ(wf_sio_take_h2(&r.loop, &r.pool, &r.s, r.h2, UINT32_MAX), 0);
	uint32_t queued = wf_buf_len(&r.s.wb);
	CHECK(queued > 0);
	/* more frames for the codec (a PING) while the socket is full: they wait there */
	wf_h2_ping(r.h2);
	CHECK_EQ(wf_sio_take_h2(&r.loop, &r.pool, &r.s, r.h2, UINT32_MAX), 0);
	CHECK_EQ(wf_buf_len(&r.s.wb), queued);
	const uint8_t *p;
	CHECK_EQ(wf_h2_send_pending(r.h2, &p), 17);     /* the PING frame, still in the codec */
	rig_fini(&r);
}

TEST_MAIN("proxy.sio", T(what_the_kernel_leaves_is_handed_over_not_copied), T(a_full_socket_takes_no_more_frames))
