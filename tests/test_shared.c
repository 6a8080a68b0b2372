/*
 * The process-wide proxy state (node/shared.c) and the per-client-address
 * table (node/limits.c) hammered from several threads at once, as the
 * worker loops use them: instance references and failure counts, an
 * ejection one thread records and another sees, the connection budget,
 * app slots and the wake-up of the proxies waiting for one, and the
 * striped per-IP table (connection counts and token buckets). Each test
 * checks an invariant that lost updates or a broken lock would break:
 * counts back to zero, never above the cap, every failure counted, no
 * token spent twice. CUnit's asserts run on the main thread only.
 */
#include <config.h>

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "node/backend.h"
#include "node/limits.h"
#include "node/shared.h"
#include "registry/clock.h"
#include "registry/threadsig.h"
#include "tests/lib/unit.h"

#define THREADS 4

static struct event_base *base;
static struct proxy_shared *sh;

static int setup(void)
{
	struct zkr_config cfg;

	if (evthread_use_pthreads() != 0 || (base = event_base_new()) == NULL ||
	    !config_init(&cfg))
		return 1;
	sh = proxy_shared_new(base, &cfg);
	config_free(&cfg);
	return sh == NULL;
}

static int teardown(void)
{
	proxy_shared_free(sh);
	event_base_free(base);
	return 0;
}

/* Runs fn(i) on THREADS threads at once, started together. */
static pthread_barrier_t start;

struct job {
	void *(*fn)(long);
	long i;
};

static void *job_main(void *arg)
{
	struct job *j = arg;

	pthread_barrier_wait(&start);
	return j->fn(j->i);
}

