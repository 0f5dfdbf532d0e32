#include "proxy/stats.h"

#include "proxy/config.h"
#include "xds/json.h"
#include "core/hash.h"
#include "core/strtab.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Envoy's default histogram bucket bounds, in milliseconds. */
static const double bucket_ms[WF_HIST_BUCKETS] = {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, 7200000};

/* A registered stat. Its name is scope[.scope_name][.sub].leaf, kept in parts that are shared
 * copies (a cluster's name once for all its stats, "upstream_rq_total" once for all clusters):
 * a thousand clusters register some sixty thousand stats, and full names, Prometheus names and
 * labels kept for each took 15 KB a cluster. Those are built when the stats are rendered. */
struct def {
	const char *scope, *scope_name, *sub, *leaf; /* scope_name and sub may be NULL */
	uint32_t idx;
	uint32_t refs : 24;                          /* registrations not released; at most: kept */
	uint32_t type : 8;
};
#define REFS_MAX 0xffffffu

/* A stat as rendered: its names built (one allocation, `name` owns it). */
struct shown {
	char *name;        /* envoy dotted name */
	char *prom;        /* envoy_<scope>_<name> */
	char *label;       /* envoy_cluster_name="web", or empty */
	char *tag;         /* extra label from the name: envoy_response_code_class="2", or empty */
	uint32_t idx;
	uint8_t type;
};

#define MAX_THREADS 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* registration and thread list only */
static struct def *defs;
static struct wf_strtab *parts;                           /* the names' parts */
/* The first slots are a sink for stats registered after the table is full. */
#define SINK 0
static uint32_t n_defs, cap_defs, next_slot = WF_STAT_CODE_SLOTS;
/* defs by name and by slot: open addressing, def index + 1 (0: empty), at most half full.
 * Every config compile registers its stats again, so a lookup must not cost a scan of them
 * all; a release finds its stat by slot. */
static uint32_t *by_name, *by_idx, cap_by_name;
/* Slots of released stats, by size (1, a histogram's, a code block's), taken again first. */
static struct wf_stats_rec freed[3];

/* Append x to a growing list of indexes (out of memory: nothing sensible is left to do). */
static void push(struct wf_stats_rec *l, uint32_t x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if (!(l->idx = realloc(l->idx, l->cap * sizeof(*l->idx))))
			abort();
	}
	l->idx[l->n++] = x;
}
static int64_t *threads[MAX_THREADS];
static unsigned n_threads;

__thread int64_t *wf_stats_tls;

void wf_stats_thread_init(void)
{
	if (wf_stats_tls)
		return;
	/* Reserved, not committed: only the pages holding registered slots become resident. */
	int64_t *a = mmap(NULL, WF_STATS_SLOTS * sizeof(int64_t), PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED)
		abort();
	pthread_mutex_lock(&lock);
	if (n_threads == MAX_THREADS)
		abort();
	threads[n_threads++] = a;
	pthread_mutex_unlock(&lock);
	wf_stats_tls = a;
}

static const char *scope_label(const char *scope)
{
	if (!strcmp(scope, "cluster")) return "envoy_cluster_name";
	if (!strcmp(scope, "http")) return "envoy_http_conn_manager_prefix";
	if (!strcmp(scope, "listener")) return "envoy_listener_address";
	if (!strcmp(scope, "tcp")) return "envoy_tcp_prefix";
	return NULL;
}

/* Is d's dotted name `full`? Compared part by part, as if joined. */
static int def_is(const struct def *d, const char *full)
{
	const char *part[4] = {d->scope, d->scope_name, d->sub, d->leaf};
	const char *p = full;
	for (int i = 0, n = 0; i < 4; i++) {
		if (!part[i])
			continue;
		if (n++ && *p++ != '.')
			return 0;
		size_t l = strlen(part[i]);
		if (strncmp(p, part[i], l))
			return 0;
		p += l;
	}
	return !*p;
}

/* The parts (NULL ones left out) joined by dots, in buf when they fit, else in memory of their
 * own (the caller frees what is not buf): a name is never cut, so it hashes and compares the
 * same however it is built. */
