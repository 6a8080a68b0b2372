/*
 * zkrouterd: the router daemon. This file only wires the parts together
 * and owns the process's life:
 *
 *   config ──> log, workers (each: a loop, a proxy with its own listeners
 *              and TLS listeners, an access-log buffer), admin, health checks
 *   zkr_router (ZooKeeper) ──on_table──> workers_set_table (every worker swaps
 *                                        it in; then /routers, admin report it),
 *                                        health_set_table, statefile_save
 *                          ──on_cert_add / on_cert_remove──> the TLS store
 *                            (/certs records; only with a TLS listener)
 *                          ──on_ticket_keys──> tls_tickets_set (TLS listeners)
 *   state file, read at start ──after zk-startup-wait-ms, if ZooKeeper has
 *                                given no table yet──> the same consumers
 *   SIGHUP  ──> every worker reopens its access log and applies the
 *               reloadable options; re-read the TLS certificate files (tls.h)
 *   SIGTERM ──> /healthz 503, leave /routers, answers close their
 *               connections; after drain-delay-ms close listeners and idle
 *               keep-alive connections, wait for requests in flight (at
 *               most drain-timeout-ms), exit 0
 *   systemd (registry/sdnotify.h) hears READY=1 once the listeners are open
 *   and every worker serves a table (ZooKeeper's or the state file's),
 *   RELOADING=1 / READY=1 around SIGHUP, STOPPING=1 at SIGTERM, and a
 *   STATUS= line at each of those and at each new table
 *
 * This thread is the control thread: its loop runs the signals,
 * ZooKeeper, the admin endpoint, the health checks and the state file.
 * Requests are served by the worker threads (workers.h), which it only
 * talks to through their mailboxes; signals arrive as loop events here
 * (the workers block them), so no handler ever races the request path.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "node/admin.h"
#include "node/config.h"
#include "node/health.h"
#include "node/mem-cache.h"
#include "node/proxy.h"
#include "node/shared.h"
#include "node/tls.h"
#include "node/tls-tickets.h"
#include "node/workers.h"
#include "registry/log.h"
#include "registry/router.h"
#include "registry/sdnotify.h"
#include "registry/statefile.h"

#define DRAIN_POLL_MS 100
/* A burst of changes (a deploy) costs one state-file write per second. */
#define STATE_WRITE_INTERVAL_MS 1000

struct daemon {
	struct zkr_config cfg;
	struct event_base *base;
	struct workers *ws;
	struct proxy_shared *shared;       /* what every worker shares (node/shared.h) */
	struct route_table *table;         /* the last one every worker swapped in */
	struct tls_store *tls;             /* NULL: no TLS listener */
	struct tls_tickets *tickets;       /* NULL without TLS listeners */
	bool tickets_failed;               /* a base context refused the ring */
	struct admin *admin;
	struct health *health;
	struct zkr_router *router;
	struct statefile *state;           /* NULL: state-dir off or unusable */
	struct route_table *disk_table;    /* read at start, until served or superseded */
	struct statefile_meta disk_meta;
	struct event *startup_timer;
	bool from_disk;                    /* the table in use came from the state file */
	struct event *sig_hup, *sig_term, *sig_int, *drain_timer, *drain_poll;
	bool ready;                        /* READY=1 sent: a table is served */
	bool draining;
	int drain_signal;
	bool tick_pending;                 /* a drain tick waits for the workers */
	struct timespec drain_started;
	int exit_code;
};

static uint64_t elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - since->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - since->tv_nsec) / 1000000);
}

/* 10,000 idle clients plus their backend connections need far more than
 * the usual soft limit of 1024 descriptors. */