static void run_threads(void *(*fn)(long))
{
	pthread_t t[THREADS];
	struct job j[THREADS];

	pthread_barrier_init(&start, NULL, THREADS);
	for (long i = 0; i < THREADS; i++) {
		j[i].fn = fn;
		j[i].i = i;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, job_main, &j[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
}

/* ---- instances ------------------------------------------------------------- */

#define INST_ROUNDS 200000

static void *instances_job(long i)
{
	char id[16];
	struct shared_instance *mine;

	(void)i;
	/* Everyone takes and drops the same few instances, and records a
	 * failure on one of them, all at once. */
	for (int n = 0; n < INST_ROUNDS; n++) {
		snprintf(id, sizeof(id), "i%d", n % 8);
		mine = shared_instance_get(sh, "app.test", id, "127.0.0.1", 8000);
		if (mine == NULL)
			continue;
		shared_instance_record_failure(mine, 1, 1000, 1000, "t");
		shared_instance_unref(mine);
	}
	return NULL;
}

static void test_instances(void)
{
	struct shared_instance *keep[8];
	unsigned total = 0;
	char id[16];

	for (int n = 0; n < 8; n++) {
		snprintf(id, sizeof(id), "i%d", n);
		keep[n] = shared_instance_get(sh, "app.test", id, "127.0.0.1", 8000);
		CU_ASSERT_PTR_NOT_NULL_FATAL(keep[n]);
		CU_ASSERT_EQUAL(shared_instance_addr_gen(keep[n]), 1);   /* numeric: at once */
	}
	run_threads(instances_job);
	for (int n = 0; n < 8; n++) {
		total += atomic_load(&keep[n]->consecutive_failures);
		CU_ASSERT_EQUAL(atomic_load(&keep[n]->refs), 1);
		shared_instance_unref(keep[n]);
	}
	/* Every failure counted, every reference given back. */
	CU_ASSERT_EQUAL(total, THREADS * INST_ROUNDS);
	CU_ASSERT_EQUAL(proxy_shared_instances(sh), 0);

	/* Without a reference held between rounds the instances come and go
	 * under the threads' feet: the map must stay whole. */
	run_threads(instances_job);
	CU_ASSERT_EQUAL(proxy_shared_instances(sh), 0);
}

/* Two backends of two workers share one instance: the ejection one
 * records is seen by the other, and the other's success clears it. */
static struct backend *worker_be[2];
static _Atomic int seen;

static void *eject_job(long i)
{
	struct timespec ts = { 0, 100000 };

	if (i == 0) {
		backend_record_failure(worker_be[0], clock_now_ms(), 60000, 60000);
	} else if (i == 1) {
		/* Bounded: 5 s. */
		for (int n = 0; n < 50000 && !backend_ejected(worker_be[1], clock_now_ms()); n++)
			nanosleep(&ts, NULL);
		atomic_store(&seen, backend_ejected(worker_be[1], clock_now_ms()));
	}
	return NULL;
}

static void test_ejection_seen(void)
{
	struct route_instance inst;

	memset(&inst, 0, sizeof(inst));
	inst.id = "e1";
	inst.host = "127.0.0.1";
	inst.port = 8001;
	worker_be[0] = backend_new("eject.test", &inst, sh);
	worker_be[1] = backend_new("eject.test", &inst, sh);
	CU_ASSERT_PTR_NOT_NULL_FATAL(worker_be[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(worker_be[1]);
	CU_ASSERT_PTR_EQUAL(worker_be[0]->si, worker_be[1]->si);
	CU_ASSERT(backend_routable(worker_be[1]));
	CU_ASSERT(backend_addr(worker_be[1]));
	run_threads(eject_job);
	CU_ASSERT(atomic_load(&seen));
	backend_record_success(worker_be[1]);
	CU_ASSERT(!backend_ejected(worker_be[0], clock_now_ms()));
	CU_ASSERT_EQUAL(atomic_load(&worker_be[0]->si->consecutive_failures), 0);
	/* Health verdicts too. */
	shared_instance_set_health(worker_be[0]->si, false);
	CU_ASSERT(backend_health_down(worker_be[1]));
	shared_instance_set_health(worker_be[0]->si, true);
	CU_ASSERT(!backend_health_down(worker_be[1]));
	/* Another endpoint under the same id starts over. */
	inst.port = 8002;
	{
		struct backend *other = backend_new("eject.test", &inst, sh);

		CU_ASSERT_PTR_NOT_NULL_FATAL(other);
		CU_ASSERT_PTR_NOT_EQUAL(other->si, worker_be[0]->si);
		backend_unref(other);
	}
	backend_unref(worker_be[0]);
	backend_unref(worker_be[1]);
	CU_ASSERT_EQUAL(proxy_shared_instances(sh), 0);
}

/* A host name is looked up on the control loop (here: this thread's
 * base) and its address published to a worker on another thread, which
 * copies it at connect time. Then nobody holds the instance: it goes. */
static struct backend *dns_be;
static _Atomic int dns_seen;

static void *dns_job(long i)
{
	struct timespec ts = { 0, 1000000 };

	if (i != 1)
		return NULL;
	for (int n = 0; n < 5000 && !backend_routable(dns_be); n++)
		nanosleep(&ts, NULL);
	atomic_store(&dns_seen, backend_routable(dns_be) && backend_addr(dns_be) &&
				       dns_be->addr.ss_family == AF_INET);
	return NULL;
}

static void test_dns_published(void)
{
	struct route_instance inst;
	FILE *f = fopen("/etc/hosts", "r");
	char line[256];
	bool has_localhost = false;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "127.0.0.1", 9) == 0 && strstr(line, "localhost") != NULL)
			has_localhost = true;
	if (f != NULL)
		fclose(f);
	if (!has_localhost) {
		printf("(no 127.0.0.1 localhost in /etc/hosts: skipped) ");
		return;
	}
	memset(&inst, 0, sizeof(inst));
	inst.id = "d1";
	inst.host = "localhost";
	inst.port = 8003;
	dns_be = backend_new("dns.test", &inst, sh);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dns_be);
	CU_ASSERT(!backend_routable(dns_be));   /* not before the control loop ran */
	CU_ASSERT(!backend_addr(dns_be));
	/* The worker waits on its thread; the control loop runs here. */
	atomic_store(&dns_seen, 0);
	{
		pthread_t t;
		struct job j = { dns_job, 1 };

		pthread_barrier_init(&start, NULL, 1);
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, job_main, &j), 0);
		for (int n = 0; n < 500 && shared_instance_addr_gen(dns_be->si) == 0; n++) {
			struct timespec ts = { 0, 10000000 };

			event_base_loop(base, EVLOOP_NONBLOCK);
			nanosleep(&ts, NULL);
		}
		pthread_join(t, NULL);
		pthread_barrier_destroy(&start);
	}
	CU_ASSERT(atomic_load(&dns_seen));
	CU_ASSERT_EQUAL(dns_be->addr_gen, shared_instance_addr_gen(dns_be->si));
	backend_unref(dns_be);
	CU_ASSERT_EQUAL(proxy_shared_instances(sh), 0);
}

