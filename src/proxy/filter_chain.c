/* Filter chain matching: which of a listener's filter chains takes a connection, from what
 * the TLS inspector saw (SNI, ALPN, TLS or not). As Envoy, criteria narrow the candidates one
 * after the other, and at each step the most specific match wins: a chain that names the
 * server exactly beats a wildcard (the longest first), which beats a chain without
 * server_names; a chain with the detected transport_protocol beats one without; one with a
 * common application protocol beats one without. No candidate left: the default chain. */
#include "proxy/config.h"

#include <string.h>

#define MAX_CHAINS 256

/* How well a chain's server_names fit the SNI: 0 no match, 1 no server_names,
 * 2 + suffix length for a wildcard, UINT32_MAX exact. */
static uint32_t sni_score(const struct wf_listener *ch, const char *sni, size_t n)
{
	if (!ch->n_server_names)
		return 1;
	uint32_t best = 0;
	for (uint32_t i = 0; i < ch->n_server_names && sni; i++) {
		const char *s = ch->server_names[i];
		size_t k = strlen(s);
		if (s[0] == '*' && s[1] == '.') {
			/* "*.example.com" matches any name ending in ".example.com" */
			if (n > k - 1 && !memcmp(sni + n - (k - 1), s + 1, k - 1) && 2 + k > best)
				best = (uint32_t)(2 + k);
		} else if (k == n && !memcmp(s, sni, n)) {
			return UINT32_MAX;
		}
	}
	return best;
}

static uint32_t tp_score(const struct wf_listener *ch, int is_tls)
{
	if (ch->transport == WF_TP_ANY)
		return 1;
	return ch->transport == (is_tls ? WF_TP_TLS : WF_TP_RAW) ? 2 : 0;
}

static uint32_t alpn_score(const struct wf_listener *ch, const uint8_t *alpn, uint32_t len)
{
	if (!ch->n_alpn)
		return 1;
	for (uint32_t i = 0; i < ch->n_alpn; i++) {
		size_t k = strlen(ch->alpn[i]);
		for (uint32_t o = 0; o < len; o += 1u + alpn[o])
			if (alpn[o] == k && o + 1 + k <= len && !memcmp(alpn + o + 1, ch->alpn[i], k))
				return 2;
	}
	return 0;
}

/* Keep the candidates with the best nonzero score; returns how many are left. */
static uint32_t narrow(const struct wf_listener **cand, uint32_t n, const uint32_t *score)
{
	uint32_t best = 0, k = 0;
	for (uint32_t i = 0; i < n; i++)
		if (score[i] > best)
			best = score[i];
	if (!best)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (score[i] == best)
			cand[k++] = cand[i];
	return k;
}

const struct wf_listener *wf_chain_select(const struct wf_listener *l, const char *sni, const uint8_t *alpn,
                                          uint32_t alpn_len, int is_tls)
{
	const struct wf_listener *cand[MAX_CHAINS];
	uint32_t score[MAX_CHAINS];
	uint32_t n = l->n_chains;
	size_t sni_len = sni ? strlen(sni) : 0;
	for (uint32_t i = 0; i < n; i++)
		cand[i] = &l->chains[i];
	for (uint32_t i = 0; i < n; i++)
		score[i] = sni_score(cand[i], sni_len ? sni : NULL, sni_len);
	n = narrow(cand, n, score);
	for (uint32_t i = 0; i < n; i++)
		score[i] = tp_score(cand[i], is_tls);
	n = narrow(cand, n, score);
	for (uint32_t i = 0; i < n; i++)
		score[i] = alpn_score(cand[i], alpn, alpn_len);
	n = narrow(cand, n, score);
	return n ? cand[0] : l->default_chain;
}
