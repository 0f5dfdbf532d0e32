/* weft proxy: the data plane. The main thread loads and reloads the config, runs the admin
 * server and handles signals; the workers serve traffic (proxy/worker.h). */
#include "cli/cli.h"
#include "core/log.h"
#include "core/loop.h"
#include "proxy/admin.h"
#include "proxy/ads.h"
#include "proxy/ads_set.h"
#include "proxy/config.h"
#include "proxy/dns.h"
#include "proxy/health.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "xds/cfgdoc.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

static struct {
	struct wf_loop loop;
	struct wf_io sig, ino;
	struct wf_io cert_ino;        /* the served config's certificate files (see watch_tls_files) */
	struct wf_timer tick;
	struct wf_timer rebuild;      /* a DNS cluster's hosts changed: recompile and publish */
	struct wf_admin admin;
	struct wf_addr admin_addr;
	int admin_on;
	const char *config;
	char *config_dir, *config_base;
	unsigned concurrency;
	uint64_t drain_ms;
	uint64_t drain_deadline;
	uint64_t version;
	uint64_t reload_at;           /* debounced file-change reload */
	uint64_t trim_at;             /* give freed heap back to the system (after a config change) */
	int draining;
	int starting;                 /* the workers wait for the first round of health checks */
	int ads_on;                   /* dynamic_resources: the xDS client runs */
	int exit_code;
} P;

/* The workers open a new config's listeners after it is published, when it is too late to
 * refuse it: so try each new address here first. 0, or -1 with err set. */
