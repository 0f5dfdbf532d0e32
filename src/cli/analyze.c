/* weft analyze PATH...: load Istio configuration (directories of *.yaml / *.yml, or files) and
 * report findings across objects, istioctl-analyze style. Objects that fail validation are
 * reported as schema errors (IST0106) and left out of the analysis. Exit 1 on any Error. */
#include "cli/cli.h"
#include "control/analyze.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int wf_cmd_analyze(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: weft analyze DIR|FILE...\n");
		return 2;
	}
	struct wf_store *s = wf_store_new();
	struct wf_errs errs = {0};
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			wf_store_load_dir(s, argv[i], &errs);
		else
			wf_store_load_file(s, argv[i], &errs);
	}
	int errors = (int)errs.n;
	for (size_t i = 0; i < errs.n; i++)
		printf("Error [IST0106] Schema validation error: %s\n", errs.v[i]);
	struct wf_findings f = {0};
	errors += wf_analyze(s, &f);
	for (size_t i = 0; i < f.n; i++) {
		char line[2048];
		wf_finding_format(&f.v[i], line, sizeof(line));
		printf("%s\n", line);
	}
	if (!errs.n && !f.n) {
		printf("\u2714 No validation issues found when analyzing ");
		for (int i = 1; i < argc; i++)
			printf("%s%s", argv[i], i + 1 < argc ? " " : ".\n");
	}
	wf_findings_free(&f);
	wf_errs_free(&errs);
	wf_store_free(s);
	return errors ? 1 : 0;
}
