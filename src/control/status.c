/* The status endpoint: read a request head, answer, close. */
#include "control/status.h"

#include "core/log.h"
#include "xds/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct sconn {
	struct wf_io io;
	struct wf_status_srv *srv;
	struct wf_timer t;
	struct wf_defer d;
	char in[4096];
	size_t n;
	char *out;
	size_t out_len, out_off;
	int dead;
};

#define MAX_PAGES 4

struct page {
	const char *path;
	int (*fill)(const void *ctx, struct wf_jbuf *b);
	const void *ctx;
};

struct wf_status_srv {
	struct wf_loop *loop;
	struct wf_io io;
	struct page pages[MAX_PAGES];
	unsigned n_pages;
};

int wf_status_page(struct wf_status_srv *s, const char *path, int (*fill)(const void *ctx, struct wf_jbuf *b),
                   const void *ctx)
{
	if (s->n_pages == MAX_PAGES)
		return -ENOSPC;
	s->pages[s->n_pages++] = (struct page){.path = path, .fill = fill, .ctx = ctx};
	return 0;
}

static int syncz(const void *ads, struct wf_jbuf *b) { return wf_ads_syncz(ads, b); }

static void sconn_free(struct wf_defer *d)
{
	struct sconn *c = (struct sconn *)((char *)d - offsetof(struct sconn, d));
	free(c->out);
	free(c);
}

static void sconn_close(struct sconn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	wf_timer_cancel(c->srv->loop, &c->t);
	wf_io_del(c->srv->loop, &c->io);
	close(c->io.fd);
	c->d.cb = sconn_free;
	wf_loop_defer(c->srv->loop, &c->d);
}

static void respond(struct sconn *c, int code, const char *reason, const char *ctype, const char *body, size_t n)
{
	size_t cap = n + 256;
	c->out = malloc(cap);
	if (!c->out) {
		sconn_close(c);
		return;
	}
	int h = snprintf(c->out, cap, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n",
	                 code, reason, ctype, n);
	memcpy(c->out + h, body, n);
	c->out_len = (size_t)h + n;
}

static void handle(struct sconn *c)
{
	char method[8], path[256];
	if (sscanf(c->in, "%7s %255s HTTP/1.", method, path) != 2) {
		respond(c, 400, "Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	char *q = strchr(path, '?');
	if (q)
		*q = 0;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		respond(c, 405, "Method Not Allowed", "text/plain", "GET only\n", 9);
	} else if (!strcmp(path, "/ready")) {
		respond(c, 200, "OK", "text/plain", "LIVE\n", 5);
	} else {
		const struct page *pg = NULL;
		for (unsigned i = 0; i < c->srv->n_pages && !pg; i++)
			if (!strcmp(path, c->srv->pages[i].path))
				pg = &c->srv->pages[i];
		if (!pg) {
			char list[256] = "not found (try /ready";
			for (unsigned i = 0; i < c->srv->n_pages; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), " or %s", c->srv->pages[i].path);
			snprintf(list + strlen(list), sizeof(list) - strlen(list), ")\n");
			respond(c, 404, "Not Found", "text/plain", list, strlen(list));
			return;
		}
		struct wf_jbuf b = {0};
		if (pg->fill(pg->ctx, &b) < 0)
			respond(c, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
		else
			respond(c, 200, "OK", "application/json", b.p, b.len);
		free(b.p);
	}
}

static void sconn_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct sconn *c = io->data;
	if (c->dead)
		return;
	if (!c->out) {
		ssize_t r = recv(io->fd, c->in + c->n, sizeof(c->in) - 1 - c->n, 0);
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				sconn_close(c);
			return;
		}
		c->n += (size_t)r;
		c->in[c->n] = 0;
		if (!strstr(c->in, "\r\n\r\n")) {
			if (c->n == sizeof(c->in) - 1)
				respond(c, 431, "Request Header Fields Too Large", "text/plain", "too large\n", 10);
			else
				return;
		} else {
			handle(c);
		}
		if (c->dead)
			return;
	}
	while (c->out_off < c->out_len) {
		ssize_t w = send(io->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN) {
				wf_io_want(loop, io, EPOLLOUT);
				return;
			}
			break;
		}
		c->out_off += (size_t)w;
	}
	sconn_close(c);
}

static void sconn_timeout(struct wf_loop *loop, struct wf_timer *t) { sconn_close(t->data); }

static void accept_cb(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_status_srv *s = io->data;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct sconn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->io = (struct wf_io){.fd = fd, .cb = sconn_io, .data = c};
		c->t.cb = sconn_timeout;
		c->t.data = c;
		wf_timer_set(loop, &c->t, 10000);
		if (wf_io_set(loop, &c->io, EPOLLIN) < 0)
			sconn_close(c);
	}
}

struct wf_status_srv *wf_status_start(struct wf_loop *loop, const struct wf_addr *addr, struct wf_ads *ads, int *rc)
{
	struct wf_status_srv *s = calloc(1, sizeof(*s));
	if (!s) {
		*rc = -ENOMEM;
		return NULL;
	}
	int fd = wf_sock_listen(addr, 0, 128, 0);
	if (fd < 0) {
		*rc = fd;
		free(s);
		return NULL;
	}
	s->loop = loop;
	wf_status_page(s, "/debug/syncz", syncz, ads);
	s->io = (struct wf_io){.fd = fd, .cb = accept_cb, .data = s};
	*rc = wf_io_set(loop, &s->io, EPOLLIN);
	if (*rc < 0) {
		close(fd);
		free(s);
		return NULL;
	}
	return s;
}

void wf_status_stop(struct wf_status_srv *s)
{
	if (!s)
		return;
	wf_io_del(s->loop, &s->io);
	close(s->io.fd);
	free(s);
}
