/* The xDS client's gRPC stream (proxy/grpc_stream.c) against a server made of our own HTTP/2
 * codec on a loopback socket, in one event loop: the request head, messages both ways (a
 * reply cut into 1-byte DATA frames is put back together), and every way a call ends — OK
 * trailers, a trailers-only error, an HTTP error status, a compressed message, a refused
 * connection, a server that goes away. */
#include "test.h"

#include "core/loop.h"
#include "http/grpc.h"
#include "http/h2.h"
#include "net/sock.h"
#include "proxy/config.h"
#include "proxy/grpc_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

enum scenario { ECHO_SPLIT, TRAILERS_ONLY, HTTP_503, COMPRESSED, SERVER_GOES };

static struct {
	struct wf_loop loop;
	struct wf_pool pool;
	enum scenario sc;
	/* the server */
	int lfd, fd;
	struct wf_io lio, io;
	struct wf_h2 *h2;
	int32_t stream;
	char path[128], ct[64], te[16], auth[64];
	uint8_t rx[256];
	size_t rx_n;
	/* the client */
	struct wf_grpc_stream *st;
	int ready, closed, status;
	char why[256];
	char msgs[8][64];
	int n_msgs;
	char pieces[64];             /* a piece-mode client: the bytes taken as pieces, in order */
	size_t n_pieces, pieces_bad;
	struct wf_timer guard;
} S;
static int piece_client;         /* the client takes messages as pieces (cl_piece) */

/* ---- the server -------------------------------------------------------------------------------- */

static void srv_flush(void)
{
	const uint8_t *p;
	size_t n;
	while (S.h2 && (n = wf_h2_send_pending(S.h2, &p)) > 0) {
		ssize_t w = write(S.fd, p, n);
		if (w <= 0)
			return;
		wf_h2_sent(S.h2, (size_t)w);
	}
}

#define H(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1}

static void reply(const char *payload, int compressed)
{
	uint8_t m[128];
	size_t n = strlen(payload);
	m[0] = (uint8_t)compressed;
	m[1] = m[2] = 0;
	m[3] = (uint8_t)(n >> 8);
	m[4] = (uint8_t)n;
	memcpy(m + 5, payload, n);
	for (size_t i = 0; i < n + 5; i++) /* one byte per DATA frame */
		wf_h2_send_data(S.h2, S.stream, m + i, 1, 0);
}

static void copy(const struct wf_hdr *h, uint32_t n, const char *name, char *out, size_t cap)
{
	const struct wf_hdr *f = wf_hdr_find(h, n, name, strlen(name));
	if (f)
		snprintf(out, cap, "%.*s", (int)f->value_len, f->value);
}

static int srv_headers(void *ctx, int32_t id, const struct wf_hdr *h, uint32_t n, int end, int trailers)
{
	S.stream = id;
	copy(h, n, ":path", S.path, sizeof(S.path));
	copy(h, n, ":authority", S.auth, sizeof(S.auth));
	copy(h, n, "content-type", S.ct, sizeof(S.ct));
	copy(h, n, "te", S.te, sizeof(S.te));
	static const struct wf_hdr ok[] = {H(":status", "200"), H("content-type", "application/grpc")};
	static const struct wf_hdr only[] = {H(":status", "200"), H("content-type", "application/grpc"),
	                                     H("grpc-status", "12"), H("grpc-message", "no%20such%20method%zz")};
	static const struct wf_hdr e503[] = {H(":status", "503")};
	switch (S.sc) {
	case TRAILERS_ONLY: wf_h2_submit_headers(S.h2, id, only, 4, 1); break;
	case HTTP_503: wf_h2_submit_headers(S.h2, id, e503, 1, 1); break;
	default: wf_h2_submit_headers(S.h2, id, ok, 2, 0); break;
	}
	return 0;
}