static void raise_nofile(unsigned max_clients)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max,
				 strerror(errno));
		else
			log_debug("file descriptor limit raised from %llu to %llu",
				  (unsigned long long)was, (unsigned long long)rl.rlim_max);
	}
	/* Below one descriptor per allowed client, max-client-connections
	 * cannot be reached at all; say so now rather than at the first EMFILE. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max_clients + 64)
		log_warn("only %llu file descriptors for max-client-connections %u plus backends "
			 "(raise the hard limit, e.g. LimitNOFILE=)",
			 (unsigned long long)rl.rlim_cur, max_clients);
}

static void apply_log_level(const struct zkr_config *cfg)
{
	enum zkr_log_level lvl;
	if (zkr_log_parse_level(cfg->log_level, &lvl))
		zkr_log_set_level(lvl);
}

static uint64_t wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static uint64_t disk_age_s(const struct daemon *d)
{
	uint64_t now = wall_ms();
	return now > d->disk_meta.written_at_ms ? (now - d->disk_meta.written_at_ms) / 1000 : 0;
}

/* A table on its way to the workers. */
struct publish {
	struct daemon *d;
	struct route_table *t;     /* a reference */
	bool from_zk;
};

/* Every worker serves p->t now: only then do /healthz, /routes and
 * /routers (for ZooKeeper's tables) report it. */
static void published(void *arg)
{
	struct publish *p = arg;
	struct daemon *d = p->d;

	route_table_unref(d->table);
	d->table = route_table_ref(p->t);
	if (d->admin != NULL)
		admin_set_table(d->admin, p->t);
	if (p->from_zk && d->router != NULL)
		zkr_router_serving(d->router, p->t);
	/* The listeners opened before the first table could come (start()),
	 * so the first table every worker serves makes the router ready. */
	if (!d->draining) {
		zkr_sd_notifyf("%sSTATUS=serving table generation %llu (%zu apps) from %s",
			       d->ready ? "" : "READY=1\n", (unsigned long long)p->t->generation,
			       p->t->n_apps, p->from_zk ? "ZooKeeper" : "the state file");
		d->ready = true;
	}
	log_debug("table generation %llu in use on %u workers", (unsigned long long)p->t->generation,
		  workers_count(d->ws));
	route_table_unref(p->t);
	free(p);
}

static void publish(struct daemon *d, struct route_table *t, bool from_zk)
{
	struct publish *p = malloc(sizeof(*p));
	if (p == NULL) {
		log_error("out of memory publishing table generation %llu; keeping the previous one",
			  (unsigned long long)t->generation);
		return;
	}
	p->d = d;
	p->t = route_table_ref(t);
	p->from_zk = from_zk;
	workers_set_table(d->ws, t, published, p);
}

static void on_table(struct route_table *t, void *arg)
{
	struct daemon *d = arg;
	log_info("routing table generation %llu: %zu apps, digest %.16s",
		 (unsigned long long)t->generation, t->n_apps, t->digest_hex);
	publish(d, t, true);
	if (d->health != NULL)
		health_set_table(d->health, t);
	/* ZooKeeper's complete view: the table from disk is done with. */
	if (d->from_disk) {
		log_info("ZooKeeper's table replaces the one read from %s", statefile_path(d->state));
		d->from_disk = false;
		if (d->admin != NULL)
			admin_set_table_source(d->admin, false, 0);
	}
	if (d->disk_table != NULL) {
		route_table_unref(d->disk_table);
		d->disk_table = NULL;
	}
	if (d->startup_timer != NULL)
		evtimer_del(d->startup_timer);
	if (d->state != NULL)
		statefile_save(d->state, t);
}

/* New session-ticket keys (read from ZooKeeper, rotated, or local). */
static void on_ticket_keys(const struct zkr_ticket_key *keys, size_t n, void *arg)
{
	struct daemon *d = arg;

	(void)tls_tickets_set(d->tickets, keys, n);
}

/* zk-startup-wait-ms after the start: no table from ZooKeeper yet (no
 * session, or its first read is not complete), so route with the last
 * one this router knew rather than answer 503 to everything. */