/* ---- the connection budget and app slots ----------------------------------- */

#define BUDGET 8
#define SLOT_ROUNDS 1000000

static _Atomic int held, over, taken;
static struct shared_app *app;

static void *budget_job(long i)
{
	(void)i;
	for (int n = 0; n < SLOT_ROUNDS; n++) {
		if (!shared_conn_take(sh, BUDGET))
			continue;
		if (atomic_fetch_add(&held, 1) + 1 > BUDGET)
			atomic_fetch_add(&over, 1);
		atomic_fetch_add(&taken, 1);
		atomic_fetch_sub(&held, 1);
		shared_conn_put(sh);
	}
	return NULL;
}

static void test_conn_budget(void)
{
	atomic_store(&held, 0);
	atomic_store(&over, 0);
	atomic_store(&taken, 0);
	run_threads(budget_job);
	CU_ASSERT_EQUAL(atomic_load(&over), 0);
	CU_ASSERT(atomic_load(&taken) > 0);
	CU_ASSERT_EQUAL(shared_conn_count(sh), 0);
	/* Full is full for everyone. */
	for (int n = 0; n < BUDGET; n++)
		CU_ASSERT(shared_conn_take(sh, BUDGET));
	CU_ASSERT(!shared_conn_take(sh, BUDGET));
	for (int n = 0; n < BUDGET; n++)
		shared_conn_put(sh);
	CU_ASSERT_EQUAL(shared_conn_count(sh), 0);
}

static void *slots_job(long i)
{
	(void)i;
	for (int n = 0; n < SLOT_ROUNDS; n++) {
		if (!shared_app_take(app, 3))
			continue;
		if (atomic_fetch_add(&held, 1) + 1 > 3)
			atomic_fetch_add(&over, 1);
		atomic_fetch_sub(&held, 1);
		shared_app_put(app, -1);
	}
	return NULL;
}

static void test_app_slots(void)
{
	struct shared_app *again;

	app = shared_app_get(sh, "slots.test");
	again = shared_app_get(sh, "slots.test");
	CU_ASSERT_PTR_NOT_NULL_FATAL(app);
	CU_ASSERT_PTR_EQUAL(app, again);   /* one per app for the process */
	shared_app_unref(again);
	atomic_store(&held, 0);
	atomic_store(&over, 0);
	run_threads(slots_job);
	CU_ASSERT_EQUAL(atomic_load(&over), 0);
	CU_ASSERT_EQUAL(atomic_load(&app->in_flight), 0);   /* no slot leaked */
	shared_app_unref(app);
}

/* A slot given back on one thread wakes the proxy waiting on another
 * loop; a connection closed wakes a proxy paused on the budget. */
static _Atomic int woken[2];

/* What a proxy's wake function does from another thread: here, count. */
static void wake_cb(void *arg, unsigned what)
{
	CU_ASSERT_PTR_EQUAL(arg, &woken);
	if (what & SHARED_WAKE_APPQ)
		atomic_fetch_add(&woken[0], 1);
	if (what & SHARED_WAKE_ACCEPT)
		atomic_fetch_add(&woken[1], 1);
}

static void *put_job(long i)
{
	if (i == 0)
		shared_app_put(app, -1);
	else if (i == 1)
		shared_conn_put(sh);
	return NULL;
}

static void test_wakeups(void)
{
	int slot = proxy_shared_attach(sh, wake_cb, &woken);

	CU_ASSERT_FATAL(slot >= 0);
	app = shared_app_get(sh, "wake.test");
	CU_ASSERT_FATAL(shared_app_take(app, 1));
	CU_ASSERT(!shared_app_take(app, 1));
	atomic_fetch_add(&app->queued, 1);
	shared_app_wait(app, slot, true);
	CU_ASSERT_FATAL(shared_conn_take(sh, 1));
	shared_conn_paused(sh, slot, true);
	woken[0] = woken[1] = 0;
	run_threads(put_job);
	CU_ASSERT_EQUAL(atomic_load(&woken[0]), 1);
	CU_ASSERT_EQUAL(atomic_load(&woken[1]), 1);
	CU_ASSERT(shared_app_take(app, 1));   /* the freed slot, for the waiter */
	shared_app_wait(app, slot, false);
	atomic_fetch_sub(&app->queued, 1);
	shared_app_put(app, slot);
	shared_conn_paused(sh, slot, false);
	proxy_shared_detach(sh, slot);
	shared_app_unref(app);
}

