/* weft control: the control plane (istiod's role). Serves ADS over gRPC (h2c on --xds-port,
 * TLS on --xds-tls-port when given a certificate), the resources of its generators (now:
 * --envoy-resources FILE), pushes changes (debounced), and answers /ready and /debug/syncz
 * on --admin-port. One thread, one event loop. */
#include "cli/cli.h"
#include "control/ads.h"
#include "control/envoy_source.h"
#include "control/grpc_server.h"
#include "control/push.h"
#include "control/status.h"
#include "control/translate_source.h"
#include "control/xds_cache.h"
#include "core/log.h"
#include "http/grpc.h"
#include "xds/json.h"
#include "net/tls.h"
#include "proxy/config.h"
#include "proxy/stats.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static struct {
	struct wf_loop loop;
	struct wf_ads *ads;
	struct wf_xds_cache *cache;
	struct wf_envoy_source *src;
	struct wf_push push;
	struct wf_io sig, ino;
	struct wf_translate_source *istio;  /* --config-dir */
	struct wf_timer expire;             /* registered workloads past their grace period */
	uint64_t grace_ms;
} C;

/* ---- ADS over the gRPC server ---------------------------------------------------------------- */

struct acall {
	struct wf_grpc_call *call;
	struct wf_ads_stream *st;
};

static int acall_send(void *ctx, const ProtobufCMessage *m) { return wf_grpc_call_send(((struct acall *)ctx)->call, m); }
static int acall_send_lent(void *ctx, const ProtobufCMessage *head, const void *body, size_t len, void (*done)(void *),
                           void *arg)
{
	return wf_grpc_call_send_lent(((struct acall *)ctx)->call, head, body, len, done, arg);
}
static size_t acall_queued(void *ctx) { return wf_grpc_call_queued(((struct acall *)ctx)->call); }

static void *acall_open(struct wf_grpc_call *call, int delta)
{
	struct acall *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->call = call;
	struct wf_ads_io io = {.send = acall_send, .send_lent = acall_send_lent, .queued = acall_queued, .ctx = a};
	a->st = wf_ads_stream_new(C.ads, delta, wf_grpc_call_peer(call), &io);
	if (!a->st) {
		free(a);
		return NULL;
	}
	return a;
}

static void *sotw_open(void *ctx, struct wf_grpc_call *call) { return acall_open(call, 0); }
static void *delta_open(void *ctx, struct wf_grpc_call *call) { return acall_open(call, 1); }

static int acall_message(void *ctx, const uint8_t *p, size_t n)
{
	struct acall *a = ctx;
	char err[512];
	int st = wf_ads_stream_recv(a->st, p, n, err, sizeof(err));
	if (st > 0) {
		wf_info("ads: %s: ending the stream: %s: %s", wf_grpc_call_peer(a->call), wf_grpc_status_name(st), err);
		wf_grpc_call_finish(a->call, st, err);
		return -1;
	}
	return 0;
}

static void acall_half_close(void *ctx) { wf_grpc_call_finish(((struct acall *)ctx)->call, WF_GRPC_OK, NULL); }
static void acall_writable(void *ctx) { wf_ads_stream_writable(((struct acall *)ctx)->st); }

static void acall_closed(void *ctx)
{
	struct acall *a = ctx;
	wf_ads_stream_free(a->st);
	free(a);
}

static const struct wf_grpc_method METHODS[] = {
	{"/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", sotw_open,
	 acall_message, acall_half_close, acall_writable, acall_closed, NULL},
	{"/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources", delta_open,
	 acall_message, acall_half_close, acall_writable, acall_closed, NULL},
};

/* ---- the resources ----------------------------------------------------------------------------- */

static int empty_generate(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c,
                          struct wf_xds_snap *s)
{
	return 0;
}

static const struct wf_xds_generator EMPTY = {.name = "empty", .generate = empty_generate};

static void log_counts(const char *what, const char *path)
{
	wf_info("%s %s: %u clusters, %u endpoint sets, %u listeners, %u route configurations", what, path,
	        wf_envoy_source_count(C.src, WF_XDS_CDS), wf_envoy_source_count(C.src, WF_XDS_EDS),
	        wf_envoy_source_count(C.src, WF_XDS_LDS), wf_envoy_source_count(C.src, WF_XDS_RDS));
}

static const char *src_path;

