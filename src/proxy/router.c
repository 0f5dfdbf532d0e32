#include "proxy/router.h"

#include "core/hash.h"
#include "core/str.h"
#include "proxy/outlier.h"
#include "proxy/stats.h"
#include "proxy/worker.h"

#include <string.h>

static const struct wf_vhost *vhost_lookup(const struct wf_route_table *t, const char *h, size_t n)
{
	for (uint32_t i = 0; i < t->n_exact; i++)
		if (wf_str_ieq(t->exact[i].s, t->exact[i].n, h, n))
			return t->exact[i].vh;
	/* suffix and prefix lists are sorted longest first; a wildcard must match at least one char */
	for (uint32_t i = 0; i < t->n_suffix; i++)
		if (n > t->suffix[i].n && wf_str_ieq(t->suffix[i].s, t->suffix[i].n, h + n - t->suffix[i].n, t->suffix[i].n))
			return t->suffix[i].vh;
	for (uint32_t i = 0; i < t->n_prefix; i++)
		if (n > t->prefix[i].n && wf_str_ieq(t->prefix[i].s, t->prefix[i].n, h, t->prefix[i].n))
			return t->prefix[i].vh;
	return NULL;
}

const struct wf_vhost *wf_route_vhost(const struct wf_route_table *t, const char *host, size_t n,
                                      int strip_any_port)
{
	if (strip_any_port && n && host[0] != '[') {
		const char *c = memchr(host, ':', n);
		if (c)
			n = (size_t)(c - host);
	} else if (strip_any_port && n && host[0] == '[') {
		const char *e = memchr(host, ']', n);
		if (e)
			n = (size_t)(e - host) + 1;
	}
	const struct wf_vhost *vh = vhost_lookup(t, host, n);
	return vh ? vh : t->any;
}

/* The value a header matcher sees: pseudo-headers from the request line, a regular header's
 * value, or, when it is repeated, all its values joined with "," (as Envoy does). */
static const char *header_value(const struct wf_h1_req *q, const char *name, uint32_t nl, uint32_t *vl,
                                char *join, size_t joinlen)
{
	if (name[0] == ':') {
		if (nl == 7 && !memcmp(name, ":method", 7))
			return *vl = q->method_len, q->method;
		if (nl == 5 && !memcmp(name, ":path", 5))
			return *vl = q->path_len, q->path;
		if (nl == 10 && !memcmp(name, ":authority", 10))
			return q->host ? (*vl = q->host_len, q->host) : NULL;
		if (nl == 7 && !memcmp(name, ":scheme", 7))
			return *vl = 4, "http";
		return NULL;
	}
	const char *v = NULL;
	int count = 0;
	for (uint32_t i = 0; i < q->n_headers; i++)
		if (wf_hdr_name_is(&q->headers[i], name, nl) && count++ == 0) {
			v = q->headers[i].value;
			*vl = q->headers[i].value_len;
		}
	if (count < 2)
		return v;
	/* Joined values longer than the scratch buffer are cut there (matchers see a prefix). */
	size_t n = 0;
	for (uint32_t i = 0; i < q->n_headers; i++) {
		const struct wf_hdr *h = &q->headers[i];
		if (!wf_hdr_name_is(h, name, nl))
			continue;
		if (n && n < joinlen)
			join[n++] = ',';
		size_t k = h->value_len < joinlen - n ? h->value_len : joinlen - n;
		memcpy(join + n, h->value, k);
		n += k;
	}
	*vl = (uint32_t)n;
	return join;
}

int wf_hdr_match(const struct wf_hdr_match *m, const struct wf_h1_req *q)
{
	char join[4096];
	uint32_t vl = 0;
	const char *v = header_value(q, m->name, m->name_len, &vl, join, sizeof(join));
	int r;
	if (m->present_only)
		r = (v != NULL) == m->present_value;
	else if (!v)
		return 0; /* a missing header never matches a value matcher, inverted or not */
	else
		r = wf_strmatch(&m->sm, v, vl);
	return m->invert ? !r : r;
}

