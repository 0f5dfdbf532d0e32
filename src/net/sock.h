/* Sockets: addresses, listening with SO_REUSEPORT, non-blocking connect. */
#ifndef WF_NET_SOCK_H
#define WF_NET_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

struct wf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Fill *a from a numeric IP ("127.0.0.1", "::1") and port. 0, or -EINVAL when not an IP. */
int wf_addr_from_ip(struct wf_addr *a, const char *ip, unsigned port);
/* Set the port of an IPv4 or IPv6 address. */
void wf_addr_set_port(struct wf_addr *a, unsigned port);
/* "127.0.0.1:80" / "[::1]:80" into out; returns out. */
char *wf_addr_str(const struct wf_addr *a, char *out, size_t n);
int wf_addr_eq(const struct wf_addr *a, const struct wf_addr *b);
/* Split a wf_addr_str() string ("1.2.3.4:80", "[::1]:80"): the IP without brackets into ip,
 * the port as the result (0 when there is none). */
unsigned wf_addr_str_split(const char *addr_str, char *ip, size_t n);

/* A non-blocking listening socket; reuseport lets each worker bind its own; an IPv6 socket
 * is IPv6-only unless v4compat. fd or -errno. */
int wf_sock_listen(const struct wf_addr *a, int reuseport, int backlog, int v4compat);
/* Start a non-blocking connect; fd (connection may be in progress) or -errno. */
int wf_sock_connect(const struct wf_addr *a);
/* Disable Nagle on an accepted socket: a proxy writes a head and then the body, and must not
 * wait for the client's delayed ACK in between. */
void wf_sock_nodelay(int fd);
/* close() then resets the connection (RST) instead of lingering on unsent output. */
void wf_sock_abort_on_close(int fd);
/* SO_KEEPALIVE with the given idle time, probe interval (seconds) and probe count (0: the
 * system's default for each). */
void wf_sock_keepalive(int fd, unsigned time_s, unsigned interval_s, unsigned probes);
/* Local or peer address of a connected socket. */
int wf_sock_local(int fd, struct wf_addr *a);
int wf_sock_peer(int fd, struct wf_addr *a);

#endif
