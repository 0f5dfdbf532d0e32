/* The HTTP connection manager (envoy.filters.network.http_connection_manager), HTTP/1.1. */
#ifndef WF_PROXY_HCM_H
#define WF_PROXY_HCM_H

#include "proxy/worker.h"

#endif
