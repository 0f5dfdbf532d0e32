/* ENSURE(cond): a fuzz target's invariant; abort (a crash libFuzzer keeps) when it fails. */
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