static int srv_data(void *ctx, int32_t id, const uint8_t *p, size_t n, int end)
{
	wf_h2_consume(S.h2, id, n);
	memcpy(S.rx + S.rx_n, p, n < sizeof(S.rx) - S.rx_n ? n : sizeof(S.rx) - S.rx_n);
	S.rx_n += n;
	if (S.rx_n < 5 + 5) /* "hello" */
		return 0;
	static const struct wf_hdr tr[] = {H("grpc-status", "0")};
	switch (S.sc) {
	case ECHO_SPLIT:
		reply("one", 0);
		reply("two", 0);
		if (piece_client)
			reply("tre", 0);
		wf_h2_submit_headers(S.h2, id, tr, 1, 1);
		break;
	case COMPRESSED: reply("zz", 1); break;
	case SERVER_GOES:
		close(S.fd);
		wf_io_del(&S.loop, &S.io);
		S.fd = -1;
		break;
	default: break;
	}
	return 0;
}

static void srv_closed(void *ctx, int32_t id, uint32_t code) {}
static void srv_goaway(void *ctx, int32_t last, uint32_t code) {}
static void srv_drained(void *ctx, int32_t id) {}

static const struct wf_h2_ops srv_ops = {srv_headers, srv_data, srv_closed, srv_goaway, srv_drained, NULL};

static void srv_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	uint8_t buf[65536];
	ssize_t n = read(S.fd, buf, sizeof(buf));
	if (n <= 0) {
		wf_io_del(loop, io);
		return;
	}
	wf_h2_recv(S.h2, buf, (size_t)n);
	if (S.fd >= 0)
		srv_flush();
}

static void srv_accept(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	S.fd = accept4(S.lfd, NULL, NULL, SOCK_CLOEXEC);
	if (S.fd < 0)
		return;
	struct wf_h2_limits lim;
	wf_h2_limits_default(&lim);
	S.h2 = wf_h2_new(1, &lim, &srv_ops, NULL, &S.pool);
	S.io = (struct wf_io){.fd = S.fd, .cb = srv_io};
	wf_io_set(loop, &S.io, EPOLLIN);
	srv_flush();
}

/* ---- the client -------------------------------------------------------------------------------- */

static void cl_ready(void *ctx)
{
	S.ready = 1;
	wf_grpc_stream_send(S.st, "hello", 5);
}

static int cl_message(void *ctx, const uint8_t *p, size_t n)
{
	if (S.n_msgs < 8)
		snprintf(S.msgs[S.n_msgs++], sizeof(S.msgs[0]), "%.*s", (int)n, (const char *)p);
	return 0;
}

static void cl_closed(void *ctx, int status, const char *why)
{
	S.closed++;
	S.status = status;
	snprintf(S.why, sizeof(S.why), "%s", why);
	wf_loop_stop(&S.loop);
}

static const struct wf_grpc_stream_ops cl_ops = {cl_ready, cl_message, cl_closed};

/* Messages starting with 'o' are asked for whole; others are taken as they come. */
static int cl_piece(void *ctx, const uint8_t *p, size_t n, size_t off, size_t len)
{
	if (!off && n && p[0] == 'o')
		return 1;
	if (off != S.n_pieces - (S.n_pieces >= 3 ? 3 : 0) || len != 3) /* "two", then "tre" */
		S.pieces_bad++;
	if (S.n_pieces + n < sizeof(S.pieces)) {
		memcpy(S.pieces + S.n_pieces, p, n);
		S.n_pieces += n;
	}
	return 0;
}

static const struct wf_grpc_stream_ops cl_piece_ops = {cl_ready, cl_message, cl_closed, cl_piece};

static void on_guard(struct wf_loop *loop, struct wf_timer *t) { wf_loop_stop(loop); }