static int check_new_listeners(const struct wf_snapshot *old, const struct wf_snapshot *s, char *err, size_t n)
{
	for (uint32_t i = 0; i < s->n_listeners; i++) {
		const struct wf_listener *l = &s->listeners[i];
		int known = 0;
		for (uint32_t k = 0; old && k < old->n_listeners; k++)
			known |= wf_addr_eq(&old->listeners[k].addr, &l->addr);
		if (known)
			continue;
		int fd = wf_sock_listen(&l->addr, 1, 1, l->ipv4_compat);
		if (fd < 0) {
			snprintf(err, n, "listener '%s': cannot listen on %s: %s", l->name, l->addr_str, strerror(-fd));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static void admin_drain(struct wf_admin *a);
static void admin_quit(struct wf_admin *a);

/* Move the admin server when a new config gives it another address. 0 or -1 with err set. */
static int admin_follow(const struct wf_snapshot *s, char *err, size_t n)
{
	if (!s->has_admin || (P.admin_on && wf_addr_eq(&P.admin_addr, &s->admin_addr)))
		return 0;
	struct wf_admin next = {.on_drain = admin_drain, .on_quit = admin_quit, .draining = P.admin.draining,
	                        .health_failed = P.admin.health_failed, .initializing = P.admin.initializing};
	int r = wf_admin_start(&next, &P.loop, &s->admin_addr);
	if (r < 0) {
		char a[64];
		snprintf(err, n, "admin: cannot listen on %s: %s", wf_addr_str(&s->admin_addr, a, sizeof(a)), strerror(-r));
		return -1;
	}
	if (P.admin_on)
		wf_admin_stop(&P.admin);
	P.admin = next;
	P.admin.io.data = &P.admin;
	wf_io_set(&P.loop, &P.admin.io, EPOLLIN); /* epoll must point at the copy, not at `next` */
	P.admin_addr = s->admin_addr;
	P.admin_on = 1;
	return 0;
}

/* Publish a new snapshot: the health checkers and the DNS refresh timers follow it first,
 * so that no worker sees a new host unflagged or a name that nobody re-resolves. */
static void watch_tls_files(const struct wf_snapshot *s);

static void publish(struct wf_snapshot *s)
{
	s->version = ++P.version;
	wf_health_sync(&P.loop, s);
	wf_dns_sync(s);
	wf_snapshot_activate(s);
	watch_tls_files(s);
	wf_snapshot_publish(s);
	/* Decoding and compiling a config frees as much as it keeps (the YAML tree, the xDS
	 * responses), in pieces the allocator keeps: the free pages go back a moment later, and
	 * again once the config before is freed (on_tick). A sidecar of 1,000 services: 5 MB. */
	P.trim_at = wf_loop_now(&P.loop) + 2000;
}

/* Certificate, key and CA files: their directories are watched (files are replaced by
 * rename as often as they are rewritten), and a change to one of the files reloads the
 * config, as an edit of the config file does. Rebuilt for each published config. */
static void on_cert_inotify(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n;
	int hit = 0;
	struct wf_snapshot *s = wf_snapshot_acquire();
	while ((n = read(io->fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			for (uint32_t i = 0; s && e->len && i < s->n_tls_files; i++) {
				char *d = strdup(s->tls_files[i]);
				if (!strcmp(basename(d), e->name))
					hit = 1;
				free(d);
			}
			p += sizeof(*e) + e->len;
		}
	wf_snapshot_release(s);
	if (hit)
		P.reload_at = wf_loop_now(loop) + 100; /* a certificate and its key come in two writes */
}

static void watch_tls_files(const struct wf_snapshot *s)
{
	if (P.cert_ino.fd >= 0) {
		wf_io_del(&P.loop, &P.cert_ino);
		close(P.cert_ino.fd);
		P.cert_ino.fd = -1;
	}
	if (!s->n_tls_files)
		return;
	P.cert_ino.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (P.cert_ino.fd < 0)
		return;
	for (uint32_t i = 0; i < s->n_tls_files; i++) {
		char *d = strdup(s->tls_files[i]);
		if (inotify_add_watch(P.cert_ino.fd, dirname(d), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
			wf_warn("cannot watch %s for certificate changes: %s", s->tls_files[i], strerror(errno));
		free(d);
	}
	P.cert_ino.cb = on_cert_inotify;
	wf_io_set(&P.loop, &P.cert_ino, EPOLLIN);
}

/* As Envoy binds a listener when LDS brings it: a listener new or changed in this set (so, in
 * an LDS update) whose address nothing of ours listens on yet is tried now, even when it will
 * warm until its routes come — a clash refuses the LDS update (NACK) instead of every later
 * route update that would open it. 0, or -1 with err set. */
static int check_xds_listeners(const struct wf_snapshot *old, const struct wf_xds_set *set, char *err, size_t n)
{
	const struct wf_xds_set *cur = wf_ads_resources();
	for (uint32_t i = 0; i < set->n[WF_XDS_LDS]; i++) {
		const struct wf_xds_res *r = &set->res[WF_XDS_LDS][i];
		const struct wf_xds_res *was = wf_xds_set_find(cur, WF_XDS_LDS, r->name);
		if (was && was->hash == r->hash)
			continue;
		const Envoy__Config__Listener__V3__Listener *l = (const void *)wf_cfgdoc_root(r->doc);
		if (!l->address || l->address->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
		    l->address->socket_address->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE)
			continue; /* no address (api_listener) or a bad one: the compile says */
		const Envoy__Config__Core__V3__SocketAddress *sa = l->address->socket_address;
		struct wf_addr a;
		if (wf_addr_from_ip(&a, sa->address, sa->port_value) < 0)
			continue;
		int known = 0;
		for (uint32_t k = 0; old && k < old->n_listeners; k++)
			known |= wf_addr_eq(&old->listeners[k].addr, &a);
		if (known)
			continue;
		int fd = wf_sock_listen(&a, 1, 1, sa->ipv4_compat);
		if (fd < 0) {
			snprintf(err, n, "listener '%s': cannot listen on %s:%u: %s", r->name, sa->address, sa->port_value,
			         strerror(-fd));
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* The xDS client has a new resource set: compile it with the bootstrap being served and
 * publish it, as a reload would (the listeners it adds are tried first). */
static int ads_apply(void *ctx, struct wf_xds_set *set, char *err, size_t n)
{
	struct wf_snapshot *old = wf_snapshot_acquire();
	if (check_xds_listeners(old, set, err, n) < 0) {
		wf_snapshot_release(old);
		return -1;
	}
	struct wf_snapshot *s = old ? wf_config_with_xds(old, set, err, n) : NULL;
	int ok = s && check_new_listeners(old, s, err, n) == 0;
	wf_snapshot_release(old);
	if (!ok) {
		wf_snapshot_free(s);
		return -1;
	}
	publish(s);
	wf_info("config updated (xDS): version %llu, %u listeners, %u clusters%s", (unsigned long long)s->version,
	        s->n_listeners, s->n_clusters, s->n_warming ? " (some warming)" : "");
	return 0;
}

static const struct wf_ads_ops ads_ops = {.apply = ads_apply};

static void reload(const char *why)
{
	char err[1024];
	struct wf_snapshot *s = wf_config_load(P.config, P.concurrency, err, sizeof(err));
	if (s && P.ads_on && wf_ads_resources()) {
		/* the file's static resources, with the xDS ones held */
		struct wf_snapshot *x = wf_config_with_xds(s, (struct wf_xds_set *)wf_ads_resources(), err, sizeof(err));
		wf_snapshot_free(s);
		s = x;
	}
	struct wf_snapshot *old = s ? wf_snapshot_acquire() : NULL;
	int ok = s && check_new_listeners(old, s, err, sizeof(err)) == 0 && admin_follow(s, err, sizeof(err)) == 0;
	wf_snapshot_release(old);
	if (!ok) {
		wf_error("config reload (%s) refused, the previous config keeps serving: %s", why, err);
		wf_snapshot_free(s);
		return;
	}
	publish(s);
	wf_info("config reloaded (%s): version %llu", why, (unsigned long long)s->version);
}

/* A DNS cluster's addresses changed: compile the config being served again (never the file
 * on disk, which may have changed or be invalid since) with the new addresses. Every change
 * seen in one pass of the main loop makes one new snapshot. */
static void on_rebuild(struct wf_loop *loop, struct wf_timer *t)
{
	char err[1024];
	struct wf_snapshot *old = wf_snapshot_acquire();
	struct wf_snapshot *s = old ? wf_config_rebuild(old, err, sizeof(err)) : NULL;
	wf_snapshot_release(old);
	if (!s) {
		if (old)
			wf_error("DNS change not applied, the previous hosts keep serving: %s", err);
		return;
	}
	publish(s);
	wf_debug("config rebuilt (DNS change): version %llu", (unsigned long long)s->version);
}

static void on_dns_change(void)
{
	if (!wf_timer_armed(&P.rebuild))
		wf_timer_set(&P.loop, &P.rebuild, 1);
}

static void start_drain(const char *why)
{
	if (P.draining)
		return;
	P.draining = 1;
	P.admin.draining = 1;
	P.drain_deadline = wf_loop_now(&P.loop) + P.drain_ms;
	wf_info("%s: draining (up to %llu ms)", why, (unsigned long long)P.drain_ms);
	wf_workers_drain();
}

/* Open the listeners: the workers start serving the published snapshot. */
static int start_workers(void)
{
	char err[1024];
	P.starting = 0;
	P.admin.initializing = P.ads_on && !wf_ads_initialized();
	if (wf_workers_start(P.concurrency, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: %s\n", err);
		return -1;
	}
	return 0;
}

static void on_tick(struct wf_loop *loop, struct wf_timer *t)
{
	wf_snapshot_reap();
	if (P.starting && !P.draining && !wf_health_initializing() && start_workers() < 0) {
		P.exit_code = 1;
		wf_loop_stop(loop);
		return;
	}
	if (P.admin.initializing && !P.starting && wf_ads_initialized())
		P.admin.initializing = 0; /* the first xDS config came: /ready says LIVE */
	if (P.reload_at && wf_loop_now(loop) >= P.reload_at) {
		P.reload_at = 0;
		reload("file changed");
	}
	if (wf_snapshots_freed() && !P.trim_at)
		P.trim_at = wf_loop_now(loop) + 500; /* a config was freed: its pages too, soon */
	if (P.trim_at && wf_loop_now(loop) >= P.trim_at) {
		P.trim_at = 0;
		malloc_trim(0);
	}
	if (P.draining && (wf_workers_conns() == 0 || wf_loop_now(loop) >= P.drain_deadline)) {
		if (wf_workers_conns())
			wf_warn("drain time over: closing %u connections", wf_workers_conns());
		wf_loop_stop(loop);
		return;
	}
	wf_timer_set(loop, t, P.starting ? 5 : 50);
}

static void on_signal(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct signalfd_siginfo si;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload("SIGHUP");
		else
			start_drain(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
	}
}

static void on_inotify(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n;
	int hit = 0;
	while ((n = read(io->fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->len && !strcmp(e->name, P.config_base))
				hit = 1;
			p += sizeof(*e) + e->len;
		}
	if (hit)
		P.reload_at = wf_loop_now(loop) + 100; /* editors write in several steps */
}

static void admin_drain(struct wf_admin *a) { wf_workers_drain(); }

static void admin_quit(struct wf_admin *a)
{
	P.drain_ms = 0;
	start_drain("/quitquitquit");
}

int wf_cmd_proxy(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config-path", required_argument, NULL, 'c'},
	    {"concurrency", required_argument, NULL, 'n'},
	    {"drain-time-s", required_argument, NULL, 'd'},
	    {"log-level", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	P.concurrency = nproc > 0 ? (unsigned)nproc : 1;
	P.drain_ms = 30000;
	int o;
	P.cert_ino.fd = -1;
	while ((o = getopt_long(argc, argv, "c:l:", opts, NULL)) != -1) {
		switch (o) {
		case 'c': P.config = optarg; break;
		case 'n': P.concurrency = (unsigned)atoi(optarg); break;
		case 'd': P.drain_ms = (uint64_t)(atof(optarg) * 1000); break;
		case 'l':
			if (wf_cli_log_level(optarg) < 0)
				return 2;
			break;
		default:
			fprintf(stderr, "usage: weft proxy -c FILE.yaml [--concurrency N] [--drain-time-s S] [-l LEVEL]\n");
			return 2;
		}
	}
	if (!P.config) {
		fprintf(stderr, "weft: proxy needs a config: -c FILE.yaml\n");
		return 2;
	}
	if (P.concurrency < 1 || P.concurrency > 128) {
		fprintf(stderr, "weft: --concurrency must be 1..128\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A proxy holds two descriptors per proxied connection: take all the kernel allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	wf_stats_thread_init();
	char err[1024];
	struct wf_snapshot *s = wf_config_load(P.config, P.concurrency, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "weft: %s\n", err);
		return 1;
	}
	if (wf_loop_init(&P.loop) < 0)
		return 1;
	/* The first resolution of DNS clusters' names happened in wf_config_load, blocking, as
	 * Envoy warms its clusters before opening listeners; from here on names are re-resolved
	 * on the resolver thread. */
	P.rebuild.cb = on_rebuild;
	int dr = wf_dns_start(&P.loop, on_dns_change);
	if (dr < 0) {
		fprintf(stderr, "weft: cannot start the DNS resolver thread: %s\n", strerror(-dr));
		return 1;
	}
	publish(s);
	/* signals through a signalfd, blocked before the workers start so they inherit the mask */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	P.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	P.sig.cb = on_signal;
	wf_io_set(&P.loop, &P.sig, EPOLLIN);
	if (admin_follow(s, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: %s\n", err);
		return 1;
	}
	if (wf_health_initializing()) {
		P.starting = 1; /* on_tick starts the workers after the first round of health checks */
		P.admin.initializing = 1;
	} else if (start_workers() < 0) {
		return 1;
	}
	/* watch the config's directory: editors and `mv` replace the file rather than write it */
	char *d1 = strdup(P.config), *d2 = strdup(P.config);
	P.config_dir = strdup(dirname(d1));
	P.config_base = strdup(basename(d2));
	free(d1);
	free(d2);
	P.ino.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (P.ino.fd >= 0 && inotify_add_watch(P.ino.fd, P.config_dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) >= 0) {
		P.ino.cb = on_inotify;
		wf_io_set(&P.loop, &P.ino, EPOLLIN);
	}
	P.tick.cb = on_tick;
	wf_timer_set(&P.loop, &P.tick, P.starting ? 5 : 50);
	wf_info("weft proxy started: %u listeners, %u clusters, %u workers", s->n_listeners, s->n_clusters, P.concurrency);
	/* dynamic_resources: the static listeners serve already; the xDS ones come as they arrive */
	if (s->ads) {
		wf_ads_start(&P.loop, s->ads, &ads_ops, NULL);
		P.ads_on = 1;
		P.admin.initializing = P.starting || !wf_ads_initialized();
	}
	wf_loop_run(&P.loop);
	if (P.ads_on)
		wf_ads_stop();
	wf_health_stop();
	wf_dns_stop();
	wf_workers_stop();
	wf_info("exiting");
	return P.exit_code;
}