#define NAME_BUF 512
static char *join(char *buf, size_t size, const char *const part[4])
{
	size_t len = 0;
	for (int i = 0; i < 4; i++)
		len += part[i] ? strlen(part[i]) + 1 : 0;
	char *out = len <= size ? buf : malloc(len);
	if (!out)
		abort();
	char *p = out;
	for (int i = 0; i < 4; i++) {
		if (!part[i])
			continue;
		if (p != out)
			*p++ = '.';
		size_t l = strlen(part[i]);
		memcpy(p, part[i], l);
		p += l;
	}
	*p = 0;
	return out;
}

static char *def_name(const struct def *d, char *buf, size_t size)
{
	const char *part[4] = {d->scope, d->scope_name, d->sub, d->leaf};
	return join(buf, size, part);
}

static void name_done(char *name, const char *buf)
{
	if (name != buf)
		free(name);
}

static uint32_t name_home(const char *name) { return (uint32_t)wf_xxh64(name, strlen(name), 0) & (cap_by_name - 1); }
static uint32_t idx_home(uint32_t idx) { return (uint32_t)((idx * 0x9E3779B97F4A7C15ull) >> 32) & (cap_by_name - 1); }

/* The slot of `name` in by_name: where it is, or the empty one where it would go. */
static uint32_t *by_name_slot(const char *name)
{
	for (uint32_t i = name_home(name);; i = (i + 1) & (cap_by_name - 1))
		if (!by_name[i] || def_is(&defs[by_name[i] - 1], name))
			return &by_name[i];
}

static uint32_t *by_idx_slot(uint32_t idx)
{
	for (uint32_t i = idx_home(idx);; i = (i + 1) & (cap_by_name - 1))
		if (!by_idx[i] || defs[by_idx[i] - 1].idx == idx)
			return &by_idx[i];
}

static uint32_t def_home(const uint32_t *tab, uint32_t entry)
{
	if (tab == by_idx)
		return idx_home(defs[entry - 1].idx);
	char buf[NAME_BUF], *full = def_name(&defs[entry - 1], buf, sizeof(buf));
	uint32_t h = name_home(full);
	name_done(full, buf);
	return h;
}

/* Empty slot i of a table, moving back the entries after it that would no longer be found
 * (linear probing's deletion). */
static void table_delete(uint32_t *tab, uint32_t i)
{
	uint32_t mask = cap_by_name - 1;
	tab[i] = 0;
	for (uint32_t j = (i + 1) & mask; tab[j]; j = (j + 1) & mask) {
		uint32_t h = def_home(tab, tab[j]);
		/* the entry at j stays when its home lies cyclically in (i, j] */
		if (i <= j ? (h > i && h <= j) : (h > i || h <= j))
			continue;
		tab[i] = tab[j];
		tab[j] = 0;
		i = j;
	}
}

/* The entry of a table that holds `entry`, found from its home. */
static uint32_t table_find(const uint32_t *tab, uint32_t entry)
{
	uint32_t i = def_home(tab, entry);
	while (tab[i] != entry)
		i = (i + 1) & (cap_by_name - 1);
	return i;
}

/* Both tables rebuilt at cap entries (a power of two, at least twice n_defs). */
static void tables_resize(uint32_t cap)
{
	free(by_name);
	free(by_idx);
	cap_by_name = cap;
	by_name = calloc(cap_by_name, sizeof(*by_name));
	by_idx = calloc(cap_by_name, sizeof(*by_idx));
	if (!by_name || !by_idx)
		abort();
	char buf[NAME_BUF];
	for (uint32_t i = 0; i < n_defs; i++) {
		char *full = def_name(&defs[i], buf, sizeof(buf));
		*by_name_slot(full) = i + 1;
		name_done(full, buf);
		*by_idx_slot(defs[i].idx) = i + 1;
	}
}

static unsigned size_class(uint32_t type) { return type == WF_STAT_HIST ? 1 : type == WF_STAT_CODES ? 2 : 0; }
static uint32_t slots_of(uint32_t type)
{
	return type == WF_STAT_HIST ? WF_HIST_SLOTS : type == WF_STAT_CODES ? WF_STAT_CODE_SLOTS : 1;
}

void wf_stats_ref(const uint32_t *idx, size_t n)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		uint32_t *at = idx[i] != SINK && cap_by_name ? by_idx_slot(idx[i]) : NULL;
		if (at && *at && defs[*at - 1].refs != REFS_MAX)
			defs[*at - 1].refs++;
	}
	pthread_mutex_unlock(&lock);
}

