/* Access log sinks: decode an envoy.config.accesslog.v3.AccessLog into a compiled format and
 * an fd, and buffer each worker's lines until its loop goes idle.
 *
 * Buffers: one per worker, each on its own cache lines so workers never share a line.
 *
 *   a->w[wid]:  p[0 .. len)  whole rendered entries not written yet
 *               p[len .. cap) free; the buffer keeps its size across flushes, so a worker in a
 *                             steady state logs without allocating
 *
 * Only worker `wid` touches w[wid] (emit and flush); the compiled format and the fd are
 * read-only after compile. Several workers write to the same fd: the file is opened with
 * O_APPEND, and each flush is one write() of whole lines in the common case. */
#include "proxy/alog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envoy/config/accesslog/v3/accesslog.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/substitution_format_string.pb-c.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "xds/cfgdoc.h"

/* A buffer over this size is flushed at once instead of waiting for the loop to go idle. */
#define WF_ALOG_FLUSH_AT (64 * 1024)
/* How long a flush waits, in total, on a non-blocking fd that is full before dropping. */
#define WF_ALOG_WAIT_MS 100

struct wf_alog_wbuf {
	char *p;
	size_t len, cap;
	uint64_t write_failed, dropped_bytes, render_failed;
} __attribute__((aligned(64)));

struct wf_alog {
	struct wf_alog_fmt *fmt;
	int fd;
	int own_fd;                  /* opened here (closed by wf_alog_free); 0 for stdout/stderr */
	unsigned n_workers;
	struct wf_alog_wbuf *w;      /* [n_workers], 64-byte aligned */
	char *path;                  /* for messages: "/var/log/x.log", "stdout" */
};

/* ---- config ---- */

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (r == 0) {
			buf[n] = 0;
			*len = n;
			break;
		}
		n += (size_t)r;
	}
	int e = errno;
	close(fd);
	errno = e;
	return buf;
}

/* A text format from a string the user wrote in field `field` of `msg`. */
static struct wf_alog_fmt *text_fmt(struct wf_cfgdoc *doc, const void *msg, const char *field,
                                    const char *text, char *err, size_t errlen)
{
	char e[256];
	struct wf_alog_fmt *f = wf_alog_fmt_text(text, e, sizeof(e));
	if (!f)
		wf_cfg_err(doc, err, errlen, msg, field, "%s", e);
	return f;
}

static struct wf_alog_fmt *json_fmt(struct wf_cfgdoc *doc, const void *msg, const char *field,
                                    const Google__Protobuf__Struct *st, char *err, size_t errlen)
{
	char e[256];
	struct wf_alog_fmt *f = wf_alog_fmt_json(&st->base, e, sizeof(e));
	if (!f)
		wf_cfg_err(doc, err, errlen, msg, field, "%s", e);
	return f;
}

static struct wf_alog_fmt *source_fmt(struct wf_cfgdoc *doc, const Envoy__Config__Core__V3__SubstitutionFormatString *sf,
                                      char *err, size_t errlen)
{
	const Envoy__Config__Core__V3__DataSource *ds = sf->text_format_source;
	char *owned = NULL;
	const char *text = NULL;
	size_t len = 0;
	switch (ds ? ds->specifier_case : ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER__NOT_SET) {
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
		text = ds->inline_string;
		break;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
		if (!(owned = strndup((const char *)ds->inline_bytes.data, ds->inline_bytes.len)))
			goto oom;
		text = owned;
		break;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
		if (!(owned = read_file(ds->filename, &len))) {
			wf_cfg_err(doc, err, errlen, ds, "filename", "cannot read '%s': %s", ds->filename,
			           strerror(errno));
			return NULL;
		}
		if (strlen(owned) != len) {
			wf_cfg_err(doc, err, errlen, ds, "filename", "'%s' contains a NUL byte", ds->filename);
			free(owned);
			return NULL;
		}
		text = owned;
		break;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
		if (!(text = getenv(ds->environment_variable))) {
			wf_cfg_err(doc, err, errlen, ds, "environment_variable",
			           "environment variable '%s' is not set", ds->environment_variable);
			return NULL;
		}
		break;
	default:
		wf_cfg_err(doc, err, errlen, sf, "text_format_source",
		           "set one of inline_string, inline_bytes, filename, environment_variable");
		return NULL;
	}
	struct wf_alog_fmt *f = text_fmt(doc, ds, NULL, text, err, errlen);
	free(owned);
	return f;
oom:
	wf_cfg_err(doc, err, errlen, sf, "text_format_source", "out of memory");
	return NULL;
}

