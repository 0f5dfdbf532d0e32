/* TEMPORARY: wf_hpack_* over nghttp2's HPACK, to test the codec before http/hpack.c lands. */
#include "http/hpack.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

void wf_hpack_dec_init(struct wf_hpack_dec *d, uint32_t settings_max)
{
	nghttp2_hd_inflater *i;
	nghttp2_hd_inflate_new(&i);
	nghttp2_hd_inflate_change_table_size(i, settings_max);
	d->t = (void *)i;
	d->settings_max = settings_max;
}

void wf_hpack_dec_free(struct wf_hpack_dec *d) { nghttp2_hd_inflate_del((void *)d->t); }

int wf_hpack_decode(struct wf_hpack_dec *d, const uint8_t *p, size_t n, uint32_t max_list, wf_hpack_emit emit, void *ctx)
{
	nghttp2_hd_inflater *inf = (void *)d->t;
	uint64_t list = 0;
	int r = 0;
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t k = nghttp2_hd_inflate_hd2(inf, &nv, &fl, p, n, 1);
		if (k < 0)
			return WF_HPACK_ERROR;
		p += k, n -= (size_t)k;
		if (fl & NGHTTP2_HD_INFLATE_EMIT) {
			list += nv.namelen + nv.valuelen + 32;
			if (list > max_list && !r)
				r = WF_HPACK_TOO_LARGE;
			if (!r) {
				int e = emit(ctx, (const char *)nv.name, (uint32_t)nv.namelen, (const char *)nv.value, (uint32_t)nv.valuelen, 0);
				if (e < 0)
					r = e;
			}
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(inf);
			break;
		}
		if (!k && !n)
			break;
	}
	return r;
}

void wf_hpack_enc_init(struct wf_hpack_enc *e, uint32_t own_max)
{
	nghttp2_hd_deflater *d;
	nghttp2_hd_deflate_new(&d, own_max);
	memset(e, 0, sizeof(*e));
	e->t = (void *)d;
	e->own_max = own_max;
}

void wf_hpack_enc_free(struct wf_hpack_enc *e) { nghttp2_hd_deflate_del((void *)e->t); }

void wf_hpack_enc_peer_max(struct wf_hpack_enc *e, uint32_t size)
{
	nghttp2_hd_deflate_change_table_size((void *)e->t, size < e->own_max ? size : e->own_max);
}

size_t wf_hpack_encode_bound(const struct wf_hdr *h, uint32_t n)
{
	size_t b = 64;
	for (uint32_t i = 0; i < n; i++)
		b += h[i].name_len + h[i].value_len + 16;
	return b;
}

size_t wf_hpack_encode(struct wf_hpack_enc *e, const struct wf_hdr *h, uint32_t n, const uint8_t *flags, uint8_t *out)
{
	nghttp2_nv *v = malloc((n ? n : 1) * sizeof(*v));
	for (uint32_t i = 0; i < n; i++)
		v[i] = (nghttp2_nv){(uint8_t *)h[i].name, (uint8_t *)h[i].value, h[i].name_len, h[i].value_len,
		                    flags && flags[i] ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
	ssize_t k = nghttp2_hd_deflate_hd((void *)e->t, out, wf_hpack_encode_bound(h, n), v, n);
	free(v);
	return k < 0 ? 0 : (size_t)k;
}
