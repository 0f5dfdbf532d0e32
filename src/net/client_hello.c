#include "net/client_hello.h"

#include <string.h>

/* A bounds-checked reader over [p, end). Every take fails (returns NULL) past the end. */
struct rd {
	const uint8_t *p, *end;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return NULL;
	const uint8_t *at = r->p;
	r->p += n;
	return at;
}

static int u8(struct rd *r, uint32_t *v)
{
	const uint8_t *b = take(r, 1);
	return b ? (*v = b[0], 0) : -1;
}

static int u16(struct rd *r, uint32_t *v)
{
	const uint8_t *b = take(r, 2);
	return b ? (*v = (uint32_t)b[0] << 8 | b[1], 0) : -1;
}

/* A sub-reader of n bytes (a length-prefixed vector); fails past the end. */
static int sub(struct rd *r, size_t n, struct rd *out)
{
	const uint8_t *b = take(r, n);
	if (!b)
		return -1;
	*out = (struct rd){b, b + n};
	return 0;
}

static void server_name(struct rd ext, struct wf_client_hello *h)
{
	uint32_t len, type, n;
	struct rd list;
	if (u16(&ext, &len) < 0 || sub(&ext, len, &list) < 0)
		return;
	while (u8(&list, &type) == 0 && u16(&list, &n) == 0) {
		const uint8_t *name = take(&list, n);
		if (!name)
			return;
		if (type != 0 || !n || n >= sizeof(h->sni))
			continue;
		/* a host name is printable ASCII: anything else (a NUL...) is no SNI at all */
		uint32_t i;
		for (i = 0; i < n && name[i] > 0x20 && name[i] < 0x7f; i++)
			;
		if (i < n)
			return;
		for (i = 0; i < n; i++) {
			char c = (char)name[i];
			h->sni[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
		h->sni[n] = 0;
		h->sni_len = n;
		return;
	}
}

static void alpn(struct rd ext, struct wf_client_hello *h)
{
	uint32_t len, n;
	struct rd list;
	if (u16(&ext, &len) < 0 || sub(&ext, len, &list) < 0)
		return;
	while (u8(&list, &n) == 0) {
		const uint8_t *proto = take(&list, n);
		if (!proto || !n || h->alpn_len + 1 + n > sizeof(h->alpn))
			return;
		h->alpn[h->alpn_len++] = (uint8_t)n;
		memcpy(h->alpn + h->alpn_len, proto, n);
		h->alpn_len += n;
	}
}

int wf_client_hello_parse(const uint8_t *p, size_t n, struct wf_client_hello *h)
{
	memset(h, 0, sizeof(*h));
	/* record header: handshake (22), version 3.x, length */
	if (n >= 1 && p[0] != 22)
		return -1;
	if (n >= 2 && p[1] != 3)
		return -1;
	if (n < 5)
		return 0;
	size_t rlen = (size_t)p[3] << 8 | p[4];
	if (rlen < 4 || rlen > WF_CLIENT_HELLO_MAX - 5)
		return -1;
	if (n >= 6 && p[5] != 1) /* handshake type: client_hello */
		return -1;
	if (n < 5 + rlen)
		return 0;
	struct rd r = {p + 9, p + 5 + rlen};
	size_t hlen = (size_t)p[6] << 16 | (size_t)p[7] << 8 | p[8];
	if (hlen < (size_t)(r.end - r.p))
		r.end = r.p + hlen;
	uint32_t len;
	struct rd exts, ext;
	/* version, random, session id, cipher suites, compression methods, then extensions */
	if (!take(&r, 2 + 32) || u8(&r, &len) < 0 || !take(&r, len) || u16(&r, &len) < 0 || !take(&r, len) ||
	    u8(&r, &len) < 0 || !take(&r, len) || u16(&r, &len) < 0)
		return 1; /* TLS, without (readable) extensions */
	if (sub(&r, len, &exts) < 0)
		exts = r; /* the rest of the hello is in a later record: read what is here */
	uint32_t type;
	while (u16(&exts, &type) == 0 && u16(&exts, &len) == 0) {
		if (sub(&exts, len, &ext) < 0)
			break;
		if (type == 0)
			server_name(ext, h);
		else if (type == 16)
			alpn(ext, h);
	}
	return 1;
}
