/* Stats: registration by name (the same name, however it is split, is the same stat) and the
 * three renderings (/stats text, JSON, Prometheus) of counters, gauges, status codes,
 * histograms and hidden stats, names built from their shared parts. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "proxy/stats.h"
#include "test.h"
#include "xds/json.h"

/* Does the rendering hold `line` as a whole line? */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

enum { TEXT, JSON, PROM };

static char *render(int how, const char *filter)
{
	struct wf_jbuf b = {0};
	int rc = how == TEXT ? wf_stats_render_text(&b, filter)
	       : how == JSON ? wf_stats_render_json(&b, filter)
	                     : wf_stats_render_prometheus(&b, filter);
	if (rc) {
		free(b.p);
		return strdup("render failed");
	}
	return b.p ? b.p : strdup("");
}

TEST(one_name_one_stat_however_it_is_split)
{
	wf_stats_thread_init();
	uint32_t a = wf_stat_register(WF_STAT_COUNTER, "cluster", "web", "upstream_rq_total");
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", "web", "upstream_rq_total"), a);
	/* "cluster.a.b.c.d": the cluster a.b with stat c.d, or the cluster a with stat b.c.d */
	uint32_t x = wf_stat_register(WF_STAT_COUNTER, "cluster", "a.b", "c.d");
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", "a", "b.c.d"), x);
	CHECK(x != a);
	CHECK(wf_stat_register(WF_STAT_COUNTER, "cluster", "a.b", "c") != x);
	CHECK(wf_stat_register(WF_STAT_COUNTER, "cluster", "web", "upstream_rq_total_x") != a);
	/* thousands of names: each found again after the table grew */
	uint32_t first[3000];
	char n[64];
	for (int i = 0; i < 3000; i++) {
		snprintf(n, sizeof(n), "outbound|80||svc-%d.ns.svc.cluster.local", i);
		first[i] = wf_stat_register(WF_STAT_GAUGE, "cluster", n, "membership_total");
	}
	int same = 1;
	for (int i = 0; i < 3000; i++) {
		snprintf(n, sizeof(n), "outbound|80||svc-%d.ns.svc.cluster.local", i);
		same &= wf_stat_register(WF_STAT_GAUGE, "cluster", n, "membership_total") == first[i];
		same &= i == 0 || first[i] != first[i - 1];
	}
	CHECK(same);
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", "web", "upstream_rq_total"), a);
	/* Names that differ only at the end, or only in a separator, are not one stat. The table
	 * probes from the name's xxh64 (low bits): pairs are searched whose hashes agree in their
	 * low 20 bits, so that the second name's probe meets the first's definition. */
	char s1[32], s2[32];
	int found = 0;
	for (int i = 0; i < 8 << 20 && found < 2; i++) {
		snprintf(s1, sizeof(s1), "t.n%d", i);
		snprintf(s2, sizeof(s2), "t.n%dx", i);
		if (!(found & 1) && ((wf_xxh64(s1, strlen(s1), 0) ^ wf_xxh64(s2, strlen(s2), 0)) & 0xfffff) == 0) {
			uint32_t p = wf_stat_register(WF_STAT_COUNTER, "t", NULL, s1 + 2);
			CHECK(wf_stat_register(WF_STAT_COUNTER, "t", NULL, s2 + 2) != p);
			found |= 1;
		}
		snprintf(s1, sizeof(s1), "u.s%d.v", i);
		snprintf(s2, sizeof(s2), "u.s%d|v", i);
		if (!(found & 2) && ((wf_xxh64(s1, strlen(s1), 0) ^ wf_xxh64(s2, strlen(s2), 0)) & 0xfffff) == 0) {
			s1[strlen(s1) - 2] = 0;
			uint32_t p = wf_stat_register(WF_STAT_COUNTER, "u", s1 + 2, "v");
			CHECK(wf_stat_register(WF_STAT_COUNTER, "u", NULL, s2 + 2) != p);
			found |= 2;
		}
	}
	CHECK_EQ(found, 3);
}