/* One registration of the stat at idx given back (the lock held). */
static void release(uint32_t idx)
{
	uint32_t *at = idx != SINK && cap_by_name ? by_idx_slot(idx) : NULL;
	if (!at || !*at)
		return;
	uint32_t k = *at - 1;
	struct def *d = &defs[k];
	if (d->refs == REFS_MAX || --d->refs)
		return;
	/* Gone: out of both tables, its slots on the free list (zeroed when taken again), its
	 * name's parts given back, the last definition moved into its place. */
	table_delete(by_idx, (uint32_t)(at - by_idx));
	table_delete(by_name, table_find(by_name, k + 1));
	unsigned sc = size_class(d->type);
	push(&freed[sc], d->idx);
	const char *part[4] = {d->scope, d->scope_name, d->sub, d->leaf};
	for (int i = 0; i < 4; i++)
		if (part[i])
			wf_strtab_put(parts, part[i]);
	uint32_t last = n_defs - 1;
	if (k != last) {
		by_name[table_find(by_name, last + 1)] = k + 1;
		by_idx[table_find(by_idx, last + 1)] = k + 1;
		defs[k] = defs[last];
	}
	n_defs--;
	/* a config that had many more stats than the one now: the room for them goes back too */
	if (cap_by_name > 1024 && n_defs * 8 < cap_by_name)
		tables_resize(cap_by_name / 2);
	if (cap_defs > 1024 && n_defs * 4 < cap_defs) {
		struct def *d2 = realloc(defs, cap_defs / 2 * sizeof(*defs));
		if (d2) {
			defs = d2;
			cap_defs /= 2;
		}
	}
}

void wf_stats_release(const uint32_t *idx, size_t n)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++)
		release(idx[i]);
	pthread_mutex_unlock(&lock);
}

static __thread struct wf_stats_rec *recording;

void wf_stats_record(struct wf_stats_rec *rec)
{
	struct wf_stats_rec *done = recording;
	if (done && done->n && done->n < done->cap) { /* kept for the config's life: cut to size */
		uint32_t *v = realloc(done->idx, done->n * sizeof(*v));
		if (v) {
			done->idx = v;
			done->cap = done->n;
		}
	}
	recording = rec;
}

void wf_stats_rec_release(struct wf_stats_rec *rec)
{
	for (size_t i = 0; i < rec->n; i += 4096)
		wf_stats_release(rec->idx + i, rec->n - i < 4096 ? rec->n - i : 4096);
	free(rec->idx);
	*rec = (struct wf_stats_rec){0};
}

/* A new definition for `name` at slot `at` (the lock held). */
static void def_add(uint32_t *slot, enum wf_stat_type type, const char *scope, const char *scope_name,
                    const char *name, uint32_t at)
{
	if (n_defs == cap_defs) {
		cap_defs = cap_defs ? cap_defs * 2 : 256;
		if (!(defs = realloc(defs, cap_defs * sizeof(*defs))))
			abort();
	}
	if (!parts && !(parts = wf_strtab_new()))
		abort();
	/* "host.10.0.0.1:80.cx_total": the host's part shared by its stats, the leaf by all hosts' */
	const char *dot = strrchr(name, '.');
	char *sub = dot ? strndup(name, (size_t)(dot - name)) : NULL;
	struct def *d = &defs[n_defs];
	d->scope = wf_strtab_get(parts, scope);
	d->scope_name = scope_name ? wf_strtab_get(parts, scope_name) : NULL;
	d->sub = dot && sub ? wf_strtab_get(parts, sub) : NULL;
	d->leaf = wf_strtab_get(parts, dot ? dot + 1 : name);
	if (!d->scope || (scope_name && !d->scope_name) || (dot && !d->sub) || !d->leaf)
		abort(); /* out of memory while compiling a config */
	free(sub);
	d->idx = at;
	d->refs = 1;
	d->type = type;
	*slot = ++n_defs;
	*by_idx_slot(at) = n_defs;
}

