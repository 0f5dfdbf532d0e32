/* libFuzzer target for the ClientHello reader (src/net/client_hello.c), which the TLS
 * inspector runs on the first bytes of untrusted connections.
 *
 * Checked against the contract in client_hello.h:
 *  - the answer is 1, 0 or -1, and 0 only while the input is shorter than its first record;
 *  - the SNI is NUL-terminated, shorter than its buffer and lower-case; the ALPN list is a
 *    well-formed length-prefixed list that fits its buffer;
 *  - prefix-consistent: every prefix shorter than a complete hello's first record is 0 or
 *    -1, never 1, and a refused prefix (-1) stays refused.
 * Inputs are parsed from exact-size heap copies so that AddressSanitizer sees any read past
 * `len`. */
#include "net/client_hello.h"
#include "ensure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_copy(const uint8_t *data, size_t n, struct wf_client_hello *h)
{
	uint8_t *exact = malloc(n ? n : 1);
	memcpy(exact, data, n);
	int r = wf_client_hello_parse(exact, n, h);
	free(exact);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_client_hello h;
	int r = parse_copy(data, size, &h);
	ENSURE(r == 1 || r == 0 || r == -1);
	ENSURE(h.sni_len < sizeof(h.sni) && h.sni[h.sni_len] == 0 && strlen(h.sni) == h.sni_len);
	for (uint32_t i = 0; i < h.sni_len; i++)
		ENSURE(!(h.sni[i] >= 'A' && h.sni[i] <= 'Z'));
	ENSURE(h.alpn_len <= sizeof(h.alpn));
	for (uint32_t o = 0; o < h.alpn_len; o += 1u + h.alpn[o])
		ENSURE(h.alpn[o] && o + 1u + h.alpn[o] <= h.alpn_len);
	if (r == 0)
		ENSURE(size < 5 || size < 5 + ((size_t)data[3] << 8 | data[4]));
	if (r == 1 && size <= 4096) {
		/* the prefixes shorter than the first record */
		size_t rec = 5 + ((size_t)data[3] << 8 | data[4]);
		int refused = 0;
		for (size_t k = 0; k < rec && k < size; k++) {
			struct wf_client_hello p;
			int rk = parse_copy(data, k, &p);
			ENSURE(rk != 1);
			if (refused)
				ENSURE(rk == -1);
			refused |= rk == -1;
		}
	}
	return 0;
}
