/* What HTTP filters may read or add on a stream (proxy/filter.h); the actions that need the
 * connection manager's stream (reply, resume) live in hcm.c. */
#include "proxy/filter.h"

#include "net/sock.h"
#include "proxy/admin.h"
#include "proxy/router.h"
#include "proxy/worker.h"

#include <stdlib.h>
#include <string.h>

const struct wf_hdr *wf_fs_header(const struct wf_fstream *fs, const char *name)
{
	return wf_hdr_find(fs->req->headers, fs->req->n_headers, name, strlen(name));
}

const char *wf_fs_cluster(const struct wf_fstream *fs)
{
	const struct wf_route *r = fs->route;
	if (!r || r->action != WF_ACT_ROUTE)
		return NULL;
	const struct wf_cluster *c = r->n_weighted ? r->weighted[0].cluster : r->cluster;
	return c ? c->name : NULL;
}

void wf_fs_add_response_header(struct wf_fstream *fs, const char *name, const char *value, size_t vl)
{
	size_t kn = strlen(name), need = kn + vl + 2;
	if (fs->resp_add_len + need > fs->resp_add_cap) {
		uint32_t cap = fs->resp_add_cap ? fs->resp_add_cap * 2 : 256;
		while (cap < fs->resp_add_len + need)
			cap *= 2;
		fs->resp_add = realloc(fs->resp_add, cap);
		fs->resp_add_cap = cap;
	}
	char *p = fs->resp_add + fs->resp_add_len;
	memcpy(p, name, kn + 1);
	memcpy(p + kn + 1, value, vl);
	p[kn + 1 + vl] = 0;
	fs->resp_add_len += (uint32_t)need;
}

struct wf_loop *wf_fs_loop(struct wf_fstream *fs)
{
	return &fs->w->loop;
}

int wf_fs_server_failing(const struct wf_fstream *fs)
{
	return __atomic_load_n(&wf_health_failing, __ATOMIC_RELAXED) || fs->w->draining;
}

uint64_t wf_fs_rand(struct wf_fstream *fs)
{
	return wf_rand(fs->w);
}

/* ---- rate limit descriptors -------------------------------------------------------------- */

static int put(struct wf_rl_descriptor *d, const char *key, const char *v, size_t vl)
{
	if (d->n >= WF_RL_ENTRIES_MAX || d->used + vl > sizeof(d->buf))
		return -1;
	char *dst = d->buf + d->used;
	memcpy(dst, v, vl);
	d->used += (uint32_t)vl;
	d->e[d->n++] = (struct wf_rl_entry){key, dst, (uint32_t)strlen(key), (uint32_t)vl};
	return 0;
}

/* One RateLimit's descriptor for this stream: 1 built, 0 skipped (Envoy: an action that
 * cannot produce its entry drops the whole descriptor). */
static int build(struct wf_fstream *fs, const struct wf_rate_limit *rl, struct wf_rl_descriptor *d)
{
	d->n = d->used = 0;
	for (uint32_t i = 0; i < rl->n; i++) {
		const struct wf_rl_action *a = &rl->a[i];
		int r = 0;
		switch (a->kind) {
		case WF_RL_DEST_CLUSTER: {
			const char *c = wf_fs_cluster(fs);
			if (!c)
				return 0;
			r = put(d, a->key, c, strlen(c));
			break;
		}
		case WF_RL_HEADER: {
			const struct wf_hdr *h = wf_fs_header(fs, a->header);
			if (!h) {
				if (a->skip_if_absent)
					continue;
				return 0;
			}
			r = put(d, a->key, h->value, h->value_len);
			break;
		}
		case WF_RL_REMOTE: {
			char ip[64];
			wf_addr_str_split(fs->client, ip, sizeof(ip));
			r = put(d, a->key, ip, strlen(ip));
			break;
		}
		case WF_RL_GENERIC:
			r = put(d, a->key, a->value, strlen(a->value));
			break;
		case WF_RL_HEADER_MATCH: {
			int all = 1;
			for (uint32_t k = 0; k < a->n_hm && all; k++)
				all = wf_hdr_match(&a->hm[k], fs->req);
			if (all != a->expect_match)
				return 0;
			r = put(d, a->key, a->value, strlen(a->value));
			break;
		}
		}
		if (r < 0)
			return 0;
	}
	return d->n > 0;
}

void wf_fs_rl_descriptors(struct wf_fstream *fs, uint32_t stage,
                          void (*fn)(struct wf_fstream *fs, const struct wf_rl_descriptor *d, void *arg),
                          void *arg)
{
	struct wf_rl_descriptor d;
	const struct wf_route *r = fs->route;
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n_rl; i++)
		if (r->rl[i].stage == stage && build(fs, &r->rl[i], &d))
			fn(fs, &d, arg);
	if (r->include_vh_rl && fs->vh)
		for (uint32_t i = 0; i < fs->vh->n_rl; i++)
			if (fs->vh->rl[i].stage == stage && build(fs, &fs->vh->rl[i], &d))
				fn(fs, &d, arg);
}