static int query_ok(const struct wf_query_match *m, const char *path, size_t n)
{
	const char *q = memchr(path, '?', n);
	if (!q)
		return 0;
	const char *p = q + 1, *end = path + n;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *ke = eq ? eq : e;
		if ((size_t)(ke - p) == m->name_len && !memcmp(p, m->name, m->name_len)) {
			if (m->present_only)
				return 1;
			const char *v = eq ? eq + 1 : e;
			return wf_strmatch(&m->sm, v, (size_t)(e - v));
		}
		p = e + 1;
	}
	return 0;
}

static int path_ok(const struct wf_route *r, const char *path, size_t n)
{
	/* Matching is on the path without the query string (Envoy), except prefix which Envoy
	 * applies to the whole :path header value; the results agree for prefixes without '?'. */
	const char *q = memchr(path, '?', n);
	size_t pn = q ? (size_t)(q - path) : n;
	switch (r->path_kind) {
	case WF_PATH_PREFIX:
		if (n < r->path_len)
			return 0;
		return r->case_sensitive ? !memcmp(path, r->path, r->path_len) : wf_str_ieq(path, r->path_len, r->path, r->path_len);
	case WF_PATH_EXACT:
		return r->case_sensitive ? (pn == r->path_len && !memcmp(path, r->path, pn)) : wf_str_ieq(path, pn, r->path, r->path_len);
	case WF_PATH_SEP_PREFIX:
		if (pn < r->path_len || !(r->case_sensitive ? !memcmp(path, r->path, r->path_len) : wf_str_ieq(path, r->path_len, r->path, r->path_len)))
			return 0;
		return pn == r->path_len || path[r->path_len] == '/';
	case WF_PATH_REGEX:
		return wf_regex_match(r->path_re, path, pn);
	}
	return 0;
}

const struct wf_route *wf_route_match(const struct wf_vhost *vh, const struct wf_h1_req *req)
{
	const char *path = req->path;
	size_t path_len = req->path_len;
	int connect = req->form == WF_H1_AUTHORITY;
	for (uint32_t i = 0; i < vh->n_routes; i++) {
		const struct wf_route *r = &vh->routes[i];
		/* a CONNECT has no path: connect_matcher routes take it, and only it */
		if (connect || r->path_kind == WF_PATH_CONNECT) {
			if (!connect || r->path_kind != WF_PATH_CONNECT)
				continue;
		} else if (!path_ok(r, path, path_len) || (r->grpc_only && !req->grpc)) {
			continue;
		}
		uint32_t k;
		for (k = 0; k < r->n_headers; k++)
			if (!wf_hdr_match(&r->headers[k], req))
				break;
		if (k < r->n_headers)
			continue;
		for (k = 0; k < r->n_query; k++)
			if (!query_ok(&r->query[k], path, path_len))
				break;
		if (k < r->n_query)
			continue;
		return r;
	}
	return NULL;
}

const struct wf_weighted *wf_route_weighted(struct wf_worker *w, const struct wf_weighted *wc,
                                            uint32_t n, uint64_t total)
{
	uint64_t x = (uint64_t)(((unsigned __int128)wf_rand(w) * total) >> 64);
	for (uint32_t i = 0; i < n; i++) {
		if (x < wc[i].weight)
			return &wc[i];
		x -= wc[i].weight;
	}
	return &wc[n - 1];
}

/* Can a host be out of the pick right now beyond its health_status? (When not, the loads
 * computed at config time hold and the pick does no per-host work.) */
static int hosts_may_be_out(const struct wf_cluster *c)
{
	return (c->ol.enabled && __atomic_load_n(&c->cb->ejected, __ATOMIC_RELAXED)) ||
	       (c->hc && __atomic_load_n(&c->cb->hc_failed, __ATOMIC_RELAXED));
}

/* Is host i usable now: healthy by health_status, not ejected by outlier detection, not
 * failing active health checks. The one place that decides; hosts_may_be_out() says when it
 * is worth asking. */
static int host_usable_now(struct wf_cluster *c, uint32_t i, uint64_t now)
{
	return c->hosts[i].healthy && !(c->ol.enabled && wf_outlier_ejected(c, i, now)) &&
	       !(c->hc && __atomic_load_n(&c->ol_hosts[i]->hc_failed, __ATOMIC_RELAXED));
}

