/* The byte tunnel between two connections (proxy/tunnel.c), over socketpairs:
 *   client <-> [ s[0] | tunnel | s[1] ] <-> server */
#include "test.h"

#include "proxy/tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

struct rig {
	struct wf_loop loop;
	struct wf_pool pool;
	struct wf_sio down, up;
	struct wf_tunnel t;
	int client, server;
};

static int rig_init(struct rig *r)
{
	int a[2], b[2];
	memset(r, 0, sizeof(*r));
	signal(SIGPIPE, SIG_IGN); /* as in weft: a write to a closed peer is an error, not a signal */
	if (wf_loop_init(&r->loop) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b) < 0)
		return -1;
	wf_pool_init(&r->pool, 4);
	r->client = a[0];
	r->down.io.fd = a[1];
	r->up.io.fd = b[0];
	r->server = b[1];
	r->t.s[0] = &r->down;
	r->t.s[1] = &r->up;
	r->t.wm = 64 * 1024;
	return 0;
}

static void rig_fini(struct rig *r)
{
	wf_sio_close(&r->loop, &r->pool, &r->down);
	wf_sio_close(&r->loop, &r->pool, &r->up);
	close(r->client);
	close(r->server);
	wf_pool_fini(&r->pool);
	wf_loop_fini(&r->loop);
}

static ssize_t drain(int fd, char *buf, size_t n)
{
	ssize_t got = 0;
	for (;;) {
		ssize_t k = read(fd, buf + got, n - (size_t)got);
		if (k <= 0)
			return k == 0 && got == 0 ? 0 : got;
		got += k;
	}
}

TEST(bytes_both_ways_and_buffered_first)
{
	struct rig r;
	CHECK(rig_init(&r) == 0);
	/* what a side already holds (payload behind a request head, bytes after a 101) goes first */
	CHECK(wf_buf_reserve(&r.down.rb, &r.pool, 16, 64 * 1024) > 0);
	memcpy(r.down.rb.p + r.down.rb.w, "early", 5);
	r.down.rb.w += 5;
	CHECK_EQ(write(r.client, "-late", 5), 5);
	CHECK_EQ(write(r.server, "reply", 5), 5);
	CHECK_EQ(wf_tunnel_run(&r.t, &r.loop, &r.pool), 0);
	char buf[64];
	CHECK_EQ(drain(r.server, buf, sizeof(buf)), 10);
	CHECK(!memcmp(buf, "early-late", 10));
	CHECK_EQ(drain(r.client, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "reply", 5));
	CHECK_EQ(r.t.bytes[0], 10);
	CHECK_EQ(r.t.bytes[1], 5);
	rig_fini(&r);
}

TEST(half_close_passes_on_and_ends_when_both_closed)
{
	struct rig r;
	CHECK(rig_init(&r) == 0);
	CHECK_EQ(write(r.client, "bye", 3), 3);
	shutdown(r.client, SHUT_WR);
	CHECK_EQ(wf_tunnel_run(&r.t, &r.loop, &r.pool), 0);
	char buf[16];
	CHECK_EQ(drain(r.server, buf, sizeof(buf)), 3);
	CHECK_EQ(read(r.server, buf, sizeof(buf)), 0); /* EOF reached the server */
	/* the other direction still flows */
	CHECK_EQ(write(r.server, "last", 4), 4);
	CHECK_EQ(wf_tunnel_run(&r.t, &r.loop, &r.pool), 0);
	CHECK_EQ(drain(r.client, buf, sizeof(buf)), 4);
	shutdown(r.server, SHUT_WR);
	CHECK_EQ(wf_tunnel_run(&r.t, &r.loop, &r.pool), 1);
	CHECK_EQ(read(r.client, buf, sizeof(buf)), 0);
	rig_fini(&r);
}

TEST(back_pressure_stops_reading)
{
	struct rig r;
	CHECK(rig_init(&r) == 0);
	r.t.wm = 4096;
	/* the server does not read: at most about a socket buffer plus wm stays inside Weft */
	static char big[1 << 20];
	ssize_t sent = 0;
	for (int i = 0; i < 64; i++) {
		ssize_t k = write(r.client, big, sizeof(big));
		if (k > 0)
			sent += k;
		CHECK(wf_tunnel_run(&r.t, &r.loop, &r.pool) == 0);
	}
	CHECK(sent > 0);
	CHECK(wf_sio_queued(&r.up) >= r.t.wm);
	CHECK(wf_sio_queued(&r.up) <= r.t.wm + 64 * 1024 + 4096);
	CHECK_EQ(r.down.want, 0); /* not reading the client while the server lags */
	/* once the server reads, everything arrives and the client is read again */
	char buf[65536];
	ssize_t got = 0, k;
	for (int i = 0; i < 10000 && got < sent; i++) {
		while ((k = read(r.server, buf, sizeof(buf))) > 0)
			got += k;
		CHECK(wf_tunnel_run(&r.t, &r.loop, &r.pool) == 0);
	}
	CHECK_EQ(got, sent);
	CHECK(r.down.want & EPOLLIN);
	rig_fini(&r);
}

TEST(reset_is_an_error)
{
	struct rig r;
	CHECK(rig_init(&r) == 0);
	/* a TCP reset is what matters; over a socketpair, a write to a closed peer fails */
	close(r.server);
	r.server = -1;
	CHECK_EQ(write(r.client, "x", 1), 1);
	CHECK(wf_tunnel_run(&r.t, &r.loop, &r.pool) < 0);
	rig_fini(&r);
}

TEST_MAIN("tunnel", T(bytes_both_ways_and_buffered_first), T(half_close_passes_on_and_ends_when_both_closed),
          T(back_pressure_stops_reading), T(reset_is_an_error))