static int reload(void *ctx)
{
	char err[1024];
	int rc = wf_envoy_source_reload(C.src, err, sizeof(err));
	if (rc < 0)
		wf_error("envoy-resources: %s (refused: still serving the last good version)", err);
	else if (rc > 0)
		log_counts("envoy-resources: reloaded", src_path);
	return rc;
}

static void on_inotify(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	if (wf_envoy_source_events(C.src))
		wf_push_change(&C.push);
}

static void on_signal(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct signalfd_siginfo si;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		wf_info("%s: shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		wf_loop_stop(loop);
	}
}

/* ---- Istio configuration (--config-dir) ---------------------------------------------------------- */

static void log_errs(struct wf_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		wf_error("config-dir: %s", e->v[i]);
	wf_errs_free(e);
}

static void on_config_dir(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_errs e = {0};
	if (wf_translate_source_events(C.istio, &e) > 0)
		wf_push_change(&C.push);
	log_errs(&e);
}

/* A sidecar's stream brings its node: register its workload before its first snapshot. */
static void proxy_connected(void *ctx, const Envoy__Config__Core__V3__Node *node)
{
	if (wf_translate_source_connected(C.istio, node)) {
		wf_xds_cache_invalidate(C.cache);
		wf_push_change(&C.push);
	}
}

static void proxy_gone(void *ctx, const Envoy__Config__Core__V3__Node *node)
{
	wf_translate_source_disconnected(C.istio, node->id, wf_now_ms(), C.grace_ms);
	if (!wf_timer_armed(&C.expire))
		wf_timer_set(&C.loop, &C.expire, C.grace_ms + 1);
}

/* GET /debug/configz: what the directory gives, and every file refused now with its errors. */
static int configz(const void *ctx, struct wf_jbuf *b)
{
	const struct wf_translate_source *src = ctx;
	struct wf_errs e = {0};
	wf_store_errors(wf_translate_source_store(src), &e);
	int rc = wf_jbuf_printf(b, "{\"objects\": %zu, \"workloads\": %zu, \"errors\": [",
	                        wf_translate_source_objects(src), wf_translate_source_workloads(src));
	for (size_t i = 0; i < e.n; i++) {
		rc |= wf_jbuf_puts(b, i ? ",\n  " : "\n  ");
		rc |= wf_jbuf_put_jstr(b, e.v[i], strlen(e.v[i]));
	}
	rc |= wf_jbuf_puts(b, e.n ? "\n]}\n" : "]}\n");
	wf_errs_free(&e);
	return rc ? -ENOMEM : 0;
}

static void on_expire(struct wf_loop *loop, struct wf_timer *t)
{
	if (wf_translate_source_expire(C.istio, wf_now_ms()))
		wf_push_change(&C.push);
	if (wf_translate_source_workloads(C.istio))
		wf_timer_set(loop, t, 1000);
}

/* ---- TLS --------------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 8192, len = 0;
	char *p = malloc(cap);
	size_t r;
	while (p && (r = fread(p + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap) {
			char *q = realloc(p, cap *= 2);
			if (!q) {
				free(p);
				p = NULL;
			}
			p = q;
		}
	}
	fclose(f);
	if (!p)
		snprintf(err, errlen, "%s: out of memory", path);
	*n = len;
	return p;
}

static int tls_setup(struct wf_tls_cfg *t, const char *cert, const char *key, char *err, size_t errlen)
{
	static const unsigned char ALPN[] = "\x02h2";
	if (wf_ssl_load(err, errlen) < 0)
		return -1;
	t->ctx = wf_tls_ctx_new(1, err, errlen);
	if (!t->ctx)
		return -1;
	size_t cn, kn;
	char *c = slurp(cert, &cn, err, errlen), *k = c ? slurp(key, &kn, err, errlen) : NULL;
	int rc = c && k ? wf_tls_add_cert(t->ctx, c, cn, k, kn, cert, err, errlen) : -1;
	free(c);
	free(k);
	if (rc < 0)
		return -1;
	wf_tls_set_alpn_server(t->ctx, ALPN, 3);
	t->server = 1;
	t->st_handshake = wf_stat_register(WF_STAT_COUNTER, "control", "xds", "ssl.handshake");
	t->st_connection_error = wf_stat_register(WF_STAT_COUNTER, "control", "xds", "ssl.connection_error");
	t->st_no_certificate = wf_stat_register(WF_STAT_COUNTER, "control", "xds", "ssl.no_certificate");
	t->st_fail_verify_san = t->st_fail_verify_error = t->st_fail_verify_cert_hash = t->st_session_reused =
		wf_stat_register(WF_STAT_COUNTER, "control", "xds", "ssl.other");
	return 0;
}

/* ---- main ------------------------------------------------------------------------------------- */