static uint32_t count_usable(const uint8_t *usable, uint32_t first, uint32_t n)
{
	uint32_t k = 0;
	for (uint32_t i = first; i < first + n; i++)
		k += usable[i];
	return k;
}

/* Locality weighted lb: a locality of lv drawn by weight x availability, or -1 when none is
 * available. x: a uniform 64-bit value. */
static int pick_locality(const struct wf_cluster *c, const struct wf_prio_level *lv, const uint8_t *usable, uint64_t x)
{
	double eff[WF_LOC_MAX], total = 0;
	uint32_t n = lv->n_loc;
	for (uint32_t k = 0; k < n; k++) {
		const struct wf_locality *loc = &lv->loc[k];
		uint32_t healthy = usable == c->usable ? loc->n_healthy : count_usable(usable, loc->first, loc->n);
		eff[k] = wf_locality_effective_weight(loc->weight, healthy, loc->n, c->overprov);
		total += eff[k];
	}
	if (total <= 0)
		return -1;
	double r = (double)(x >> 11) * (1.0 / 9007199254740992.0) * total;
	for (uint32_t k = 0; k < n; k++) {
		if (r < eff[k])
			return (int)k;
		r -= eff[k];
	}
	return (int)n - 1;
}

/* A host of hosts [first, first + n) with balancer lb. */
static int pick_in(struct wf_lb_state *st, const struct wf_lb *lb, uint32_t first, const uint8_t *usable, struct wf_worker *w,
                   uint64_t hash, int has_hash)
{
	struct wf_lb_ctx ctx = {.rng = &w->rng, .rr = st->current + first, .usable = usable + first,
	                        .active = st->active + first, .hash = hash, .has_hash = has_hash};
	int i = wf_lb_pick(lb, &ctx);
	return i < 0 ? -1 : (int)first + i;
}

/* Priority level (by the loads: from health_status, or recomputed when hosts are out now),
 * then panic or locality, then the lb_policy within. A hashed request draws its level and
 * locality from its hash, so it keeps them while health does not change. */
const struct wf_host *wf_cluster_pick(struct wf_worker *w, struct wf_cluster *c, uint64_t hash, int has_hash)
{
	struct wf_lb_state *st = &c->lb[w->id];
	const uint8_t *usable = c->usable;
	const struct wf_prio_load *load = &c->load;
	struct wf_prio_load now_load;
	if (hosts_may_be_out(c)) {
		uint64_t now = wf_loop_now(&w->loop);
		for (uint32_t i = 0; i < c->n_hosts; i++)
			st->usable[i] = (uint8_t)host_usable_now(c, i, now);
		usable = st->usable;
		uint32_t healthy[WF_PRIO_MAX], total[WF_PRIO_MAX];
		for (uint32_t l = 0; l < c->n_levels; l++) {
			healthy[l] = count_usable(usable, c->levels[l].first, c->levels[l].n);
			total[l] = c->levels[l].n;
		}
		wf_prio_load_compute(&now_load, healthy, total, c->n_levels, c->overprov, c->panic_pct);
		load = &now_load;
	}
	uint64_t x = c->n_levels > 1 || c->locality_weighted ? (has_hash ? hash : wf_rand(w)) : 0;
	uint32_t p = c->n_levels > 1 ? wf_prio_choose(load, x) : 0;
	const struct wf_prio_level *lv = &c->levels[p];
	int i = -1;
	if (load->panic[p] && lv->n) {
		wf_stat_inc(c->st.lb_healthy_panic);
		usable = c->all;
	} else if (c->locality_weighted) {
		/* a second draw, independent of the one that chose the level */
		int k = pick_locality(c, lv, usable, has_hash ? wf_xxh64(&hash, sizeof(hash), 11) : wf_rand(w));
		if (k >= 0)
			i = pick_in(st, &lv->loc[k].lb, lv->loc[k].first, usable, w, hash, has_hash);
	}
	if (i < 0)
		i = pick_in(st, &lv->lb, lv->first, usable, w, hash, has_hash);
	return i < 0 ? NULL : &c->hosts[i];
}

void wf_cluster_rq_start(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h)
{
	c->lb[w->id].active[h - c->hosts]++;
}

void wf_cluster_rq_end(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h)
{
	c->lb[w->id].active[h - c->hosts]--;
}