uint32_t wf_stat_register(enum wf_stat_type type, const char *scope, const char *scope_name,
                          const char *name)
{
	const char *part[4] = {scope, scope_name, name, NULL};
	char buf[NAME_BUF], *full = join(buf, sizeof(buf), part);
	pthread_mutex_lock(&lock);
	if ((n_defs + 1) * 2 > cap_by_name)
		tables_resize(cap_by_name ? cap_by_name * 2 : 1024);
	uint32_t *slot = by_name_slot(full), idx;
	if (*slot) {
		struct def *d = &defs[*slot - 1];
		if (d->refs != REFS_MAX)
			d->refs++;
		idx = d->idx;
	} else {
		uint32_t need = slots_of(type);
		unsigned sc = size_class(type);
		if (freed[sc].n) {
			/* a released stat's slots: whatever was counted there goes */
			idx = freed[sc].idx[--freed[sc].n];
			for (unsigned t = 0; t < n_threads; t++)
				for (uint32_t i = 0; i < need; i++)
					__atomic_store_n(&threads[t][idx + i], 0, __ATOMIC_RELAXED);
			def_add(slot, type, scope, scope_name, name, idx);
		} else if (next_slot + need <= WF_STATS_SLOTS) {
			idx = next_slot;
			next_slot += need;
			def_add(slot, type, scope, scope_name, name, idx);
		} else {
			/* Tens of thousands of clusters: the stat is not kept (its updates land in a sink
			 * slot nobody lists) rather than refusing traffic. Said once. */
			static int said;
			if (!said++)
				fprintf(stderr, "weft: out of stat slots at %s (%u in use): further stats are not kept\n",
				        full, next_slot);
			idx = SINK;
		}
	}
	pthread_mutex_unlock(&lock);
	name_done(full, buf);
	if (recording && idx != SINK)
		push(recording, idx);
	return idx;
}

void wf_stat_hist(uint32_t idx, uint64_t ms)
{
	unsigned b = 0;
	while (b < WF_HIST_BUCKETS && (double)ms > bucket_ms[b])
		b++;
	wf_stat_inc(idx + b);
	wf_stat_inc(idx + WF_HIST_BUCKETS + 1);
	wf_stat_add(idx + WF_HIST_BUCKETS + 2, (int64_t)ms);
}

int64_t wf_stat_value(uint32_t idx)
{
	int64_t v = 0;
	for (unsigned t = 0; t < n_threads; t++)
		v += __atomic_load_n(&threads[t][idx], __ATOMIC_RELAXED);
	return v;
}

static int cmp_shown(const void *a, const void *b)
{
	return strcmp(((const struct shown *)a)->name, ((const struct shown *)b)->name);
}

/* A stat's names for rendering: the dotted name; the Prometheus name, envoy_<scope>_<name>
 * with dots and dashes as underscores, and Envoy's tag extraction ("upstream_rq_2xx" ->
 * "upstream_rq_xx" {envoy_response_code_class="2"}); the scope's label. */
static void show(const struct def *d, struct shown *s)
{
	char buf[NAME_BUF], *full = def_name(d, buf, sizeof(buf));
	const char *ln = d->scope_name ? scope_label(d->scope) : NULL;
	/* one block: the name, then the Prometheus name (at most 7 bytes longer: "envoy_" and a
	 * separator, less the scope name's), the label, the tag */
	size_t nl = strlen(full) + 1, ql = nl + 8, ll = ln ? strlen(ln) + strlen(d->scope_name) + 4 : 1, tl = 40;
	char *b = malloc(nl + ql + ll + tl);
	if (!b)
		abort();
	s->name = memcpy(b, full, nl);
	name_done(full, buf);
	char *prom = s->prom = b + nl;
	size_t pl = (size_t)snprintf(prom, ql, "envoy_%s_%s%s%s", d->scope, d->sub ? d->sub : "", d->sub ? "." : "", d->leaf);
	for (char *p = prom; *p; p++)
		if (*p == '.' || *p == '-')
			*p = '_';
	s->label = prom + ql;
	s->label[0] = 0;
	if (ln)
		snprintf(s->label, ll, "%s=\"%s\"", ln, d->scope_name);
	s->tag = s->label + ll;
	s->tag[0] = 0;
	if (pl > 4 && prom[pl - 4] == '_' && prom[pl - 3] >= '1' && prom[pl - 3] <= '5' && prom[pl - 2] == 'x' && prom[pl - 1] == 'x') {
		snprintf(s->tag, tl, "envoy_response_code_class=\"%c\"", prom[pl - 3]);
		memmove(prom + pl - 3, prom + pl - 2, 3);
	}
	s->idx = d->idx;
	s->type = d->type;
}

