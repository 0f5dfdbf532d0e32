/* What every fuzz target checks its invariants with: a broken one aborts, which libFuzzer
 * (and the corpus replayer) report as a crash with the failed condition. */
#ifndef WF_FUZZ_ENSURE_H
#define WF_FUZZ_ENSURE_H

#include <stdio.h>
#include <stdlib.h>

#define ENSURE(cond)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
			abort();                                                                       \
		}                                                                                  \
	} while (0)

#endif
