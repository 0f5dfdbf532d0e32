/* 64-bit hashes of bytes: xxHash, compiled in from Debian's libxxhash-dev header (no shared
 * library mapped into every proxy). */
#ifndef WF_CORE_HASH_H
#define WF_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH64: stable across builds and the one Envoy's ring hash and Maglev use, so request hash
 * keys and anything kept or compared by value (version hashes) use it. */
uint64_t wf_xxh64(const void *p, size_t n, uint64_t seed);
/* XXH3, 64 bits: faster on short keys, for in-memory tables. */
uint64_t wf_xxh3(const void *p, size_t n);

#endif
