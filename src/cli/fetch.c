/* What the CLI's client commands share: a blocking HTTP/1.1 GET of an admin page, and a small
 * JSON reader for what those pages answer. */
#include "cli/cli.h"
#include "net/sock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


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

static int jvalue(struct jp *j, struct wf_cli_json *v);

static int jlist(struct jp *j, struct wf_cli_json *v, char close, int obj)
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
			struct wf_cli_json *k = realloc(v->kids, cap * sizeof(*k));
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

static int jvalue(struct jp *j, struct wf_cli_json *v)
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

int wf_cli_json_parse(const char *text, struct wf_cli_json *out)
{
	struct jp j = {text, text + strlen(text), 0};
	memset(out, 0, sizeof(*out));
	return jvalue(&j, out);
}

void wf_cli_json_free(struct wf_cli_json *v)
{
	for (size_t i = 0; i < v->n; i++) {
		wf_cli_json_free(&v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->s);
}

const struct wf_cli_json *wf_cli_json_get(const struct wf_cli_json *o, const char *key)
{
	if (!o || o->type != 'o')
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->kids[i];
	return NULL;
}

const char *wf_cli_json_str(const struct wf_cli_json *o, const char *key)
{
	const struct wf_cli_json *v = wf_cli_json_get(o, key);
	return v && v->type == 's' ? v->s : "";
}

/* ---- fetching ---------------------------------------------------------------------------------- */

int wf_cli_http_get(const char *target, const char *path, char **body, char *err, size_t errlen)
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
		snprintf(err, errlen, "%s: not IP:PORT", target);
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
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
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
