/*
 * registry-load: the measuring half of tests/bench/registry-bench.
 *
 *   registry-load populate CONNECT APPS INSTANCES
 *       creates /apps/app<N>.bench.test with INSTANCES instances each
 *       (persistent, pipelined creates), prints the seconds it took.
 *   registry-load sync CONNECT [JITTER_MS]
 *       a zkr_watcher from a cold start to its first complete table:
 *       prints "sync <seconds> <apps> <instances> <requests> <rss_kb> <hwm_kb>".
 *   registry-load latency CONNECT COUNT [JITTER_MS]
 *       after the first table, COUNT times: create an ephemeral instance
 *       (another session, same loop) in one of the apps and time until a
 *       published snapshot contains it; prints "latency p50 p99 max" in ms.
 *
 * Runs the real session and watcher code (libzkregistry), not a model.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "registry/log.h"
#include "registry/record.h"
#include "registry/session.h"
#include "registry/table.h"
#include "registry/watcher.h"

#define WINDOW 2000

static struct event_base *base;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t klen = strlen(key);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0)
			v = strtol(line + klen, NULL, 10);
	if (f != NULL)
		fclose(f);
	return v;
}

static struct zkr_session *open_session(const char *connect)
{
	char why[256];
	struct zkr_session_opts o = { .connect = connect, .timeout_ms = 20000 };
	struct zkr_session *s = zkr_session_new(base, &o, why, sizeof(why));
	if (s == NULL) {
		fprintf(stderr, "registry-load: %s\n", why);
		exit(2);
	}
	return s;
}

/* ---- populate --------------------------------------------------------- */

struct pop {
	struct zkr_session *s;
	long apps, per_app, next, total, done, inflight, failed;
	uint8_t *rec;
	size_t rec_len;
};

static void pop_issue(struct pop *p);

static void pop_created(int rc, const char *value, const void *data)
{
	struct pop *p = (struct pop *)data;
	(void)value;
	p->inflight--;
	p->done++;
	if (rc != ZOK && rc != ZNODEEXISTS && p->failed++ < 5)
		fprintf(stderr, "registry-load: create: %s\n", zerror(rc));
	if (p->done == p->total)
		event_base_loopbreak(base);
	else
		pop_issue(p);
}

/* Node k of the tree, parents before children: per app, the app, its
 * instances node, then its instances. */
static void pop_issue(struct pop *p)
{
	zhandle_t *zh = zkr_session_zh(p->s);
	long per = p->per_app + 2;
	while (p->inflight < WINDOW && p->next < p->total) {
		long k = p->next++;
		long app = k / per, j = k % per;
		char path[256];
		const char *data = NULL;
		int len = -1;
		if (j == 0) {
			snprintf(path, sizeof(path), "/apps/app%ld.bench.test", app);
		} else if (j == 1) {
			snprintf(path, sizeof(path), "/apps/app%ld.bench.test/instances", app);
		} else {
			snprintf(path, sizeof(path), "/apps/app%ld.bench.test/instances/i%ld", app, j - 2);
			data = (const char *)p->rec;
			len = (int)p->rec_len;
		}
		int rc = zoo_acreate(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, 0, pop_created, p);
		if (rc != ZOK) {
			fprintf(stderr, "registry-load: create %s: %s\n", path, zerror(rc));
			exit(1);
		}
		p->inflight++;
	}
	zkr_session_kick(p->s);
}

static void pop_ensured(int rc, void *arg)
{
	struct pop *p = arg;
	if (rc != ZOK) {
		fprintf(stderr, "registry-load: /apps: %s\n", zerror(rc));
		exit(1);
	}
	pop_issue(p);
}

static void pop_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	if (ev == ZKR_SESSION_NEW && !zkr_session_ensure_path(s, "/apps", NULL, pop_ensured, arg))
		exit(1);
}

static int populate(const char *connect, long apps, long per_app)
{
	struct pop p = { .apps = apps, .per_app = per_app, .total = apps * (per_app + 2) };
	record_instance r = ZKROUTER__INSTANCE__INIT;
	r.host = "10.1.2.3";
	r.has_port = true;
	r.port = 8080;
	r.zone = "zone-a";
	char why[RECORD_WHY_MAX];
	p.rec = record_instance_encode(&r, &p.rec_len, why, sizeof(why));
	if (p.rec == NULL)
		return 1;
	p.s = open_session(connect);
	if (!zkr_session_subscribe(p.s, pop_session, &p))
		return 1;
	double t0 = now_s();
	event_base_dispatch(base);
	printf("populate %.2f %ld\n", now_s() - t0, p.total);
	zkr_session_free(p.s);
	free(p.rec);
	return p.failed ? 1 : 0;
}

/* ---- sync ------------------------------------------------------------- */

struct syncrun {
	double t0, t_connected;
	struct zkr_watcher *w;
	bool done;
};

static void sync_table(struct route_table *t, void *arg)
{
	struct syncrun *r = arg;
	if (r->done)
		return;
	r->done = true;
	double secs = now_s() - r->t0;
	size_t inst = 0;
	for (size_t i = 0; i < t->n_apps; i++)
		inst += t->apps[i]->n_instances;
	struct zkr_watcher_stats st;
	zkr_watcher_get_stats(r->w, &st);
	printf("sync %.3f %zu %zu %llu %ld %ld %.3f\n", secs, t->n_apps, inst,
	       (unsigned long long)st.requests, status_kb("VmRSS:"), status_kb("VmHWM:"),
	       now_s() - r->t_connected);
	fflush(stdout);
	event_base_loopbreak(base);
}

static void sync_session(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct syncrun *r = arg;
	(void)s;
	if (ev == ZKR_SESSION_NEW)
		r->t_connected = now_s();
}

