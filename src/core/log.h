/* Logging to stderr, Envoy-style: "[2026-11-26 10:00:00.123][info] message". */
#ifndef WF_CORE_LOG_H
#define WF_CORE_LOG_H

enum wf_log_level { WF_LOG_TRACE, WF_LOG_DEBUG, WF_LOG_INFO, WF_LOG_WARN, WF_LOG_ERROR, WF_LOG_OFF };

extern int wf_log_level;

/* Parse "trace|debug|info|warn|warning|error|critical|off"; -1 when unknown. */
int wf_log_level_parse(const char *s);
void wf_log_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define wf_log(level, ...)                                                                 \
	do {                                                                                   \
		if ((level) >= wf_log_level)                                                       \
			wf_log_(level, __VA_ARGS__);                                                   \
	} while (0)
#define wf_debug(...) wf_log(WF_LOG_DEBUG, __VA_ARGS__)
#define wf_info(...) wf_log(WF_LOG_INFO, __VA_ARGS__)
#define wf_warn(...) wf_log(WF_LOG_WARN, __VA_ARGS__)
#define wf_error(...) wf_log(WF_LOG_ERROR, __VA_ARGS__)

#endif
