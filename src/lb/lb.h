/* Load-balancing policies (Envoy's lb_policy): how a host is chosen among a cluster's.
 *
 * A wf_lb is built once per config (main thread) from the hosts' weights and keys, and is then
 * read-only; what changes per pick lives in the caller: per-worker round-robin state, the
 * per-host active request counts, the worker's random generator, and which hosts are
 * currently usable (healthy, not ejected). Picking allocates nothing and takes no lock.
 *
 *   ROUND_ROBIN    smooth weighted round robin (per worker)
 *   LEAST_REQUEST  power of N choices (default 2) among usable hosts by active requests;
 *                  with unequal weights, weight / (active + 1) decides (Envoy's formula)
 *   RANDOM         uniform among usable hosts
 *   RING_HASH      consistent hashing on a ring of xxHash64 points (minimum_ring_size..max)
 *   MAGLEV         Maglev lookup table (default size 65537)
 * The hash policies (RING_HASH, MAGLEV) need a request hash; without one they pick at random. */
#ifndef WF_LB_LB_H
#define WF_LB_LB_H

#include <stddef.h>
#include <stdint.h>

enum wf_lb_kind { WF_LB_ROUND_ROBIN, WF_LB_LEAST_REQUEST, WF_LB_RANDOM, WF_LB_RING_HASH, WF_LB_MAGLEV };

struct wf_lb {
	uint8_t kind;              /* enum wf_lb_kind */
	uint32_t n;                /* hosts */
	uint32_t *weight;          /* [n] */
	int weighted;              /* not all weights equal */
	uint32_t choice_count;     /* LEAST_REQUEST */
	uint64_t *ring;            /* RING_HASH: sorted points */
	uint32_t *ring_host;       /* host of each point */
	uint32_t ring_n;
	uint32_t *table;           /* MAGLEV: host per slot */
	uint32_t table_n;
};

struct wf_lb_params {
	uint32_t choice_count;     /* 0: 2 */
	uint64_t min_ring;         /* 0: 1024 */
	uint64_t max_ring;         /* 0: 8M */
	uint64_t table_size;       /* 0: 65537; must be prime */
};

/* Build the policy for n hosts with these weights (>= 1) and keys (the address strings the
 * hash policies place on the ring/table). 0, or -EINVAL/-ENOMEM with err set. */
int wf_lb_build(struct wf_lb *lb, enum wf_lb_kind kind, const uint32_t *weights, const char *const *keys,
                uint32_t n, const struct wf_lb_params *p, char *err, size_t errlen);
void wf_lb_free(struct wf_lb *lb);

/* What a pick may look at, owned by the caller. */
struct wf_lb_ctx {
	uint64_t *rng;             /* xorshift state of the calling worker */
	int64_t *rr;               /* [n] smooth round-robin current weights (per worker) */
	const uint8_t *usable;     /* [n] 1 when the host may take traffic */
	const int64_t *active;     /* [n] active requests per host (LEAST_REQUEST), may be NULL */
	uint64_t hash;             /* request hash (hash policies) */
	int has_hash;
};

/* The chosen host's index, or -1 when none is usable. */
int wf_lb_pick(const struct wf_lb *lb, struct wf_lb_ctx *ctx);


#endif
