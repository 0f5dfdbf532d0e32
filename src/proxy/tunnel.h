/* A byte tunnel between two connections (an upgraded HTTP/1.1 stream: WebSocket, CONNECT).
 *
 * Bytes read from side i are written to side 1-i through the wf_sio buffers, so whatever a
 * connection already holds (payload that came with the request head or the 101) goes first,
 * and the relay works over any transport wf_sio speaks. Back-pressure: side i is not read
 * while side 1-i has `wm` bytes or more queued. Half-close is passed on: once side i has
 * ended and all it sent is written, side 1-i gets shutdown(SHUT_WR). The tunnel is over when
 * both directions have ended this way. */
#ifndef WF_PROXY_TUNNEL_H
#define WF_PROXY_TUNNEL_H

#include "proxy/sio.h"

#include <stdint.h>

struct wf_tunnel {
	struct wf_sio *s[2];     /* 0: downstream, 1: upstream (the owner's connections) */
	uint64_t bytes[2];       /* moved from s[i] to s[1-i] */
	uint32_t wm;             /* output watermark */
	uint8_t eof[2];          /* s[i] will send nothing more */
	uint8_t shut[2];         /* s[i]'s write side was shut down */
};

/* Move what can be moved both ways, then set both sides' epoll interest.
 * 1 when both directions are over (the owner closes both), 0 while the tunnel lives,
 * <0 (-errno) when a side failed (the owner closes both). */
int wf_tunnel_run(struct wf_tunnel *t, struct wf_loop *loop, struct wf_pool *pool);

#endif