TEST(renderings_name_every_kind_of_stat)
{
	wf_stats_thread_init();
	const char *cl = "outbound|8080||api.shop.svc.cluster.local";
	wf_stat_add(wf_stat_register(WF_STAT_COUNTER, "cluster", cl, "upstream_rq_total"), 7);
	wf_stat_add(wf_stat_register(WF_STAT_COUNTER, "cluster", cl, "upstream_rq_2xx"), 5);
	wf_stat_set(wf_stat_register(WF_STAT_GAUGE, "cluster", cl, "outlier_detection.ejections_active"), 2);
	wf_stat_code(wf_stat_register(WF_STAT_CODES, "cluster", cl, "upstream_rq"), 503);
	uint32_t h = wf_stat_register(WF_STAT_HIST, "cluster", cl, "upstream_rq_time");
	wf_stat_hist(h, 3);
	wf_stat_hist(h, 40);
	wf_stat_add(wf_stat_register(WF_STAT_HIDDEN, "cluster", cl, "host.127.0.0.1:9000.rq_total"), 4);
	wf_stat_add(wf_stat_register(WF_STAT_COUNTER, "http2", NULL, "header_overflow"), 1);
	wf_stat_add(wf_stat_register(WF_STAT_COUNTER, "http", "ingress_http", "downstream_rq-4xx"), 0);

	char *t = render(TEXT, NULL);
	CHECK(has_line(t, "cluster.outbound|8080||api.shop.svc.cluster.local.upstream_rq_total: 7"));
	CHECK(has_line(t, "cluster.outbound|8080||api.shop.svc.cluster.local.upstream_rq_2xx: 5"));
	CHECK(has_line(t, "cluster.outbound|8080||api.shop.svc.cluster.local.outlier_detection.ejections_active: 2"));
	CHECK(has_line(t, "cluster.outbound|8080||api.shop.svc.cluster.local.upstream_rq_503: 1"));
	CHECK(!strstr(t, "upstream_rq_504"));
	CHECK(has_line(t, "cluster.outbound|8080||api.shop.svc.cluster.local.upstream_rq_time: count=2 sum=43"));
	CHECK(has_line(t, "http2.header_overflow: 1"));
	CHECK(has_line(t, "http.ingress_http.downstream_rq-4xx: 0"));
	CHECK(!strstr(t, "host.127.0.0.1"));
	/* sorted by name */
	const char *p2 = strstr(t, "upstream_rq_2xx:"), *pt = strstr(t, "upstream_rq_total:");
	CHECK(p2 && pt && p2 < pt);
	free(t);

	t = render(TEXT, "ejections");
	CHECK(has_line(t, "cluster.outbound|8080||api.shop.svc.cluster.local.outlier_detection.ejections_active: 2"));
	CHECK(!strstr(t, "upstream_rq_total"));
	free(t);

	t = render(JSON, NULL);
	CHECK(strstr(t, "{\"name\":\"cluster.outbound|8080||api.shop.svc.cluster.local.upstream_rq_total\",\"value\":7}"));
	CHECK(strstr(t, "{\"name\":\"cluster.outbound|8080||api.shop.svc.cluster.local.upstream_rq_503\",\"value\":1}"));
	CHECK(strstr(t, "{\"name\":\"http2.header_overflow\",\"value\":1}"));
	CHECK(!strstr(t, "upstream_rq_time") && !strstr(t, "host.127"));
	free(t);

	t = render(PROM, NULL);
	CHECK(has_line(t, "# TYPE envoy_cluster_upstream_rq_total counter"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\"} 7"));
	/* Envoy's tag extraction: the class is a label */
	CHECK(has_line(t, "envoy_cluster_upstream_rq_xx{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\","
	                  "envoy_response_code_class=\"2\"} 5"));
	CHECK(has_line(t, "# TYPE envoy_cluster_outlier_detection_ejections_active gauge"));
	CHECK(has_line(t, "envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\"} 2"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\","
	                  "envoy_response_code=\"503\"} 1"));
	CHECK(has_line(t, "# TYPE envoy_cluster_upstream_rq_time histogram"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\",le=\"1\"} 0"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\",le=\"5\"} 1"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\",le=\"50\"} 2"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\",le=\"0.5\"} 0"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\"} 43"));
	CHECK(has_line(t, "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"outbound|8080||api.shop.svc.cluster.local\"} 2"));
	CHECK(has_line(t, "envoy_http2_header_overflow 1"));
	/* a dash becomes an underscore (then the class a tag); the scope's name is the label */
	CHECK(has_line(t, "envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"ingress_http\","
	                  "envoy_response_code_class=\"4\"} 0"));
	CHECK(!strstr(t, "host_127") && !strstr(t, "ingress_http_downstream"));
	free(t);
}

