#include "core/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t wf_xxh64(const void *p, size_t n, uint64_t seed) { return XXH64(p, n, seed); }

uint64_t wf_xxh3(const void *p, size_t n) { return XXH3_64bits(p, n); }