static void on_startup_wait(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct route_table *t = d->disk_table;

	d->disk_table = NULL;
	if (t == NULL || zkr_router_has_table(d->router)) {
		route_table_unref(t);
		return;
	}
	log_warn("no table from ZooKeeper after %u ms (%s): routing with the %zu apps of %s, "
		 "written %" PRIu64 " s ago, until ZooKeeper's is read",
		 d->cfg.zk_startup_wait_ms,
		 zkr_router_connected(d->router) ? "first read not complete" : "no session",
		 t->n_apps, statefile_path(d->state), disk_age_s(d));
	d->from_disk = true;
	publish(d, t, false);
	if (d->health != NULL)
		health_set_table(d->health, t);
	if (d->admin != NULL)
		admin_set_table_source(d->admin, true, d->disk_meta.written_at_ms);
	route_table_unref(t);
}

/*
 * The state file: opened (or, for the default directory, warned about),
 * read, and the startup timer armed if it holds a table. A file that is
 * missing is normal on a first start; one that is corrupt, truncated or
 * incompatible is ignored with its name and the reason.
 */
static bool state_start(struct daemon *d)
{
	struct zkr_config *c = &d->cfg;
	char why[STATEFILE_WHY_MAX];

	if (c->state_dir == NULL) {
		log_info("state-dir off: the routing table is not kept on disk");
		return true;
	}
	d->state = statefile_open(c->state_dir, c->node_id, zkr_router_chroot(d->router),
				  STATE_WRITE_INTERVAL_MS, why, sizeof(why));
	if (d->state == NULL) {
		if (strcmp(c->state_dir, CONFIG_STATE_DIR_DEFAULT) != 0) {
			log_error("state-dir: %s", why);
			return false;
		}
		log_warn("state-dir: %s; running without a state file, so a restart while ZooKeeper is "
			 "unreachable will route nothing (set state-dir, or \"off\" to silence this)", why);
		return true;
	}
	if (d->admin != NULL)
		admin_set_statefile(d->admin, d->state);
	d->disk_table = statefile_load(d->state, &d->disk_meta, why, sizeof(why));
	int err = errno;
	if (d->disk_table == NULL) {
		if (err == ENOENT)
			log_info("state file %s: none yet", statefile_path(d->state));
		else
			log_warn("state file %s ignored: %s", statefile_path(d->state), why);
		return true;
	}
	log_info("state file %s: %zu apps, written %" PRIu64 " s ago by %s; routing with it if "
		 "ZooKeeper gives no table within %u ms", statefile_path(d->state), d->disk_table->n_apps,
		 disk_age_s(d), d->disk_meta.node_id[0] ? d->disk_meta.node_id : "?",
		 c->zk_startup_wait_ms);
	struct timeval wait = { c->zk_startup_wait_ms / 1000, (c->zk_startup_wait_ms % 1000) * 1000 };
	d->startup_timer = evtimer_new(d->base, on_startup_wait, d);
	if (d->startup_timer == NULL || evtimer_add(d->startup_timer, &wait) != 0) {
		log_error("cannot arm the startup timer");
		return false;
	}
	return true;
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char why[512];

	log_info("SIGHUP: reopening the access log and reloading %s",
		 d->cfg.config_file ? d->cfg.config_file : "(no config file)");
	/* systemd wants the start of a reload stamped with CLOCK_MONOTONIC.
	 * Before READY=1 (or while draining) the state systemd holds says
	 * more than "reloading" would, so it is left alone. */
	bool tell = d->ready && !d->draining;
	if (tell) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		zkr_sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
			       (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000,
			       d->cfg.config_file ? d->cfg.config_file : "(no config file)");
	}
	if (!config_reload(&d->cfg, why, sizeof(why))) {
		log_error("reload failed, keeping the running configuration: %s", why);
		workers_reload(d->ws, NULL);
		/* A renewed certificate file is still picked up. */
		if (d->tls != NULL)
			(void)tls_store_reload(d->tls, &d->cfg);
		if (tell)
			zkr_sd_notifyf("READY=1\nSTATUS=reload failed, running configuration kept: %s", why);
		return;
	}
	if (strstr(why, "not reloadable") != NULL)
		log_warn("reload %s", why);
	else if (why[0] != '\0')
		log_info("reload %s", why);
	else
		log_info("reload: no option changed");
	apply_log_level(&d->cfg);
	proxy_shared_apply_config(d->shared, &d->cfg);
	workers_reload(d->ws, &d->cfg);
	if (d->health != NULL)
		health_apply_config(d->health, &d->cfg);
	if (d->tls != NULL)
		(void)tls_store_reload(d->tls, &d->cfg);   /* it logs what it refused */
	if (d->router != NULL)
		zkr_router_set_ticket_rotate_s(d->router, d->cfg.tls_ticket_rotate_s);
	/* The workers apply their part from their mailboxes within a loop
	 * turn; what could fail (the file, the certificates) is done here. */
	if (tell)
		zkr_sd_notifyf("READY=1\nSTATUS=reloaded; serving table generation %llu",
			       d->table != NULL ? (unsigned long long)d->table->generation : 0ULL);
}

