/* weft proxy-status [--control HOST:PORT]: the connected proxies and their xDS status per
 * type, read from the control plane's /debug/syncz (istioctl proxy-status's table). */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wf_cmd_proxy_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	const char *target = "127.0.0.1:15014";
	int o;
	while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (o != 'c') {
			fprintf(stderr, "usage: weft proxy-status [--control HOST:PORT]  (the control plane's admin port, default 127.0.0.1:15014)\n");
			return 2;
		}
		target = optarg;
	}
	char err[512], *body;
	if (wf_cli_http_get(target, "/debug/syncz", &body, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: proxy-status: %s (is `weft control` running with that --admin-port?)\n", err);
		return 1;
	}
	struct wf_cli_json root;
	if (wf_cli_json_parse(body, &root) < 0 || root.type != 'a') {
		fprintf(stderr, "weft: proxy-status: %s/debug/syncz: not the JSON expected\n", target);
		wf_cli_json_free(&root);
		free(body);
		return 1;
	}
	static const char *const TYPES[] = {"CDS", "LDS", "EDS", "RDS"};
	size_t w_name = 4, w_cluster = 7;
	for (size_t i = 0; i < root.n; i++) {
		size_t a = strlen(wf_cli_json_str(&root.kids[i], "proxy")), b = strlen(wf_cli_json_str(&root.kids[i], "cluster"));
		w_name = a > w_name ? a : w_name;
		w_cluster = b > w_cluster ? b : w_cluster;
	}
	printf("%-*s  %-*s  %-9s %-9s %-9s %-9s\n", (int)w_name, "NAME", (int)w_cluster, "CLUSTER", "CDS", "LDS", "EDS", "RDS");
	for (size_t i = 0; i < root.n; i++) {
		const struct wf_cli_json *p = &root.kids[i];
		printf("%-*s  %-*s ", (int)w_name, wf_cli_json_str(p, "proxy"), (int)w_cluster, wf_cli_json_str(p, "cluster"));
		for (int t = 0; t < 4; t++)
			printf(" %-9s", wf_cli_json_str(wf_cli_json_get(p, TYPES[t]), "status"));
		printf("\n");
		for (int t = 0; t < 4; t++) {
			const char *nack = wf_cli_json_str(wf_cli_json_get(p, TYPES[t]), "nack");
			if (nack[0])
				printf("    %s NACK: %s\n", TYPES[t], nack);
		}
	}
	wf_cli_json_free(&root);
	free(body);
	return 0;
}
