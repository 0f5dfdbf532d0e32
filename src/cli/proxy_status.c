/* weft proxy-status [--control HOST:PORT]: the connected proxies and their xDS status per
 * type, read from the control plane's /debug/syncz (istioctl proxy-status's table). */
#include "cli/cli.h"
#include "net/sock.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a small JSON reader: just enough for /debug/syncz (objects, arrays, strings, numbers,
 * literals); strings keep their escapes decoded for \" \\ \/ \n \t, others as '?' -------------- */

struct jv {
	char type;                 /* 'o' object, 'a' array, 's' string, 'x' other */
	char *s;                   /* 's' */
	char **keys;               /* 'o' */
	struct jv *kids;           /* 'o', 'a' */
	size_t n;
};

struct jp {
	const char *p, *end;
	int depth;
};

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

static char *jstring(struct jp *j)
{
	if (j->p >= j->end || *j->p != '"')
		return NULL;
	j->p++;
	char *out = malloc((size_t)(j->end - j->p) + 1), *o = out;
	if (!out)
		return NULL;
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;
		if (c == '\\' && j->p < j->end) {
			char e = *j->p++;
			c = e == 'n' ? '\n' : e == 't' ? '\t' : e == '"' || e == '\\' || e == '/' ? e : '?';
			if (e == 'u')
				j->p += j->end - j->p >= 4 ? 4 : j->end - j->p;
		}
		*o++ = c;
	}
	if (j->p >= j->end) {
		free(out);
		return NULL;
	}
	j->p++;
	*o = 0;
	return out;
}

static int jvalue(struct jp *j, struct jv *v);

static int jlist(struct jp *j, struct jv *v, char close, int obj)
{
	j->p++;
	size_t cap = 0;
	for (;;) {
		ws(j);
		if (j->p < j->end && *j->p == close && !v->n) {
			j->p++;
			return 0;
		}
		if (v->n == cap) {
			cap = cap ? cap * 2 : 8;
			struct jv *k = realloc(v->kids, cap * sizeof(*k));
			char **ks = obj ? realloc(v->keys, cap * sizeof(*ks)) : NULL;
			if (!k || (obj && !ks))
				return -1;
			v->kids = k;
			if (obj)
				v->keys = ks;
		}
		memset(&v->kids[v->n], 0, sizeof(v->kids[0]));
		if (obj) {
			v->keys[v->n] = jstring(j);
			if (!v->keys[v->n])
				return -1;
			ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		v->n++;
		if (jvalue(j, &v->kids[v->n - 1]) < 0)
			return -1;
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return 0;
		}
		return -1;
	}
}

static int jvalue(struct jp *j, struct jv *v)
{
	ws(j);
	if (j->p >= j->end || ++j->depth > 32)
		return -1;
	int rc = 0;
	if (*j->p == '{') {
		v->type = 'o';
		rc = jlist(j, v, '}', 1);
	} else if (*j->p == '[') {
		v->type = 'a';
		rc = jlist(j, v, ']', 0);
	} else if (*j->p == '"') {
		v->type = 's';
		v->s = jstring(j);
		rc = v->s ? 0 : -1;
	} else {
		v->type = 'x';
		while (j->p < j->end && !strchr(",}] \n\r\t", *j->p))
			j->p++;
	}
	j->depth--;
	return rc;
}

static void jfree(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree(&v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->s);
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->type != 'o')
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->kids[i];
	return NULL;
}

static const char *jstr(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);
	return v && v->type == 's' ? v->s : "";
}

/* ---- fetching ---------------------------------------------------------------------------------- */

/* GET path from addr ("HOST:PORT", "PORT"); the body in *body (malloc'd). 0 or -1 (err). */
static int http_get(const char *target, const char *path, char **body, char *err, size_t errlen)
{
	char ip[128] = "127.0.0.1";
	unsigned port;
	const char *colon = strrchr(target, ':');
	if (colon) {
		port = wf_addr_str_split(target, ip, sizeof(ip));
		if (!ip[0])
			snprintf(ip, sizeof(ip), "127.0.0.1");
	} else {
		port = (unsigned)atoi(target);
	}
	if (!strcmp(ip, "localhost"))
		snprintf(ip, sizeof(ip), "127.0.0.1");
	struct wf_addr a;
	if (!port || wf_addr_from_ip(&a, ip, port) < 0) {
		snprintf(err, errlen, "--control %s: not IP:PORT", target);
		return -1;
	}
	int fd = wf_sock_connect(&a);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", target, strerror(-fd));
		return -1;
	}
	struct pollfd pf = {fd, POLLOUT, 0};
	if (poll(&pf, 1, 5000) <= 0) {
		close(fd);
		snprintf(err, errlen, "%s: connect timed out", target);
		return -1;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n", path, target);
	if (write(fd, req, (size_t)n) != n) {
		snprintf(err, errlen, "%s: %s (is `weft control` running with --admin-port %u?)", target, strerror(errno), port);
		close(fd);
		return -1;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			close(fd);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		pf = (struct pollfd){fd, POLLIN, 0};
		if (poll(&pf, 1, 5000) <= 0)
			break;
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len + 1 == cap) {
			char *q = realloc(buf, cap *= 2);
			if (!q)
				free(buf);
			buf = q;
		}
	}
	close(fd);
	buf[len] = 0;
	char *b = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200", 12) || !b) {
		snprintf(err, errlen, "%s%s: no status (%.60s)", target, path, len ? buf : "no answer");
		free(buf);
		return -1;
	}
	memmove(buf, b + 4, len - (size_t)(b + 4 - buf) + 1);
	*body = buf;
	return 0;
}

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
	if (http_get(target, "/debug/syncz", &body, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: proxy-status: %s\n", err);
		return 1;
	}
	struct jp j = {body, body + strlen(body), 0};
	struct jv root = {0};
	if (jvalue(&j, &root) < 0 || root.type != 'a') {
		fprintf(stderr, "weft: proxy-status: %s/debug/syncz: not the JSON expected\n", target);
		jfree(&root);
		free(body);
		return 1;
	}
	static const char *const TYPES[] = {"CDS", "LDS", "EDS", "RDS"};
	size_t w_name = 4, w_cluster = 7;
	for (size_t i = 0; i < root.n; i++) {
		size_t a = strlen(jstr(&root.kids[i], "proxy")), b = strlen(jstr(&root.kids[i], "cluster"));
		w_name = a > w_name ? a : w_name;
		w_cluster = b > w_cluster ? b : w_cluster;
	}
	printf("%-*s  %-*s  %-9s %-9s %-9s %-9s\n", (int)w_name, "NAME", (int)w_cluster, "CLUSTER", "CDS", "LDS", "EDS", "RDS");
	for (size_t i = 0; i < root.n; i++) {
		const struct jv *p = &root.kids[i];
		printf("%-*s  %-*s ", (int)w_name, jstr(p, "proxy"), (int)w_cluster, jstr(p, "cluster"));
		for (int t = 0; t < 4; t++)
			printf(" %-9s", jstr(jget(p, TYPES[t]), "status"));
		printf("\n");
		for (int t = 0; t < 4; t++) {
			const char *nack = jstr(jget(p, TYPES[t]), "nack");
			if (nack[0])
				printf("    %s NACK: %s\n", TYPES[t], nack);
		}
	}
	jfree(&root);
	free(body);
	return 0;
}