/* Each TLS base context the store makes (at start, and after a policy
 * change) encrypts and decrypts tickets with the shared ring. */
static void attach_tickets(SSL_CTX *ctx, void *arg)
{
	struct daemon *d = arg;

	if (tls_tickets_attach(d->tickets, ctx))
		return;
	d->tickets_failed = true;
	log_error("cannot attach the session-ticket keys to a TLS context: tickets from "
		  "this context resume on this process only");
}

/* A /certs record (registry/certwatch.h) goes to the TLS store, which
 * validates it and logs, with the path, why it refuses one. */
static bool on_cert_add(const char *path, const record_tls_certificate *rec, char *why, size_t whylen,
			void *arg)
{
	struct daemon *d = arg;
	if (tls_store_add_record(d->tls, path, rec->chain_pem, strlen(rec->chain_pem), rec->key_pem,
				 strlen(rec->key_pem)))
		return true;
	snprintf(why, whylen, "refused by the TLS store (the line before says why)");
	return false;
}

static void on_cert_remove(const char *path, void *arg)
{
	struct daemon *d = arg;
	tls_store_remove_record(d->tls, path);
}

static void drain_check(size_t active, void *arg)
{
	struct daemon *d = arg;
	uint64_t ms = elapsed_ms(&d->drain_started);

	d->tick_pending = false;
	if (active == 0) {
		log_info("drained in %llu ms; exiting", (unsigned long long)ms);
		event_base_loopexit(d->base, NULL);
	} else if (ms >= d->cfg.drain_timeout_ms) {
		log_warn("drain timeout (%u ms): %zu requests still in flight are cut off",
			 d->cfg.drain_timeout_ms, active);
		event_base_loopexit(d->base, NULL);
	}
}

/* Every DRAIN_POLL_MS: each worker closes what went idle and says what
 * it still waits for; drain_check decides on the sum. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	if (d->tick_pending)
		return;          /* the last one is not answered yet */
	d->tick_pending = true;
	workers_drain_tick(d->ws, drain_check, d);
}

static void listeners_closed(size_t active, void *arg)
{
	struct daemon *d = arg;
	struct timeval poll = { 0, DRAIN_POLL_MS * 1000 };

	log_info("listeners closed; waiting for %zu requests in flight (at most %u ms)", active,
		 d->cfg.drain_timeout_ms);
	d->drain_poll = event_new(d->base, -1, EV_PERSIST, drain_tick, d);
	if (d->drain_poll == NULL || event_add(d->drain_poll, &poll) != 0) {
		log_error("cannot arm the drain timer; exiting now");
		event_base_loopexit(d->base, NULL);
		return;
	}
	drain_check(active, d);
}

