#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int wf_addr_from_ip(struct wf_addr *a, const char *ip, unsigned port)
{
	memset(a, 0, sizeof(*a));
	struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
	if (port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		a->len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		a->len = sizeof(*v6);
		return 0;
	}
	return -EINVAL;
}

void wf_addr_set_port(struct wf_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

char *wf_addr_str(const struct wf_addr *a, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, ntohs(v4->sin_port));
	} else if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, ntohs(v6->sin6_port));
	} else {
		snprintf(out, n, "-");
	}
	return out;
}

unsigned wf_addr_str_split(const char *addr_str, char *ip, size_t n)
{
	const char *colon;
	size_t len;
	if (addr_str[0] == '[') { /* [v6]:port */
		const char *end = strchr(addr_str, ']');
		len = end ? (size_t)(end - addr_str - 1) : strlen(addr_str + 1);
		snprintf(ip, n, "%.*s", (int)len, addr_str + 1);
		colon = end && end[1] == ':' ? end + 1 : NULL;
	} else { /* v4:port; a bare v6 address has several colons and no port */
		colon = strchr(addr_str, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		len = colon ? (size_t)(colon - addr_str) : strlen(addr_str);
		snprintf(ip, n, "%.*s", (int)len, addr_str);
	}
	return colon ? (unsigned)atoi(colon + 1) : 0;
}

int wf_addr_eq(const struct wf_addr *a, const struct wf_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

int wf_sock_listen(const struct wf_addr *a, int reuseport, int backlog, int v4compat)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	int v6only = !v4compat;
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int wf_sock_connect(const struct wf_addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

void wf_sock_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void wf_sock_abort_on_close(int fd)
{
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

void wf_sock_keepalive(int fd, unsigned time_s, unsigned interval_s, unsigned probes)
{
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (time_s)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &time_s, sizeof(time_s));
	if (interval_s)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
	if (probes)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

int wf_sock_local(int fd, struct wf_addr *a)
{
	a->len = sizeof(a->ss);
	return getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ? -errno : 0;
}

int wf_sock_peer(int fd, struct wf_addr *a)
{
	a->len = sizeof(a->ss);
	return getpeername(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ? -errno : 0;
}
