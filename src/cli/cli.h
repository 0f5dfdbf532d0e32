/* Subcommands of the weft binary. Each returns the process exit status. */
#ifndef WF_CLI_H
#define WF_CLI_H

int wf_cmd_proxy(int argc, char **argv);
int wf_cmd_validate(int argc, char **argv);
int wf_cmd_analyze(int argc, char **argv);
int wf_cmd_control(int argc, char **argv);
int wf_cmd_proxy_status(int argc, char **argv);
int wf_cmd_translate(int argc, char **argv);
int wf_cmd_proxy_config(int argc, char **argv);

/* The log level from a -l/--log-level argument (cli/main.c): 0, or -1 after saying why on
 * stderr. */
int wf_cli_log_level(const char *arg);

/* ---- shared by the client commands (cli/fetch.c) ---- */

#include <stddef.h>

/* GET path from target ("HOST:PORT", or "PORT" on 127.0.0.1): the body of a 200 answer in
 * *body (malloc'd). 0, or -1 with err ("TARGET: why"). Waits at most 5 s for each step. */
int wf_cli_http_get(const char *target, const char *path, char **body, char *err, size_t errlen);

/* A small JSON reader, enough for the admin pages: objects, arrays, strings (\\" \\\\ \\/ \\n
 * \\t decoded, other escapes as '?'), other values kept as type 'x' (not decoded). */
struct wf_cli_json {
	char type;                      /* 'o' object, 'a' array, 's' string, 'x' other */
	char *s;                        /* 's' */
	char **keys;                    /* 'o' */
	struct wf_cli_json *kids;       /* 'o', 'a' */
	size_t n;
};
/* 0, or -1 (not JSON, or nested deeper than 32): free *out either way. */
int wf_cli_json_parse(const char *text, struct wf_cli_json *out);
void wf_cli_json_free(struct wf_cli_json *v);
/* The member `key` of object o, or NULL; its string value, or "". */
const struct wf_cli_json *wf_cli_json_get(const struct wf_cli_json *o, const char *key);
const char *wf_cli_json_str(const struct wf_cli_json *o, const char *key);

#endif