TEST(a_stat_released_as_often_as_registered_goes)
{
	wf_stats_thread_init();
	uint32_t a = wf_stat_register(WF_STAT_COUNTER, "cluster", "gone", "cx_total");
	wf_stat_add(a, 5);
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", "gone", "cx_total"), a);
	wf_stat_release(a);
	char *t = render(TEXT, "gone");
	CHECK(has_line(t, "cluster.gone.cx_total: 5")); /* one registration left */
	free(t);
	wf_stat_release(a);
	t = render(TEXT, "gone");
	CHECK(!strstr(t, "cluster.gone"));
	free(t);
	/* its slot serves the next single-slot stat, from zero */
	uint32_t b = wf_stat_register(WF_STAT_GAUGE, "cluster", "next", "cx_active");
	CHECK_EQ(b, a);
	CHECK_EQ(wf_stat_value(b), 0);
	wf_stat_release(b);
	wf_stat_release(b); /* once too often: nothing */
	wf_stat_release(0); /* the sink: nothing */
	/* a histogram's and a code block's slots go to stats of their size */
	uint32_t h = wf_stat_register(WF_STAT_HIST, "cluster", "gone", "upstream_rq_time");
	uint32_t c = wf_stat_register(WF_STAT_CODES, "cluster", "gone", "upstream_rq");
	wf_stat_hist(h, 7);
	wf_stat_code(c, 404);
	wf_stat_release(h);
	wf_stat_release(c);
	CHECK_EQ(wf_stat_register(WF_STAT_CODES, "cluster", "again", "upstream_rq"), c);
	CHECK_EQ(wf_stat_register(WF_STAT_HIST, "cluster", "again", "upstream_rq_time"), h);
	CHECK_EQ(wf_stat_value(c + 404 - 100), 0);
	CHECK_EQ(wf_stat_value(h + WF_HIST_BUCKETS + 1), 0);
	t = render(TEXT, "again");
	CHECK(has_line(t, "cluster.again.upstream_rq_time: No recorded values"));
	CHECK(!strstr(t, "upstream_rq_404"));
	free(t);
}

TEST(stats_come_and_go_by_the_thousand)
{
	wf_stats_thread_init();
	/* fifty configs of 3,000 hosts, a third of them kept from one to the next: the table finds
	 * every live name at its slot, lists exactly the live ones, and reuses the slots freed */
	static uint32_t idx[3000];
	char sn[64];
	int ok = 1;
	uint32_t before = wf_stat_register(WF_STAT_COUNTER, "probe", NULL, "before");
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 3000; i++) {
			int gen = i % 3 ? round : 0; /* every third host stays */
			snprintf(sn, sizeof(sn), "host.10.%d.%d.%d:80.rq_total", gen, i / 250, i % 250);
			uint32_t x = wf_stat_register(WF_STAT_HIDDEN, "cluster", "churn", sn);
			if (round && !(i % 3)) {
				ok &= x == idx[i]; /* still there, the same slot */
				wf_stat_release(x);
			}
			if (round && i % 3)
				wf_stat_release(idx[i]); /* the previous round's host goes */
			idx[i] = x;
		}
	}
	CHECK(ok);
	/* slots were reused: some 3,000 in use at a time, not 1,000 + 50 x 2,000 */
	uint32_t after = wf_stat_register(WF_STAT_COUNTER, "probe", NULL, "after");
	CHECK(after > before && after < before + 10000);
	for (int i = 0; i < 3000; i++)
		wf_stat_release(idx[i]);
	char *t = render(JSON, "churn");
	CHECK(!strstr(t, "churn"));
	free(t);
	/* hidden stats are not listed anyway: count what the text rendering lists of live ones */
	for (int i = 0; i < 100; i++) {
		snprintf(sn, sizeof(sn), "n%d", i);
		idx[i] = wf_stat_register(WF_STAT_COUNTER, "live", NULL, sn);
		wf_stat_add(idx[i], i + 1);
	}
	for (int i = 0; i < 100; i += 2)
		wf_stat_release(idx[i]);
	t = render(TEXT, "^live[.]");
	int lines = 0, right = 1;
	for (const char *p = t; (p = strchr(p, '\n')); p++)
		lines++;
	for (int i = 1; i < 100; i += 2) {
		char want[64];
		snprintf(want, sizeof(want), "live.n%d: %d", i, i + 1);
		right &= has_line(t, want);
	}
	CHECK_EQ(lines, 50);
	CHECK(right);
	free(t);
	/* 300,000 stats come and go (their tables grow, then shrink back): the live ones are
	 * still found at their slots */
	static uint32_t big[300000];
	for (int i = 0; i < 300000; i++) {
		snprintf(sn, sizeof(sn), "b%d", i);
		big[i] = wf_stat_register(WF_STAT_HIDDEN, "bulk", NULL, sn);
	}
	for (int i = 0; i < 300000; i++)
		wf_stat_release(big[i]);
	int found = 1;
	for (int i = 1; i < 100; i += 2) {
		snprintf(sn, sizeof(sn), "n%d", i);
		found &= wf_stat_register(WF_STAT_COUNTER, "live", NULL, sn) == idx[i];
		wf_stat_release(idx[i]);
		found &= wf_stat_value(idx[i]) == i + 1;
	}
	CHECK(found);
}