/* The stats as rendered, sorted by name; free with shown_free. The definitions are copied under
 * the lock and the names built outside it. */
static struct shown *snapshot_defs(uint32_t *n)
{
	pthread_mutex_lock(&lock);
	struct def *c = malloc((n_defs ? n_defs : 1) * sizeof(*c));
	if (n_defs) /* none yet: defs is NULL */
		memcpy(c, defs, n_defs * sizeof(*c));
	*n = n_defs;
	pthread_mutex_unlock(&lock);
	struct shown *s = malloc((*n ? *n : 1) * sizeof(*s));
	for (uint32_t i = 0; i < *n; i++)
		show(&c[i], &s[i]);
	free(c);
	qsort(s, *n, sizeof(*s), cmp_shown);
	return s;
}

static void shown_free(struct shown *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(s[i].name);
	free(s);
}

/* ?filter=: a regex searched in each stat's name. 0 (re NULL when no filter) or -1 with a
 * message written to out. */
static int compile_filter(struct wf_jbuf *out, const char *filter, pcre2_code **re)
{
	*re = NULL;
	if (!filter || !*filter)
		return 0;
	char err[160];
	*re = wf_regex_compile(filter, 0, err, sizeof(err));
	if (*re)
		return 0;
	wf_jbuf_printf(out, "invalid filter regex '%s': %s\n", filter, err);
	return -1;
}

static int name_ok(const pcre2_code *re, const char *name)
{
	return !re || wf_regex_match(re, name, strlen(name));
}

int wf_stats_render_text(struct wf_jbuf *out, const char *filter)
{
	pcre2_code *re;
	if (compile_filter(out, filter, &re) < 0)
		return -1;
	uint32_t n;
	struct shown *d = snapshot_defs(&n);
	for (uint32_t i = 0; i < n; i++) {
		if (d[i].type == WF_STAT_HIDDEN)
			continue;
		if (d[i].type == WF_STAT_CODES) {
			for (uint32_t k = 0; k < WF_STAT_CODE_SLOTS; k++) {
				int64_t v = wf_stat_value(d[i].idx + k);
				char name[600];
				snprintf(name, sizeof(name), "%s_%u", d[i].name, k + 100);
				if (v && name_ok(re, name))
					wf_jbuf_printf(out, "%s: %lld\n", name, (long long)v);
			}
			continue;
		}
		if (!name_ok(re, d[i].name))
			continue;
		if (d[i].type != WF_STAT_HIST) {
			wf_jbuf_printf(out, "%s: %lld\n", d[i].name, (long long)wf_stat_value(d[i].idx));
			continue;
		}
		int64_t cnt = wf_stat_value(d[i].idx + WF_HIST_BUCKETS + 1);
		if (!cnt) {
			wf_jbuf_printf(out, "%s: No recorded values\n", d[i].name);
			continue;
		}
		wf_jbuf_printf(out, "%s: count=%lld sum=%lld\n", d[i].name, (long long)cnt,
		               (long long)wf_stat_value(d[i].idx + WF_HIST_BUCKETS + 2));
	}
	shown_free(d, n);
	if (re)
		pcre2_code_free(re);
	return 0;
}

int wf_stats_render_json(struct wf_jbuf *out, const char *filter)
{
	pcre2_code *re;
	if (compile_filter(out, filter, &re) < 0)
		return -1;
	uint32_t n;
	struct shown *d = snapshot_defs(&n);
	wf_jbuf_puts(out, "{\"stats\":[");
	int first = 1;
	for (uint32_t i = 0; i < n; i++) {
		if (d[i].type == WF_STAT_HIST || d[i].type == WF_STAT_HIDDEN)
			continue;
		if (d[i].type == WF_STAT_CODES) {
			for (uint32_t k = 0; k < WF_STAT_CODE_SLOTS; k++) {
				int64_t v = wf_stat_value(d[i].idx + k);
				char name[600];
				snprintf(name, sizeof(name), "%s_%u", d[i].name, k + 100);
				if (v && name_ok(re, name)) {
					wf_jbuf_printf(out, "%s{\"name\":\"%s\",\"value\":%lld}", first ? "" : ",", name,
					               (long long)v);
					first = 0;
				}
			}
			continue;
		}
		if (!name_ok(re, d[i].name))
			continue;
		wf_jbuf_printf(out, "%s{\"name\":", first ? "" : ",");
		wf_jbuf_put_jstr(out, d[i].name, strlen(d[i].name));
		wf_jbuf_printf(out, ",\"value\":%lld}", (long long)wf_stat_value(d[i].idx));
		first = 0;
	}
	wf_jbuf_puts(out, "]}\n");
	shown_free(d, n);
	if (re)
		pcre2_code_free(re);
	return 0;
}

