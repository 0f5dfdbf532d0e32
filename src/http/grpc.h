/* gRPC over HTTP: what a proxy needs to know of it without decoding messages — is a request
 * gRPC, its deadline (grpc-timeout), the status a trailer carries, the status an HTTP error
 * maps to, the percent-encoding of grpc-message, and the names retry_on uses for codes. */
#ifndef WF_HTTP_GRPC_H
#define WF_HTTP_GRPC_H

#include <stddef.h>
#include <stdint.h>

enum wf_grpc_status {
	WF_GRPC_OK = 0, WF_GRPC_CANCELLED = 1, WF_GRPC_UNKNOWN = 2, WF_GRPC_INVALID_ARGUMENT = 3,
	WF_GRPC_DEADLINE_EXCEEDED = 4, WF_GRPC_NOT_FOUND = 5, WF_GRPC_ALREADY_EXISTS = 6,
	WF_GRPC_PERMISSION_DENIED = 7, WF_GRPC_RESOURCE_EXHAUSTED = 8, WF_GRPC_FAILED_PRECONDITION = 9,
	WF_GRPC_ABORTED = 10, WF_GRPC_OUT_OF_RANGE = 11, WF_GRPC_UNIMPLEMENTED = 12, WF_GRPC_INTERNAL = 13,
	WF_GRPC_UNAVAILABLE = 14, WF_GRPC_DATA_LOSS = 15, WF_GRPC_UNAUTHENTICATED = 16,
};

/* content-type application/grpc, application/grpc+proto, application/grpc;...: 1. */
int wf_grpc_content_type(const char *v, size_t n);
/* grpc-timeout ("<1-8 digits><H|M|S|m|u|n>") in milliseconds, rounded up; -1 when invalid. */
int64_t wf_grpc_timeout_ms(const char *v, size_t n);
/* A grpc-status value (decimal); -1 when not one. */
int wf_grpc_status_parse(const char *v, size_t n);
/* The status a gRPC client should see for an HTTP error status (the gRPC spec's table). */
int wf_grpc_status_from_http(int http_status);
/* grpc-message percent-encoded (bytes outside 0x20..0x7e and '%' as %XX) into out (cap
 * bytes, always NUL-terminated): the length written, truncated at a whole escape. */
size_t wf_grpc_message_encode(const char *in, size_t n, char *out, size_t cap);
/* retry_on names of gRPC codes ("cancelled", "deadline-exceeded", "internal",
 * "resource-exhausted", "unavailable"): the code, or -1. */
int wf_grpc_retry_code(const char *name, size_t n);
/* The canonical name of a status ("UNAVAILABLE"), for logs and stats. */
const char *wf_grpc_status_name(int status);

/* A message's 5-byte prefix (length-prefixed message, gRPC over HTTP/2): the compressed-flag
 * byte, then the length big-endian. */
static inline uint32_t wf_grpc_prefix_len(const uint8_t *p)
{
	return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}
static inline void wf_grpc_prefix_put(uint8_t *p, uint32_t n)
{
	p[0] = 0; /* not compressed */
	p[1] = (uint8_t)(n >> 24), p[2] = (uint8_t)(n >> 16), p[3] = (uint8_t)(n >> 8), p[4] = (uint8_t)n;
}

#endif