TEST(names_longer_than_any_buffer_are_whole)
{
	wf_stats_thread_init();
	static char cl[1200], line[1400];
	memset(cl, 'c', 1000);
	memcpy(cl + 1000, "|sub.example", 13);
	uint32_t a = wf_stat_register(WF_STAT_COUNTER, "cluster", cl, "upstream_rq_2xx");
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", cl, "upstream_rq_2xx"), a); /* found again */
	wf_stat_add(a, 3);
	char *t = render(TEXT, "upstream_rq_2xx");
	snprintf(line, sizeof(line), "cluster.%s.upstream_rq_2xx: 3", cl);
	CHECK(has_line(t, line));
	free(t);
	t = render(PROM, NULL);
	snprintf(line, sizeof(line), "envoy_cluster_upstream_rq_xx{envoy_cluster_name=\"%s\",envoy_response_code_class=\"2\"} 3", cl);
	CHECK(has_line(t, line));
	free(t);
	wf_stat_release(a);
	wf_stat_release(a);
	t = render(TEXT, "sub[.]example");
	CHECK(!strstr(t, "upstream_rq_2xx"));
	free(t);
}

/* What a thread registers while it records is noted (each registration once), and given back
 * together; what it registers before or after, or what another thread registers meanwhile, is
 * not. */
static uint32_t other_thread_stat;
static void *register_elsewhere(void *arg)
{
	(void)arg;
	other_thread_stat = wf_stat_register(WF_STAT_COUNTER, "cluster", "rec", "elsewhere");
	return NULL;
}

TEST(a_config_gives_back_what_it_registered)
{
	wf_stats_thread_init();
	uint32_t before = wf_stat_register(WF_STAT_COUNTER, "cluster", "rec", "before");
	struct wf_stats_rec rec = {0};
	wf_stats_record(&rec);
	uint32_t a = wf_stat_register(WF_STAT_COUNTER, "cluster", "rec", "a");
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", "rec", "a"), a); /* two registrations */
	uint32_t kept = wf_stat_register(WF_STAT_GAUGE, "cluster", "rec", "kept");
	wf_stats_ref(&kept, 1); /* a holder besides the config */
	CHECK_EQ(wf_stat_register(WF_STAT_COUNTER, "cluster", "rec", "before"), before);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, register_elsewhere, NULL), 0);
	pthread_join(th, NULL);
	wf_stats_record(NULL);
	uint32_t after = wf_stat_register(WF_STAT_COUNTER, "cluster", "rec", "after");
	CHECK_EQ(rec.n, 4);
	wf_stat_add(kept, 3);
	wf_stats_rec_release(&rec);
	CHECK_EQ(rec.n, 0);
	CHECK(rec.idx == NULL);
	char *t = render(TEXT, "cluster.rec.");
	CHECK(!strstr(t, "cluster.rec.a:"));           /* both of its registrations were the config's */
	CHECK(has_line(t, "cluster.rec.kept: 3"));     /* its other holder keeps it */
	CHECK(has_line(t, "cluster.rec.before: 0"));   /* registered before, held still */
	CHECK(has_line(t, "cluster.rec.after: 0"));
	CHECK(has_line(t, "cluster.rec.elsewhere: 0")); /* another thread's registration */
	free(t);
	const uint32_t rest[] = {before, after, other_thread_stat, kept};
	wf_stats_release(rest, 4);
	t = render(TEXT, "cluster.rec.");
	CHECK(!strstr(t, "cluster.rec."));
	free(t);
}

TEST_MAIN("proxy.stats", T(one_name_one_stat_however_it_is_split), T(renderings_name_every_kind_of_stat),
          T(a_stat_released_as_often_as_registered_goes), T(stats_come_and_go_by_the_thousand), T(names_longer_than_any_buffer_are_whole),
          T(a_config_gives_back_what_it_registered))