/* SubstitutionFormatString: the `log_format` of every logger type. NULL message: default. */
static struct wf_alog_fmt *subst_fmt(struct wf_cfgdoc *doc,
                                     const Envoy__Config__Core__V3__SubstitutionFormatString *sf,
                                     char *err, size_t errlen)
{
	struct wf_alog_fmt *f;
	switch (sf ? sf->format_case : ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT__NOT_SET) {
	case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT:
		if (!*sf->text_format) {
			wf_cfg_err(doc, err, errlen, sf, "text_format",
			           "the format is empty (leave log_format out for Envoy's default format)");
			return NULL;
		}
		f = text_fmt(doc, sf, "text_format", sf->text_format, err, errlen);
		break;
	case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT:
		f = json_fmt(doc, sf, "json_format", sf->json_format, err, errlen);
		break;
	case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT_SOURCE:
		f = source_fmt(doc, sf, err, errlen);
		break;
	default:
		f = text_fmt(doc, sf, NULL, WF_ALOG_DEFAULT_FORMAT, err, errlen);
		break;
	}
	if (f && sf)
		wf_alog_fmt_set_omit_empty(f, sf->omit_empty_values);
	return f;
}

static struct wf_alog_fmt *file_fmt(struct wf_cfgdoc *doc,
                                    const Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *fl,
                                    char *err, size_t errlen)
{
	switch (fl->access_log_format_case) {
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_FORMAT:
		return text_fmt(doc, fl, "format", *fl->format ? fl->format : WF_ALOG_DEFAULT_FORMAT, err,
		                errlen);
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_JSON_FORMAT:
		return json_fmt(doc, fl, "json_format", fl->json_format, err, errlen);
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_TYPED_JSON_FORMAT:
		return json_fmt(doc, fl, "typed_json_format", fl->typed_json_format, err, errlen);
	case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT:
		return subst_fmt(doc, fl->log_format, err, errlen);
	default:
		return subst_fmt(doc, NULL, err, errlen);
	}
}

int wf_alog_check_only;