/* ---- the per-client-address table ------------------------------------------ */

static struct limits *lim;
static _Atomic unsigned granted;

static void *perip_job(long i)
{
	char ip[32];

	for (int n = 0; n < SLOT_ROUNDS / 4; n++) {
		struct limits_key k;
		struct limits_entry *e;
		unsigned retry;

		/* Every thread on the same 16 addresses, in a different order. */
		snprintf(ip, sizeof(ip), "192.0.2.%ld", (n + i * 5) % 16);
		if (!limits_key_parse(ip, &k))
			continue;
		if (limits_conn_open(lim, &k, 1000, &e) == LIMITS_REFUSE)
			continue;
		/* The clock stands still: no address earns a token back. */
		if (limits_request(lim, e, 1000, &retry))
			atomic_fetch_add(&granted, 1);
		limits_conn_close(lim, e);
	}
	return NULL;
}

static void test_perip(void)
{
	struct limits_stats st;
	char ip[32];

	lim = limits_new(1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lim);
	limits_configure(lim, 1000000, 1, 500);
	atomic_store(&granted, 0);
	run_threads(perip_job);
	/* Each address had a burst of 500 tokens and no refill. */
	CU_ASSERT_EQUAL(atomic_load(&granted), 16 * 500);
	limits_get_stats(lim, &st);
	CU_ASSERT_EQUAL(st.tracked, 16);
	CU_ASSERT_EQUAL(st.rejected_reqs + atomic_load(&granted), THREADS * (SLOT_ROUNDS / 4));
	/* Every connection given back: a new one is the only one. */
	for (int n = 0; n < 16; n++) {
		struct limits_key k;
		struct limits_entry *e = NULL;

		snprintf(ip, sizeof(ip), "192.0.2.%d", n);
		CU_ASSERT_FATAL(limits_key_parse(ip, &k));
		CU_ASSERT_EQUAL(limits_conn_open(lim, &k, 1000, &e), LIMITS_OK);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		CU_ASSERT_EQUAL(e->conns, 1);
		limits_conn_close(lim, e);
	}
	limits_free(lim);
}

/* A thread started the daemon's way leaves the daemon's signals to the
 * main thread, but not the fault signals: blocked, a fault in a worker
 * kills the process with no handler run, so no sanitizer report. */
static void *mask_of_thread(void *arg)
{
	pthread_sigmask(SIG_BLOCK, NULL, arg);
	return NULL;
}

static void test_thread_signals(void)
{
	sigset_t old, mask;
	pthread_t t;

	sigemptyset(&mask);
	threadsig_block_for_start(&old);
	int err = pthread_create(&t, NULL, mask_of_thread, &mask);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	pthread_join(t, NULL);
	CU_ASSERT_TRUE(sigismember(&mask, SIGTERM));
	CU_ASSERT_TRUE(sigismember(&mask, SIGHUP));
	CU_ASSERT_TRUE(sigismember(&mask, SIGPIPE));
	CU_ASSERT_FALSE(sigismember(&mask, SIGSEGV));
	CU_ASSERT_FALSE(sigismember(&mask, SIGBUS));
	CU_ASSERT_FALSE(sigismember(&mask, SIGABRT));
	/* The caller's own mask is back as it was. */
	sigset_t now;
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	CU_ASSERT_FALSE(sigismember(&now, SIGTERM) && !sigismember(&old, SIGTERM));
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("shared", setup, teardown);

	UNIT_TEST(s, test_instances);
	UNIT_TEST(s, test_ejection_seen);
	UNIT_TEST(s, test_dns_published);
	UNIT_TEST(s, test_conn_budget);
	UNIT_TEST(s, test_app_slots);
	UNIT_TEST(s, test_wakeups);
	UNIT_TEST(s, test_perip);
	UNIT_TEST(s, test_thread_signals);
}
