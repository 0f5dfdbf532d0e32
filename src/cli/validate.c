/* weft validate FILE...: decode and compile each file exactly as `weft proxy` would. */
#include "cli/cli.h"
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
	int bad = 0;
	for (int i = 1; i < argc; i++) {
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
	return bad;
}