/* Run one call against the server playing `sc` (or against a port nobody listens on). */
static void run(enum scenario sc, int refused)
{
	memset(&S, 0, sizeof(S));
	S.sc = sc;
	S.fd = -1;
	wf_pool_init(&S.pool, 8);
	wf_loop_init(&S.loop);
	struct wf_addr a;
	wf_addr_from_ip(&a, "127.0.0.1", 0);
	S.lfd = wf_sock_listen(&a, 0, 8, 0);
	wf_sock_local(S.lfd, &a);
	if (refused) {
		close(S.lfd);
		S.lfd = -1;
	} else {
		S.lio = (struct wf_io){.fd = S.lfd, .cb = srv_accept};
		wf_io_set(&S.loop, &S.lio, EPOLLIN);
	}
	struct wf_cluster cl = {.connect_timeout_ms = 2000};
	wf_h2_limits_default(&cl.h2.lim);
	S.st = wf_grpc_stream_open(&S.loop, &cl, &a, "xds_cluster", "/pkg.Svc/Method", piece_client ? &cl_piece_ops : &cl_ops, NULL);
	S.guard.cb = on_guard;
	wf_timer_set(&S.loop, &S.guard, 3000);
	wf_loop_run(&S.loop);
	if (!S.closed && S.st)
		wf_grpc_stream_close(S.st);
	wf_timer_cancel(&S.loop, &S.guard);
	if (S.fd >= 0)
		close(S.fd);
	if (S.lfd >= 0)
		close(S.lfd);
	wf_h2_free(S.h2);
}

static void fini(void)
{
	wf_loop_fini(&S.loop);
	wf_pool_fini(&S.pool);
}

TEST(request_head_messages_and_ok_trailers)
{
	run(ECHO_SPLIT, 0);
	CHECK(S.ready);
	CHECK(!strcmp(S.path, "/pkg.Svc/Method"));
	CHECK(!strcmp(S.auth, "xds_cluster"));
	CHECK(!strcmp(S.ct, "application/grpc"));
	CHECK(!strcmp(S.te, "trailers"));
	CHECK_EQ(S.rx_n, 10);
	CHECK(!memcmp(S.rx, "\0\0\0\0\5hello", 10));
	CHECK_EQ(S.n_msgs, 2); /* each put back together from 1-byte DATA frames */
	CHECK(!strcmp(S.msgs[0], "one") && !strcmp(S.msgs[1], "two"));
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.status, WF_GRPC_OK);
	fini();
}

TEST(messages_taken_as_pieces_or_whole)
{
	piece_client = 1;
	run(ECHO_SPLIT, 0);
	piece_client = 0;
	CHECK_EQ(S.n_msgs, 1); /* "one", asked for whole */
	CHECK(!strcmp(S.msgs[0], "one"));
	CHECK_EQ(S.n_pieces, 6); /* "two" and "tre", byte by byte with their offsets */
	CHECK(!memcmp(S.pieces, "twotre", 6));
	CHECK_EQ(S.pieces_bad, 0);
	CHECK_EQ(S.status, WF_GRPC_OK);
	fini();
}

TEST(trailers_only_error)
{
	run(TRAILERS_ONLY, 0);
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.status, WF_GRPC_UNIMPLEMENTED);
	CHECK(strstr(S.why, "grpc-status 12 (UNIMPLEMENTED): no such method%zz"));
	fini();
}

TEST(http_error_status)
{
	run(HTTP_503, 0);
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.status, WF_GRPC_UNAVAILABLE);
	CHECK(strstr(S.why, "HTTP status 503"));
	fini();
}

TEST(compressed_message_refused)
{
	run(COMPRESSED, 0);
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.status, WF_GRPC_INTERNAL);
	CHECK(strstr(S.why, "compressed"));
	CHECK_EQ(S.n_msgs, 0);
	fini();
}

TEST(refused_connection)
{
	run(ECHO_SPLIT, 1);
	CHECK(!S.ready);
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.status, WF_GRPC_UNAVAILABLE);
	CHECK(strstr(S.why, "cannot connect"));
	fini();
}

TEST(server_goes_away)
{
	run(SERVER_GOES, 0);
	CHECK(S.ready);
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.status, WF_GRPC_UNAVAILABLE);
	CHECK(strstr(S.why, "closed by the server"));
	fini();
}

TEST_MAIN("ads_stream", T(request_head_messages_and_ok_trailers), T(messages_taken_as_pieces_or_whole), T(trailers_only_error), T(http_error_status),
          T(compressed_message_refused), T(refused_connection), T(server_goes_away))
