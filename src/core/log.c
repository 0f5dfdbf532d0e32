#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int wf_log_level = WF_LOG_INFO;

static const char *const names[] = {"trace", "debug", "info", "warning", "error", "off"};

int wf_log_level_parse(const char *s)
{
	for (int i = 0; i <= WF_LOG_OFF; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (strcmp(s, "warn") == 0)
		return WF_LOG_WARN;
	if (strcmp(s, "critical") == 0)
		return WF_LOG_ERROR;
	return -1;
}

void wf_log_(int level, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "[%04d-%02d-%02d %02d:%02d:%02d.%03d][%s] ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, (int)(tv.tv_usec / 1000), names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}