static int sync_run(const char *connect, int jitter)
{
	struct syncrun r = { .t0 = now_s() };
	struct zkr_session *s = open_session(connect);
	struct zkr_watcher_opts o = { .relist_jitter_ms = jitter };
	char why[256];
	/* Subscribed first, so it hears NEW before the watcher starts reading. */
	if (!zkr_session_subscribe(s, sync_session, &r))
		return 1;
	r.w = zkr_watcher_new(base, s, &o, sync_table, &r, why, sizeof(why));
	if (r.w == NULL)
		return 1;
	event_base_dispatch(base);
	zkr_watcher_free(r.w);
	zkr_session_free(s);
	return r.done ? 0 : 1;
}

/* ---- latency ---------------------------------------------------------- */

struct lat {
	struct zkr_session *writer;
	struct zkr_watcher *w;
	struct route_table *table;
	long count, i, apps;
	double t0;
	double *ms;
	bool waiting, synced, writer_up;
	char domain[128], id[64];
	uint8_t *rec;
	size_t rec_len;
};

static void lat_next(struct lat *l);

static void lat_created(int rc, const char *value, const void *data)
{
	(void)value;
	(void)data;
	if (rc != ZOK) {
		fprintf(stderr, "registry-load: create: %s\n", zerror(rc));
		exit(1);
	}
}

static bool lat_visible(const struct lat *l, const struct route_table *t)
{
	const struct route_app *a = route_table_find(t, l->domain, strlen(l->domain));
	if (a == NULL)
		return false;
	for (size_t k = 0; k < a->n_instances; k++)
		if (strcmp(a->instances[k].id, l->id) == 0)
			return true;
	return false;
}

static void lat_table(struct route_table *t, void *arg)
{
	struct lat *l = arg;
	if (!l->synced) {
		l->synced = true;
		l->apps = (long)t->n_apps;
		lat_next(l);
		return;
	}
	if (l->waiting && lat_visible(l, t)) {
		l->ms[l->i++] = (now_s() - l->t0) * 1000.0;
		l->waiting = false;
		lat_next(l);
	}
}

static void lat_next(struct lat *l)
{
	if (!l->synced || !l->writer_up || l->waiting)
		return;
	if (l->i == l->count || l->apps == 0) {
		event_base_loopbreak(base);
		return;
	}
	/* Spread over the apps so each registration rebuilds a typical app. */
	snprintf(l->domain, sizeof(l->domain), "app%ld.bench.test", (l->i * 7919) % l->apps);
	snprintf(l->id, sizeof(l->id), "lat%ld", l->i);
	char path[256];
	snprintf(path, sizeof(path), "/apps/%s/instances/%s", l->domain, l->id);
	l->t0 = now_s();
	l->waiting = true;
	int rc = zoo_acreate(zkr_session_zh(l->writer), path, (const char *)l->rec, (int)l->rec_len,
			     &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, lat_created, l);
	if (rc != ZOK) {
		fprintf(stderr, "registry-load: create %s: %s\n", path, zerror(rc));
		exit(1);
	}
	zkr_session_kick(l->writer);
}

static void lat_writer(struct zkr_session *s, enum zkr_session_event ev, void *arg)
{
	struct lat *l = arg;
	(void)s;
	if (ev == ZKR_SESSION_NEW) {
		l->writer_up = true;
		lat_next(l);
	}
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static int latency(const char *connect, long count, int jitter)
{
	struct lat l = { .count = count };
	l.ms = calloc((size_t)count, sizeof(double));
	record_instance r = ZKROUTER__INSTANCE__INIT;
	r.host = "10.9.9.9";
	r.has_port = true;
	r.port = 9090;
	char why[RECORD_WHY_MAX];
	l.rec = record_instance_encode(&r, &l.rec_len, why, sizeof(why));
	if (l.ms == NULL || l.rec == NULL)
		return 1;
	struct zkr_session *s = open_session(connect);
	l.writer = open_session(connect);
	struct zkr_watcher_opts o = { .relist_jitter_ms = jitter };
	l.w = zkr_watcher_new(base, s, &o, lat_table, &l, why, sizeof(why));
	if (l.w == NULL || !zkr_session_subscribe(l.writer, lat_writer, &l))
		return 1;
	event_base_dispatch(base);
	if (l.i < count)
		return 1;
	qsort(l.ms, (size_t)count, sizeof(double), cmp_double);
	printf("latency %.2f %.2f %.2f\n", l.ms[count / 2], l.ms[(count * 99) / 100 - (count >= 100 ? 1 : 0)],
	       l.ms[count - 1]);
	/* Closing the writer removes the ephemerals it created. */
	zkr_session_free(l.writer);
	zkr_watcher_free(l.w);
	zkr_session_free(s);
	free(l.ms);
	free(l.rec);
	return 0;
}

int main(int argc, char **argv)
{
	zkr_log_init("registry-load", ZKR_LOG_WARN, false);
	base = event_base_new();
	if (base == NULL || argc < 3)
		goto usage;
	if (strcmp(argv[1], "populate") == 0 && argc == 5)
		return populate(argv[2], atol(argv[3]), atol(argv[4]));
	if (strcmp(argv[1], "sync") == 0)
		return sync_run(argv[2], argc > 3 ? atoi(argv[3]) : 10);
	if (strcmp(argv[1], "latency") == 0 && argc >= 4)
		return latency(argv[2], atol(argv[3]), argc > 4 ? atoi(argv[4]) : 10);
usage:
	fprintf(stderr, "usage: registry-load populate CONNECT APPS INSTANCES | sync CONNECT [JITTER_MS] |"
			" latency CONNECT COUNT [JITTER_MS]\n");
	return 2;
}