static int port_arg(const char *flag, const char *v, unsigned *out)
{
	char *end;
	long p = strtol(v, &end, 10);
	if (*end || p < 1 || p > 65535) {
		fprintf(stderr, "weft: %s: '%s' is not a port (1..65535)\n", flag, v);
		return -1;
	}
	*out = (unsigned)p;
	return 0;
}

static int listen_err(const char *what, unsigned port, int rc)
{
	fprintf(stderr, "weft: %s: cannot listen on port %u: %s\n", what, port, strerror(-rc));
	return 1;
}

#define USAGE "usage: weft control [--xds-port N] [--xds-tls-port N --tls-cert PEM --tls-key PEM]\n" \
              "                    [--envoy-resources FILE.yaml | --config-dir DIR [--registry-grace-s S]]\n" \
              "                    [--admin-port N] [-l LEVEL]\n"

int wf_cmd_control(int argc, char **argv)
{
	static const struct option opts[] = {
		{"xds-port", required_argument, NULL, 'x'},
		{"xds-tls-port", required_argument, NULL, 's'},
		{"tls-cert", required_argument, NULL, 'C'},
		{"tls-key", required_argument, NULL, 'K'},
		{"envoy-resources", required_argument, NULL, 'e'},
		{"config-dir", required_argument, NULL, 'd'},
		{"registry-grace-s", required_argument, NULL, 'g'},
		{"admin-port", required_argument, NULL, 'a'},
		{"log-level", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	unsigned xds_port = 15010, tls_port = 15012, admin_port = 15014;
	const char *cert = NULL, *key = NULL, *config_dir = NULL;
	int o;
	/* A push queues responses of up to a few MB per stream, within the push budget, over and
	 * over: serve them from the heap and keep what is freed for the next ones, rather than
	 * mapping fresh zeroed pages for each (a third of a large push's CPU was page faults). */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 2 * WF_ADS_PUSH_BUDGET);
	while ((o = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
		switch (o) {
		case 'x': if (port_arg("--xds-port", optarg, &xds_port) < 0) return 2; break;
		case 's': if (port_arg("--xds-tls-port", optarg, &tls_port) < 0) return 2; break;
		case 'a': if (port_arg("--admin-port", optarg, &admin_port) < 0) return 2; break;
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'e': src_path = optarg; break;
		case 'd': config_dir = optarg; break;
		case 'g': {
			char *end;
			double sec = strtod(optarg, &end);
			if (end == optarg || *end || !(sec >= 0 && sec <= 86400)) {
				fprintf(stderr, "weft: --registry-grace-s: '%s' is not a number of seconds (0..86400)\n", optarg);
				return 2;
			}
			C.grace_ms = (uint64_t)(sec * 1000) + (sec == 0); /* 0: at once (1 ms) */
			break;
		}
		case 'l':
			if (wf_cli_log_level(optarg) < 0)
				return 2;
			break;
		default:
			fprintf(stderr, USAGE);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "weft: control: unexpected argument '%s'\n" USAGE, argv[optind]);
		return 2;
	}
	if (config_dir && src_path) {
		fprintf(stderr, "weft: --config-dir and --envoy-resources do not go together\n" USAGE);
		return 2;
	}
	if (!C.grace_ms)
		C.grace_ms = 10000;
	if (!cert != !key) {
		fprintf(stderr, "weft: --tls-cert and --tls-key go together\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	wf_stats_thread_init();
	char err[1024];
	struct wf_tls_cfg tls = {0};
	if (cert && tls_setup(&tls, cert, key, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: xDS TLS: %s\n", err);
		return 1;
	}
	const struct wf_xds_generator *gen = &EMPTY;
	uint32_t n_gen = 1;
	if (config_dir) {
		struct wf_errs e = {0};
		C.istio = wf_translate_source_new(config_dir, &e);
		if (!C.istio) {
			for (size_t i = 0; i < e.n; i++)
				fprintf(stderr, "weft: %s\n", e.v[i]);
			wf_errs_free(&e);
			return 1;
		}
		log_errs(&e);
		gen = wf_translate_source_generators(C.istio, &n_gen);
	}
	if (src_path) {
		C.src = wf_envoy_source_new(src_path, err, sizeof(err));
		if (!C.src) {
			fprintf(stderr, "weft: %s\n", err);
			return 1;
		}
		gen = wf_envoy_source_generator(C.src);
	}
	if (wf_loop_init(&C.loop) < 0)
		return 1;
	C.cache = wf_xds_cache_new(gen, n_gen);
	struct wf_ads_hooks hooks = {.connected = proxy_connected, .gone = proxy_gone};
	C.ads = wf_ads_new(C.cache, C.istio ? &hooks : NULL);
	struct wf_grpc_server *gs = wf_grpc_server_new(&C.loop, METHODS, 2);
	if (!C.cache || !C.ads || !gs)
		return 1;
	struct wf_addr addr;
	wf_addr_from_ip(&addr, "0.0.0.0", xds_port);
	int rc = wf_grpc_server_listen(gs, &addr, NULL);
	if (rc < 0)
		return listen_err("--xds-port", xds_port, rc);
	wf_info("xds: ADS over gRPC (h2c) on 0.0.0.0:%u", xds_port);
	if (cert) {
		wf_addr_from_ip(&addr, "0.0.0.0", tls_port);
		rc = wf_grpc_server_listen(gs, &addr, &tls);
		if (rc < 0)
			return listen_err("--xds-tls-port", tls_port, rc);
		wf_info("xds: ADS over gRPC (TLS, %s) on 0.0.0.0:%u", cert, tls_port);
	} else {
		wf_info("xds: TLS port %u not served: no --tls-cert/--tls-key given", tls_port);
	}
	wf_addr_from_ip(&addr, "0.0.0.0", admin_port);
	struct wf_status_srv *status = wf_status_start(&C.loop, &addr, C.ads, &rc);
	if (!status)
		return listen_err("--admin-port", admin_port, rc);
	if (C.istio)
		wf_status_page(status, "/debug/configz", configz, C.istio);
	wf_info("admin: /ready, /debug/syncz%s on 0.0.0.0:%u", C.istio ? " and /debug/configz" : "", admin_port);
	wf_push_init(&C.push, &C.loop, C.cache, C.ads, C.src ? reload : NULL, NULL);
	if (C.src) {
		log_counts("envoy-resources: serving", src_path);
		C.ino = (struct wf_io){.fd = wf_envoy_source_fd(C.src), .cb = on_inotify};
		if (C.ino.fd >= 0)
			wf_io_set(&C.loop, &C.ino, EPOLLIN);
		else
			wf_warn("envoy-resources: cannot watch %s (inotify): changes will not be seen", src_path);
	} else if (C.istio) {
		wf_info("config-dir: serving %s: %zu Istio objects", config_dir, wf_translate_source_objects(C.istio));
		C.ino = (struct wf_io){.fd = wf_translate_source_fd(C.istio), .cb = on_config_dir};
		if (C.ino.fd >= 0)
			wf_io_set(&C.loop, &C.ino, EPOLLIN);
		else
			wf_warn("config-dir: cannot watch %s (inotify): changes will not be seen", config_dir);
		C.expire = (struct wf_timer){.cb = on_expire};
	} else {
		wf_info("no --envoy-resources: serving no resources");
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	C.sig = (struct wf_io){.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC), .cb = on_signal};
	wf_io_set(&C.loop, &C.sig, EPOLLIN);

	wf_loop_run(&C.loop);

	wf_push_fini(&C.push);
	wf_status_stop(status);
	wf_grpc_server_free(gs);
	wf_ads_free(C.ads);
	wf_xds_cache_free(C.cache);
	if ((C.src || C.istio) && C.ino.fd >= 0)
		wf_io_del(&C.loop, &C.ino);
	wf_envoy_source_free(C.src);
	if (C.istio)
		wf_timer_cancel(&C.loop, &C.expire);
	wf_translate_source_free(C.istio);
	wf_io_del(&C.loop, &C.sig);
	close(C.sig.fd);
	wf_loop_fini(&C.loop);
	if (tls.ctx)
		SSL_CTX_free(tls.ctx);
	return 0;
}