struct wf_alog *wf_alog_compile(struct wf_cfgdoc *doc, const ProtobufCMessage *access_log,
                                unsigned n_workers, char *err, size_t errlen)
{
	const Envoy__Config__Accesslog__V3__AccessLog *al = (const void *)access_log;
	if (access_log->descriptor != &envoy__config__accesslog__v3__access_log__descriptor) {
		wf_cfg_err(doc, err, errlen, access_log, NULL, "expected an AccessLog, got %s",
		           access_log->descriptor->name);
		return NULL;
	}
	if (al->config_type_case != ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG ||
	    !al->typed_config) {
		wf_cfg_err(doc, err, errlen, al, NULL,
		           "access log '%s' has no typed_config (set \"@type\" to "
		           "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, "
		           "...stream.v3.StdoutAccessLog or ...stream.v3.StderrAccessLog)",
		           al->name);
		return NULL;
	}
	const ProtobufCMessage *cfg = wf_cfgdoc_any(doc, &al->typed_config->base, err, errlen);
	if (!cfg)
		return NULL;

	/* The type URL decides the logger, as in Envoy; `name` is only a label. */
	struct wf_alog_fmt *fmt = NULL;
	const char *path = NULL;
	int fd = -1, own_fd = 0;
	if (cfg->descriptor == &envoy__extensions__access_loggers__file__v3__file_access_log__descriptor) {
		const Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *fl = (const void *)cfg;
		path = fl->path;
		if (!*path) {
			wf_cfg_err(doc, err, errlen, fl, NULL,
			           "a file access log needs a path (a file, or /dev/stdout)");
			return NULL;
		}
		if (!(fmt = file_fmt(doc, fl, err, errlen)))
			return NULL;
		if (!strcmp(path, "/dev/stdout")) {
			fd = STDOUT_FILENO;
		} else if (!strcmp(path, "/dev/stderr")) {
			fd = STDERR_FILENO;
		} else if (wf_alog_check_only) {
			/* weft validate: say whether the file could be opened, create nothing */
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s", path);
			char *slash = strrchr(dir, '/');
			if (slash)
				*(slash == dir ? slash + 1 : slash) = 0;
			else
				snprintf(dir, sizeof(dir), ".");
			int ok = access(path, F_OK) == 0 ? access(path, W_OK) == 0 : access(dir, W_OK) == 0;
			if (!ok) {
				wf_cfg_err(doc, err, errlen, fl, "path", "cannot open '%s': %s", path, strerror(errno));
				wf_alog_fmt_free(fmt);
				return NULL;
			}
			fd = -1;
		} else {
			fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0) {
				wf_cfg_err(doc, err, errlen, fl, "path",
				           "cannot open '%s': %s (does the directory exist, and may weft write there?)",
				           path, strerror(errno));
				wf_alog_fmt_free(fmt);
				return NULL;
			}
			own_fd = 1;
		}
	} else if (cfg->descriptor ==
	           &envoy__extensions__access_loggers__stream__v3__stdout_access_log__descriptor) {
		const Envoy__Extensions__AccessLoggers__Stream__V3__StdoutAccessLog *so = (const void *)cfg;
		if (!(fmt = subst_fmt(doc, so->access_log_format_case ? so->log_format : NULL, err, errlen)))
			return NULL;
		fd = STDOUT_FILENO;
		path = "stdout";
	} else if (cfg->descriptor ==
	           &envoy__extensions__access_loggers__stream__v3__stderr_access_log__descriptor) {
		const Envoy__Extensions__AccessLoggers__Stream__V3__StderrAccessLog *se = (const void *)cfg;
		if (!(fmt = subst_fmt(doc, se->access_log_format_case ? se->log_format : NULL, err, errlen)))
			return NULL;
		fd = STDERR_FILENO;
		path = "stderr";
	} else {
		wf_cfg_err(doc, err, errlen, cfg, NULL,
		           "access log type %s is not supported (use envoy.extensions.access_loggers."
		           "file.v3.FileAccessLog, stream.v3.StdoutAccessLog or stream.v3.StderrAccessLog)",
		           cfg->descriptor->name);
		return NULL;
	}

	struct wf_alog *a = calloc(1, sizeof(*a));
	void *w = NULL;
	if (!n_workers)
		n_workers = 1;
	if (!a || posix_memalign(&w, 64, n_workers * sizeof(struct wf_alog_wbuf)) != 0 ||
	    !(a->path = strdup(path))) {
		wf_cfg_err(doc, err, errlen, al, NULL, "out of memory");
		free(w);
		if (a)
			free(a->path);
		free(a);
		wf_alog_fmt_free(fmt);
		if (own_fd)
			close(fd);
		return NULL;
	}
	memset(w, 0, n_workers * sizeof(struct wf_alog_wbuf));
	a->w = w;
	a->n_workers = n_workers;
	a->fmt = fmt;
	a->fd = fd;
	a->own_fd = own_fd;
	return a;
}

void wf_alog_free(struct wf_alog *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->n_workers; i++) {
		wf_alog_flush(a, i); /* workers have stopped: what they left is still worth writing */
		free(a->w[i].p);
	}
	free(a->w);
	if (a->own_fd)
		close(a->fd);
	wf_alog_fmt_free(a->fmt);
	free(a->path);
	free(a);
}

/* ---- workers ---- */

int wf_alog_emit(struct wf_alog *a, unsigned wid, const struct wf_stream_info *si)
{
	struct wf_alog_wbuf *b = &a->w[wid];
	size_t before = b->len;
	if (wf_alog_render(a->fmt, si, &b->p, &b->len, &b->cap) < 0) {
		b->render_failed++;
		return 0;
	}
	if (b->len > WF_ALOG_FLUSH_AT) {
		wf_alog_flush(a, wid);
		return 0;
	}
	return before == 0 && b->len > 0;
}

void wf_alog_flush(struct wf_alog *a, unsigned wid)
{
	struct wf_alog_wbuf *b = &a->w[wid];
	size_t off = 0;
	int waited_ms = 0;
	while (off < b->len) {
		ssize_t n = write(a->fd, b->p + off, b->len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* A non-blocking pipe or tty that is full (stdout shared with a slow reader): wait a
		 * little, but never stall the worker's loop for long. */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited_ms < WF_ALOG_WAIT_MS) {
			struct pollfd pfd = {.fd = a->fd, .events = POLLOUT};
			poll(&pfd, 1, 10);
			waited_ms += 10;
			continue;
		}
		b->write_failed++;
		b->dropped_bytes += b->len - off;
		break;
	}
	b->len = 0;
}

void wf_alog_stats(const struct wf_alog *a, struct wf_alog_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < a->n_workers; i++) {
		out->write_failed += a->w[i].write_failed;
		out->dropped_bytes += a->w[i].dropped_bytes;
		out->render_failed += a->w[i].render_failed;
	}
}
