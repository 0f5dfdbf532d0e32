/* Access logs (envoy.access_loggers.file, envoy.access_loggers.stdout/stderr), Envoy's
 * format language: text (default format or `text_format_source`/`format`) and `json_format`.
 *
 * A wf_alog is compiled once per config (main thread) and shared read-only by the workers,
 * except for its per-worker output buffers: worker `wid` appends whole lines to its own buffer,
 * which is flushed with one write() when the worker's loop goes idle (or when it grows large),
 * so a log line costs no syscall of its own under load. */
#ifndef WF_PROXY_ALOG_H
#define WF_PROXY_ALOG_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/stream_info.h"

struct wf_cfgdoc;
struct wf_alog_fmt;

/* Envoy's default text format (with the trailing newline). */
extern const char WF_ALOG_DEFAULT_FORMAT[];

/* Compile a text format ("%START_TIME% %REQ(:PATH)%..."). NULL with err filled ("unknown
 * command 'FOO' at offset 12") when invalid. */
struct wf_alog_fmt *wf_alog_fmt_text(const char *fmt, char *err, size_t errlen);
/* Compile a json_format (a google.protobuf.Struct message whose string values are formats;
 * nested structs allowed; numbers/bools are literals). */
struct wf_alog_fmt *wf_alog_fmt_json(const ProtobufCMessage *json_struct, char *err, size_t errlen);
void wf_alog_fmt_free(struct wf_alog_fmt *f);
/* SubstitutionFormatString.omit_empty_values: a missing value prints as "" instead of "-" in
 * text, and a JSON key whose value is a single missing operator is left out. */
void wf_alog_fmt_set_omit_empty(struct wf_alog_fmt *f, int on);
/* Render one entry; appends to *out (malloc'd, grown as needed; *len/ *cap updated).
 * Returns 0 or -ENOMEM. JSON entries end with "\n". */
int wf_alog_render(const struct wf_alog_fmt *f, const struct wf_stream_info *si, char **out,
                   size_t *len, size_t *cap);

struct wf_alog;
/* Set by `weft validate`: check that log files could be opened, without creating them. */
extern int wf_alog_check_only;
/* Compile an envoy.config.accesslog.v3.AccessLog message (from doc; its typed_config is
 * FileAccessLog, StdoutAccessLog or StderrAccessLog) for `n_workers` workers. Opens the file
 * (O_APPEND|O_CREAT). NULL with a located error from wf_cfg_err on failure. */
struct wf_alog *wf_alog_compile(struct wf_cfgdoc *doc, const ProtobufCMessage *access_log,
                                unsigned n_workers, char *err, size_t errlen);
void wf_alog_free(struct wf_alog *a);
/* Worker `wid` logs one entry. Returns 1 when the worker's buffer for this log went from
 * empty to non-empty (the caller remembers to flush it), 0 otherwise. */
int wf_alog_emit(struct wf_alog *a, unsigned wid, const struct wf_stream_info *si);
/* Write out worker `wid`'s buffered lines. What cannot be written (an error, or a
 * non-blocking fd that stays full for ~100 ms) is dropped and counted, never retried. */
void wf_alog_flush(struct wf_alog *a, unsigned wid);

struct wf_alog_stats {
	uint64_t write_failed;   /* flushes that hit a write error and dropped data */
	uint64_t dropped_bytes;  /* bytes dropped by those flushes */
	uint64_t render_failed;  /* entries lost because their buffer could not grow */
};
/* The sum over workers (read without locking: for stats, not exact while workers run). */
void wf_alog_stats(const struct wf_alog *a, struct wf_alog_stats *out);

#endif