/* The second half of a drain: every worker closes its listeners, then
 * the requests in flight are waited for (at most drain-timeout-ms). */
static void begin_drain(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	clock_gettime(CLOCK_MONOTONIC, &d->drain_started);
	d->tick_pending = true;
	workers_stop_listening(d->ws, listeners_closed, d);
}

static void drain_started(size_t active, void *arg)
{
	struct daemon *d = arg;

	log_info("signal %d: draining (%zu requests in flight; listeners close in %u ms)",
		 d->drain_signal, active, d->cfg.drain_delay_ms);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval delay = { d->cfg.drain_delay_ms / 1000, (d->cfg.drain_delay_ms % 1000) * 1000 };

	if (d->draining) {
		log_warn("signal %d during the drain: exiting now", (int)sig);
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->draining = true;
	d->drain_signal = (int)sig;
	zkr_sd_notifyf("STOPPING=1\nSTATUS=draining after signal %d: listeners close in %u ms, "
		       "then requests in flight get %u ms", (int)sig, d->cfg.drain_delay_ms,
		       d->cfg.drain_timeout_ms);
	workers_drain(d->ws, drain_started, d);
	if (d->admin != NULL)
		admin_set_draining(d->admin, true);
	if (d->router != NULL)
		zkr_router_leave(d->router);
	d->drain_timer = evtimer_new(d->base, begin_drain, d);
	if (d->drain_timer == NULL || evtimer_add(d->drain_timer, &delay) != 0) {
		log_error("cannot arm the drain timer; exiting now");
		event_base_loopexit(d->base, NULL);
	}
}

static bool add_signal(struct daemon *d, struct event **ev, int sig, event_callback_fn cb)
{
	*ev = evsignal_new(d->base, sig, cb, d);
	if (*ev == NULL || event_add(*ev, NULL) != 0) {
		log_error("cannot watch signal %d", sig);
		return false;
	}
	return true;
}

static bool start(struct daemon *d)
{
	char why[512];
	struct zkr_config *c = &d->cfg;

	raise_nofile(c->max_client_connections);
	if ((d->base = event_base_new()) == NULL) {
		log_error("cannot create the event loop");
		return false;
	}
	/* The process-wide state lives on the control loop (DNS answers and
	 * health checks arrive there); each worker's proxy gets it as soon
	 * as it is made. */
	if ((d->shared = proxy_shared_new(d->base, c)) == NULL) {
		log_error("cannot create the process-wide proxy state");
		return false;
	}
	/* Every certificate file is read here, so one that cannot be read,
	 * parsed or matched with its key stops the start with the file
	 * named, rather than failing each handshake later. */
	if (c->n_tls_listen > 0 && (d->tls = tls_store_new(d->base, c, why, sizeof(why))) == NULL) {
		log_error("TLS: %s", why);
		return false;
	}
	/* One ticket key ring for every TLS listener of every worker, so
	 * that every router resumes every router's tickets. The store hands
	 * it each base context it makes (a policy reload makes a new one). */
	if (d->tls != NULL) {
		if ((d->tickets = tls_tickets_new()) == NULL) {
			log_error("cannot create the session-ticket keys (out of memory?)");
			return false;
		}
		tls_store_on_base_ctx(d->tls, attach_tickets, d);
		if (d->tickets_failed) {
			log_error("cannot attach the session-ticket keys to the TLS context");
			return false;
		}
	}
	if (c->n_tls_listen > 0 && c->n_tls_cert == 0 && c->tls_cert_dir == NULL)
		log_warn("tls-listen without tls-cert or tls-cert-dir: only certificates from ZooKeeper "
			 "(/certs) are served, and a client whose name none of them holds, or that sends "
			 "no name, gets an unrecognized_name alert");
	if (c->n_tls_listen == 0 && (c->n_tls_cert > 0 || c->tls_cert_dir != NULL))
		log_warn("tls-cert or tls-cert-dir is set but no tls-listen: serving plain HTTP only");
	/* The workers, each with its proxy and listeners (a port in use
	 * stops the start with the address named). */
	if ((d->ws = workers_new(d->base, workers_parse(c->workers), c, d->shared, d->tls, why,
				 sizeof(why))) == NULL) {
		log_error("%s", why);
		return false;
	}
	if (c->admin != NULL &&
	    (d->admin = admin_new(d->base, c->admin, d->ws, c->node_id, why, sizeof(why))) == NULL) {
		log_error("%s", why);
		return false;
	}
	if (d->admin != NULL && !admin_set_app_series(d->admin, c->metrics_app_series)) {
		log_error("admin: out of memory");
		return false;
	}
	if ((d->health = health_new(d->base, d->shared, c)) == NULL) {
		log_error("cannot create the health checker (out of memory?)");
		return false;
	}
	if (!add_signal(d, &d->sig_hup, SIGHUP, on_hup) || !add_signal(d, &d->sig_term, SIGTERM, on_term) ||
	    !add_signal(d, &d->sig_int, SIGINT, on_term))
		return false;

	struct zkr_router_opts ro = {
		.connect = c->zk_connect,
		.auth = c->zk_auth,
		.session_timeout_ms = c->zk_session_timeout_ms,
		.node_id = c->node_id,
		.listen = (const char *const *)c->listen,
		.n_listen = c->n_listen,
		.tls_listen = (const char *const *)c->tls_listen,
		.n_tls_listen = c->n_tls_listen,
		.admin = c->admin,
		.version = PACKAGE_VERSION,
		/* A router without a TLS listener has no use for private keys. */
		.on_cert_add = d->tls != NULL ? on_cert_add : NULL,
		.on_cert_remove = on_cert_remove,
		.cert_arg = d,
		.on_ticket_keys = d->tickets != NULL ? on_ticket_keys : NULL,
		.ticket_keys_arg = d,
		.ticket_rotate_s = c->tls_ticket_rotate_s,
		/* /routers reports a table once every worker serves it. */
		.report_when_serving = true,
	};
	if ((d->router = zkr_router_new(d->base, &ro, on_table, d, why, sizeof(why))) == NULL) {
		log_error("ZooKeeper: %s", why);
		return false;
	}
	if (d->admin != NULL) {
		admin_set_router(d->admin, d->router);
		admin_set_tls_tickets(d->admin, d->tickets);
		admin_set_tls(d->admin, d->tls);
	}
	if (!state_start(d) || !workers_start(d->ws))
		return false;
	log_info("zkrouterd %s started as node %s, ZooKeeper %s, %u workers", PACKAGE_VERSION,
		 c->node_id, c->zk_connect, workers_count(d->ws));
	zkr_sd_notifyf("STATUS=listening; waiting for a table from ZooKeeper%s",
		       d->disk_table != NULL ? " (or the state file's, soon)" : "");
	return true;
}

static void stop(struct daemon *d)
{
	/* Order: nothing may call into a part already freed. The workers
	 * stop first (what they were asked still completes, and may call
	 * into the admin and the router); the router goes before the state
	 * file; the proxies before the TLS store and ticket ring their
	 * connections use. */
	if (d->drain_timer != NULL)
		event_free(d->drain_timer);
	if (d->drain_poll != NULL)
		event_free(d->drain_poll);
	if (d->sig_hup != NULL)
		event_free(d->sig_hup);
	if (d->sig_term != NULL)
		event_free(d->sig_term);
	if (d->sig_int != NULL)
		event_free(d->sig_int);
	if (d->startup_timer != NULL)
		event_free(d->startup_timer);
	route_table_unref(d->disk_table);
	workers_stop(d->ws);
	health_free(d->health);
	admin_free(d->admin);
	/* A clean stop with a current table rewrites the file, so that its age
	 * at the next start counts from now, not from the last change. */
	if (d->state != NULL && d->router != NULL && !d->from_disk && zkr_router_synced(d->router) &&
	    d->table != NULL)
		statefile_save(d->state, d->table);
	if (d->router != NULL)
		zkr_router_free(d->router);
	/* Writes what is still queued: the last change always reaches the disk. */
	statefile_close(d->state);
	workers_free(d->ws);
	tls_store_free(d->tls);
	tls_tickets_free(d->tickets);
	route_table_unref(d->table);
	/* After every proxy (their backends hold its instances) and the
	 * health checks; before the control loop it resolves names on. */
	proxy_shared_free(d->shared);
	if (d->base != NULL)
		event_base_free(d->base);
	config_free(&d->cfg);
}

/*
 * --check-config, which systemd's ExecReload runs before it sends SIGHUP:
 * config_load has parsed and cross-checked the options and read the
 * auth file; what start() would still refuse is a certificate file that
 * cannot be read, parsed or matched with its key, so those are loaded
 * too (with a TLS listener, as at start). Ports are not tried: the
 * running daemon holds them. 0 and the effective configuration on
 * stdout, or 1 and the reason on stderr.
 */
static int check_config(struct zkr_config *c)
{
	char why[512];
	int rc = 0;

	if (c->n_tls_listen > 0) {
		struct tls_store *s = tls_store_new(NULL, c, why, sizeof(why));
		if (s == NULL) {
			fprintf(stderr, "zkrouterd: TLS: %s\n", why);
			rc = 1;
		}
		tls_store_free(s);
	}
	if (rc == 0)
		config_dump(stdout, c);
	config_free(c);
	return rc;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	char why[512];
	enum zkr_log_level lvl;

	zkr_log_init("zkrouterd", ZKR_LOG_INFO, false);
	/* Before libevent allocates anything: its blocks go through the
	 * workers' caches (mem-cache.c). */
	event_set_mem_functions(memc_malloc, memc_realloc, memc_free);
	/* libevent's global state (its random numbers for DNS, its lists)
	 * is shared by the worker threads' loops. */
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "zkrouterd: cannot enable libevent's thread support\n");
		return 1;
	}
	switch (config_load(&d.cfg, argc, argv, stdout, why, sizeof(why))) {
	case CONFIG_EXIT:
		return 0;
	case CONFIG_ERROR:
		/* A usage error, before the daemon starts: the person at the
		 * terminal reads this, so it is plain text, not a log line. */
		fprintf(stderr, "zkrouterd: %s\n", why);
		return 2;
	case CONFIG_OK:
		break;
	}
	if (d.cfg.check_config)
		return check_config(&d.cfg);
	if (!zkr_log_parse_level(d.cfg.log_level, &lvl))
		lvl = ZKR_LOG_INFO;
	zkr_log_init("zkrouterd", lvl, d.cfg.syslog);
	/* One malloc arena for the process, set before any thread starts.
	 * glibc gives each worker thread an arena of its own, and
	 * malloc_trim gives back only the free chunks inside a thread
	 * arena's heap, not its top (nor does a free of small objects
	 * shrink it): 2,000 idle clients kept 1.5 KB each, the free memory
	 * of the workers' arenas, against 0.55-0.6 KB with one arena (see
	 * the janitor in proxy-mem.c). glibc's per-thread caches keep the
	 * common small allocations off the arena's lock (measured: one
	 * contended lock per 60 requests at 2 workers). Not a failure if
	 * refused (a sanitizer's allocator ignores it). */
	if (mallopt(M_ARENA_MAX, 1) != 1)
		log_debug("malloc: one arena for the process refused");
	/* A client or backend that goes away mid-write must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	d.exit_code = 1;
	if (start(&d)) {
		if (event_base_dispatch(d.base) < 0)
			log_error("event loop failed");
		else
			d.exit_code = 0;
	}
	stop(&d);
	return d.exit_code;
}
