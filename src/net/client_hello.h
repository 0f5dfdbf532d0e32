/* Reading a TLS ClientHello without consuming it: what the TLS inspector needs to choose a
 * filter chain (the SNI and the ALPN protocols) before any TLS code sees the connection. */
#ifndef WF_NET_CLIENT_HELLO_H
#define WF_NET_CLIENT_HELLO_H

#include <stddef.h>
#include <stdint.h>

/* The largest first record worth waiting for: header + 16 KiB of plaintext + slack. */
#define WF_CLIENT_HELLO_MAX (5 + 16384 + 256)

struct wf_client_hello {
	char sni[256];                 /* server_name (host_name), lower-cased, NUL-terminated */
	uint32_t sni_len;              /* 0: none */
	uint8_t alpn[256];             /* ALPN protocol list, wire format (length-prefixed), */
	uint32_t alpn_len;             /* truncated at a whole protocol to fit */
};

/* Parse the first bytes a client sent. 1: a TLS ClientHello (h filled with what it carries;
 * a hello spread over several records is read as far as the first record goes); 0: it
 * looks like TLS but more bytes are needed; -1: not a TLS ClientHello. Never reads past n. */
int wf_client_hello_parse(const uint8_t *p, size_t n, struct wf_client_hello *h);

#endif
