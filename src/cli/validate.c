/* weft validate FILE...: check each file without starting anything.
 *   - Kubernetes-shaped files (documents with apiVersion/kind) are Istio configuration: every
 *     document is decoded and validated by the control plane's store, every error printed;
 *     an object defined twice across the files given is an error too.
 *   - Anything else is an Envoy bootstrap, decoded and compiled exactly as `weft proxy` would. */
#include "cli/cli.h"
#include "control/store.h"
#include "proxy/config.h"
#include "proxy/alog.h"
#include "proxy/stats.h"

#include <stdio.h>

int wf_cmd_validate(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: weft validate FILE.yaml...\n");
		return 2;
	}
	wf_stats_thread_init();
	wf_alog_check_only = 1;
	struct wf_store *store = NULL;
	int bad = 0;
	for (int i = 1; i < argc; i++) {
		if (wf_istio_is_k8s_file(argv[i])) {
			if (!store)
				store = wf_store_new();
			struct wf_errs errs = {0};
			if (wf_store_load_file(store, argv[i], &errs) < 0) {
				for (size_t j = 0; j < errs.n; j++)
					fprintf(stderr, "weft: %s\n", errs.v[j]);
				bad = 1;
			} else {
				printf("%s: OK\n", argv[i]);
			}
			wf_errs_free(&errs);
			continue;
		}
		char err[1024];
		struct wf_snapshot *s = wf_config_load(argv[i], 1, err, sizeof(err));
		if (!s) {
			fprintf(stderr, "weft: %s\n", err);
			bad = 1;
			continue;
		}
		printf("%s: OK\n", argv[i]);
		wf_snapshot_free(s);
	}
	wf_store_free(store);
	return bad;
}
