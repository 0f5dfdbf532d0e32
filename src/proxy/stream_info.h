/* What is known about one HTTP stream or TCP session when it ends: the input of access logs,
 * stats and (later) traces. Filled by the connection manager / TCP proxy; borrowed pointers
 * stay valid until the log line has been rendered. */
#ifndef WF_PROXY_STREAM_INFO_H
#define WF_PROXY_STREAM_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "http/h1.h"

/* Envoy's response flags (%RESPONSE_FLAGS%), in Envoy's print order. */
enum {
	WF_RF_LH = 1u << 0,   /* failed local health check */
	WF_RF_UH = 1u << 1,   /* no healthy upstream host */
	WF_RF_UT = 1u << 2,   /* upstream request timeout */
	WF_RF_LR = 1u << 3,   /* connection local reset */
	WF_RF_UR = 1u << 4,   /* upstream remote reset */
	WF_RF_UF = 1u << 5,   /* upstream connection failure */
	WF_RF_UC = 1u << 6,   /* upstream connection termination */
	WF_RF_UO = 1u << 7,   /* upstream overflow (circuit breaking) */
	WF_RF_NR = 1u << 8,   /* no route configured */
	WF_RF_DI = 1u << 9,   /* delay injected */
	WF_RF_FI = 1u << 10,  /* fault injected */
	WF_RF_RL = 1u << 11,  /* rate limited */
	WF_RF_UAEX = 1u << 12,/* unauthorized (external authorization) */
	WF_RF_RLSE = 1u << 13,/* rate limit service error */
	WF_RF_DC = 1u << 14,  /* downstream connection termination */
	WF_RF_URX = 1u << 15, /* upstream retry limit exceeded */
	WF_RF_SI = 1u << 16,  /* stream idle timeout */
	WF_RF_IH = 1u << 17,  /* invalid envoy request headers */
	WF_RF_DPE = 1u << 18, /* downstream protocol error */
	WF_RF_UMSDR = 1u << 19,/* upstream max stream duration reached */
	WF_RF_UPE = 1u << 20, /* upstream protocol error */
	WF_RF_NC = 1u << 21,  /* no cluster found */
	WF_RF_DT = 1u << 22,  /* downstream request timeout (request_timeout / headers timeout) */
};

/* Write the flags as Envoy does ("UH", "UF,URX", or "-" when none) into out; returns length. */
size_t wf_resp_flags_str(uint32_t flags, char *out, size_t outlen);

struct wf_stream_info {
	uint64_t start_wall_us;          /* wall clock at the first byte of the request, µs since epoch */
	uint64_t start_us;               /* monotonic µs at start */
	uint64_t end_us;                 /* monotonic µs when the response was fully sent */
	int64_t upstream_service_us;     /* request sent upstream -> response head received; -1 none */
	const struct wf_hdr *req_headers; uint32_t n_req_headers;    /* downstream request, as sent upstream */
	const struct wf_hdr *resp_headers; uint32_t n_resp_headers;  /* response as sent downstream */
	const char *method; uint32_t method_len;            /* NULL for TCP sessions */
	const char *path; uint32_t path_len;                /* original path (before rewrites) */
	const char *authority; uint32_t authority_len;
	const char *protocol;                               /* "HTTP/1.1", "HTTP/1.0"; NULL for TCP */
	int response_code;                                  /* 0 when no response was sent */
	uint32_t response_flags;                            /* WF_RF_* */
	uint64_t bytes_received;                            /* request body bytes (TCP: downstream->upstream) */
	uint64_t bytes_sent;                                /* response body bytes (TCP: upstream->downstream) */
	const char *upstream_host;                          /* "10.0.0.1:8080", NULL when none */
	const char *upstream_cluster;                       /* NULL when none */
	const char *route_name;                             /* NULL when none */
	const char *downstream_remote;                      /* "ip:port" of the client (from XFF when trusted) */
	const char *downstream_direct_remote;               /* "ip:port" of the peer; NULL: downstream_remote */
	const char *downstream_local;                       /* "ip:port" the client connected to */
	const char *request_id;  uint32_t request_id_len;   /* x-request-id; NULL when none */
};

#endif