static int cmp_prom(const void *a, const void *b)
{
	const struct shown *x = a, *y = b;
	int c = strcmp(x->prom, y->prom);
	return c ? c : strcmp(x->name, y->name);
}

/* One Prometheus sample line: NAME{LABELS} VALUE, with the stat's scope label, its tag, and
 * one more label when given. */
static void prom_line(struct wf_jbuf *out, const char *name, const char *suffix, const struct shown *d,
                      const char *extra, long long v)
{
	const char *ls[3] = {d->label, d->tag, extra};
	wf_jbuf_printf(out, "%s%s", name, suffix);
	int n = 0;
	for (int i = 0; i < 3; i++)
		if (ls[i] && *ls[i])
			wf_jbuf_printf(out, "%s%s", n++ ? "," : "{", ls[i]);
	wf_jbuf_printf(out, "%s %lld\n", n ? "}" : "", v);
}

int wf_stats_render_prometheus(struct wf_jbuf *out, const char *filter)
{
	pcre2_code *re;
	if (compile_filter(out, filter, &re) < 0)
		return -1;
	uint32_t n;
	struct shown *d = snapshot_defs(&n);
	qsort(d, n, sizeof(*d), cmp_prom);
	static const char *const tname[] = {"counter", "gauge", "histogram", "counter", "gauge"};
	const char *typed = NULL; /* the metric whose # TYPE line was written last */
	for (uint32_t i = 0; i < n; i++) {
		if (d[i].type == WF_STAT_HIDDEN || (d[i].type != WF_STAT_CODES && !name_ok(re, d[i].name)))
			continue;
		if (!typed || strcmp(typed, d[i].prom)) {
			wf_jbuf_printf(out, "# TYPE %s %s\n", d[i].prom, tname[d[i].type]);
			typed = d[i].prom;
		}
		if (d[i].type == WF_STAT_CODES) {
			for (uint32_t k = 0; k < WF_STAT_CODE_SLOTS; k++) {
				int64_t v = wf_stat_value(d[i].idx + k);
				char code[48], name[600];
				snprintf(code, sizeof(code), "envoy_response_code=\"%u\"", k + 100);
				snprintf(name, sizeof(name), "%s_%u", d[i].name, k + 100);
				if (v && name_ok(re, name))
					prom_line(out, d[i].prom, "", &d[i], code, (long long)v);
			}
			continue;
		}
		if (d[i].type != WF_STAT_HIST) {
			prom_line(out, d[i].prom, "", &d[i], NULL, (long long)wf_stat_value(d[i].idx));
			continue;
		}
		int64_t cum = 0;
		for (unsigned b = 0; b <= WF_HIST_BUCKETS; b++) {
			char le[48];
			cum += wf_stat_value(d[i].idx + b);
			if (b < WF_HIST_BUCKETS)
				snprintf(le, sizeof(le), bucket_ms[b] == (double)(long long)bucket_ms[b] ? "le=\"%.0f\"" : "le=\"%g\"", bucket_ms[b]);
			else
				snprintf(le, sizeof(le), "le=\"+Inf\"");
			prom_line(out, d[i].prom, "_bucket", &d[i], le, (long long)cum);
		}
		prom_line(out, d[i].prom, "_sum", &d[i], NULL, (long long)wf_stat_value(d[i].idx + WF_HIST_BUCKETS + 2));
		prom_line(out, d[i].prom, "_count", &d[i], NULL, (long long)wf_stat_value(d[i].idx + WF_HIST_BUCKETS + 1));
	}
	shown_free(d, n);
	if (re)
		pcre2_code_free(re);
	return 0;
}
