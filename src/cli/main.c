/* weft: one binary, subcommands. */
#include "cli/cli.h"
#include "core/log.h"
#include "filter/filters.h"

#include <stdio.h>
#include <string.h>

#define WEFT_VERSION "0.1.0"

int wf_cli_log_level(const char *arg)
{
	int level = wf_log_level_parse(arg);
	if (level < 0) {
		fprintf(stderr, "weft: unknown log level '%s'\n", arg);
		return -1;
	}
	wf_log_level = level;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: weft <command> [options]\n\n"
	           "commands:\n"
	           "  proxy -c FILE.yaml [--concurrency N] [--drain-time-s S] [-l LEVEL]\n"
	           "                      run the data plane from an Envoy v3 bootstrap file\n"
	           "  validate FILE.yaml  check a bootstrap or Istio file without starting anything\n"
	           "  translate -f ISTIO.yaml... --node NODE.yaml [--bootstrap]\n"
	           "                      print the Envoy resources Istio config gives one proxy\n"
	           "  analyze DIR|FILE... report findings across Istio objects (istioctl analyze style)\n"
	           "  control [--xds-port N] [--envoy-resources FILE.yaml] [--admin-port N] ...\n"
	           "                      run the control plane: serve xDS (ADS over gRPC) to proxies\n"
	           "  proxy-status [--control HOST:PORT]\n"
	           "                      each connected proxy's xDS status (SYNCED, STALE, NACK)\n"
	           "  proxy-config PROXY listeners|routes|clusters|endpoints|all [-o json]\n"
	           "                      what a proxy holds (from its admin's /config_dump)\n"
	           "  version             print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	wf_filters_init();
	if (!strcmp(cmd, "proxy"))
		return wf_cmd_proxy(argc - 1, argv + 1);
	if (!strcmp(cmd, "validate"))
		return wf_cmd_validate(argc - 1, argv + 1);
	if (!strcmp(cmd, "analyze"))
		return wf_cmd_analyze(argc - 1, argv + 1);
	if (!strcmp(cmd, "control"))
		return wf_cmd_control(argc - 1, argv + 1);
	if (!strcmp(cmd, "proxy-status"))
		return wf_cmd_proxy_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "proxy-config"))
		return wf_cmd_proxy_config(argc - 1, argv + 1);
	if (!strcmp(cmd, "translate"))
		return wf_cmd_translate(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("weft %s\n", WEFT_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "weft: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
