#include "http/grpc.h"

#include <string.h>
#include <strings.h>

int wf_grpc_content_type(const char *v, size_t n)
{
	return n >= 16 && !strncasecmp(v, "application/grpc", 16) && (n == 16 || v[16] == '+' || v[16] == ';');
}

int64_t wf_grpc_timeout_ms(const char *v, size_t n)
{
	if (n < 2 || n > 9)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H': return (int64_t)(x * 3600000);
	case 'M': return (int64_t)(x * 60000);
	case 'S': return (int64_t)(x * 1000);
	case 'm': return (int64_t)x;
	case 'u': return (int64_t)((x + 999) / 1000);
	case 'n': return (int64_t)((x + 999999) / 1000000);
	}
	return -1;
}

int wf_grpc_status_parse(const char *v, size_t n)
{
	if (!n || n > 9)
		return -1;
	int x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

int wf_grpc_status_from_http(int s)
{
	switch (s) {
	case 400: return WF_GRPC_INTERNAL;
	case 401: return WF_GRPC_UNAUTHENTICATED;
	case 403: return WF_GRPC_PERMISSION_DENIED;
	case 404: return WF_GRPC_UNIMPLEMENTED;
	case 429: case 502: case 503: case 504: return WF_GRPC_UNAVAILABLE;
	}
	return WF_GRPC_UNKNOWN;
}

size_t wf_grpc_message_encode(const char *in, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n && cap; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 0x20 && c <= 0x7e && c != '%') {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				break;
			out[o++] = '%', out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
		}
	}
	if (cap)
		out[o] = 0;
	return o;
}

int wf_grpc_retry_code(const char *name, size_t n)
{
	static const struct { const char *s; int code; } t[] = {
	    {"cancelled", WF_GRPC_CANCELLED}, {"deadline-exceeded", WF_GRPC_DEADLINE_EXCEEDED},
	    {"internal", WF_GRPC_INTERNAL}, {"resource-exhausted", WF_GRPC_RESOURCE_EXHAUSTED},
	    {"unavailable", WF_GRPC_UNAVAILABLE}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].s) == n && !memcmp(t[i].s, name, n))
			return t[i].code;
	return -1;
}

const char *wf_grpc_status_name(int s)
{
	static const char *const names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	                                    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	                                    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	                                    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
	return s >= 0 && s <= 16 ? names[s] : "UNKNOWN";
}
