/*
 * A ZooKeeper session inside a libevent loop (see session.h).
 *
 * The single-threaded client does no I/O of its own: zookeeper_interest()
 * says which fd to watch, for what, and until when; zookeeper_process()
 * does the reading, writing, pinging and runs watchers and completions.
 * One libevent event carries that fd/interest/deadline; when it fires we
 * call zookeeper_process and then ask for the interest again ("re-arm").
 *
 *        +---------- session_arm() <-----------------+
 *        v                                           |
 *   zookeeper_interest --> event(fd, R/W, tv) --> session_io()
 *                                                    |
 *                                     zookeeper_process (watchers,
 *                                       completions, subscribers)
 *
 * Callbacks run inside zookeeper_process (and, on a socket error, inside
 * zookeeper_interest). A callback that issues requests calls
 * zkr_session_kick(); inside a callback that only sets a flag and the
 * outer code re-arms once the library has returned, so the library is
 * never entered re-entrantly.
 *
 * Lifecycle of one session:
 *
 *   CONNECTING (handle with the chroot)
 *     -> CHECK (connected; does the chroot exist?)
 *          no: BOOT (a plain handle creates it) -> CONNECTING again
 *     -> CONNECTED (subscribers: NEW)
 *     <-> DISCONNECTED (library reconnects; subscribers: DISCONNECTED,
 *         then RECONNECTED on the same session)
 *     -> EXPIRED / AUTH_FAILED (subscribers: EXPIRED) -> backoff timer
 *     -> close the dead handle from the timer -> CONNECTING again
 *
 * Why a separate bootstrap handle for the chroot: the client prefixes
 * every path with the chroot but does not create it, and a chrooted
 * handle cannot reach the path above its root. Prefixing paths ourselves
 * would leak into every module that uses the handle (agent, ctl, tests);
 * a short-lived plain handle keeps the chroot invisible to all of them.
 * It is only opened when the check finds the chroot missing (a fresh
 * ensemble, or an operator deleted it): closing a connected handle blocks
 * the loop until the server confirms (seconds on a loaded server), which
 * we accept once per cluster, not on every new session.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry/log.h"
#include "registry/prng.h"
#include "registry/session.h"
#include "registry/session_util.h"

#define SESSION_CHROOT_DEFAULT "/zkrouter"
#define SESSION_BACKOFF_FIRST_MS 200
#define SESSION_BACKOFF_MAX_MS 30000
#define SESSION_TIMEOUT_MIN_MS 1000
#define SESSION_TIMEOUT_MAX_MS 600000
#define SESSION_READ_BURST 256

enum session_state {
	SESSION_IDLE,          /* no handle: waiting for the backoff timer */
	SESSION_BOOT,          /* plain handle, creating the chroot */
	SESSION_CHECK,         /* chrooted handle connected, checking the chroot */
	SESSION_CONNECTING,    /* chrooted handle, never connected yet */
	SESSION_CONNECTED,
	SESSION_DISCONNECTED,  /* was connected; the library reconnects */
	SESSION_DEAD,          /* expired or auth failed; timer pending */
	SESSION_CLOSED,        /* zkr_session_close: no more handles */
};

static const char *const state_names[] = {
	[SESSION_IDLE] = "idle",
	[SESSION_BOOT] = "boot",
	[SESSION_CHECK] = "check",
	[SESSION_CONNECTING] = "connecting",
	[SESSION_CONNECTED] = "connected",
	[SESSION_DISCONNECTED] = "disconnected",
	[SESSION_DEAD] = "dead",
	[SESSION_CLOSED] = "closed",
};

struct subscriber {
	zkr_session_cb cb;
	void *arg;
};

struct zkr_session {
	struct event_base *base;
	char *hosts;               /* connect string without the chroot */
	char *chroot;              /* "/zkrouter"; "" when the root is used */
	char *connect;             /* hosts + chroot, for the main handle */
	char *auth;                /* "user:password" or NULL */
	int timeout_ms;

	enum session_state state;
	zhandle_t *zh;             /* current handle (boot or main), or NULL */
	struct event *io;          /* the one event driving the client */
	struct event *retry;       /* backoff timer: (re)open a handle */

	bool need_boot;            /* the check found no chroot: bootstrap next */
	bool read_only;            /* opts.read_only: never bootstrap the chroot */
	bool in_zk;                /* inside zookeeper_interest/_process/_close */
	bool rearm;                /* a kick arrived while in_zk */
	unsigned attempts;         /* consecutive failed sessions, for backoff */
	struct timespec reconnected_at;
	unsigned flaps;            /* connections lost right after reconnecting */
	uint64_t rng;

	struct subscriber *subs;
	size_t n_subs, cap_subs;
	size_t notifying;          /* >0 while subscribers are being called */
	bool subs_dirty;           /* an unsubscribe happened during notify */
};

static void session_arm(struct zkr_session *s);
static void session_open(struct zkr_session *s, bool boot);

/* ---- small helpers ---------------------------------------------------- */

static void session_set_state(struct zkr_session *s, enum session_state st)
{
	if (s->state == st)
		return;
	log_debug("zk session: %s -> %s", state_names[s->state], state_names[st]);
	s->state = st;
}

/* xorshift64*: jitter only needs to decorrelate routers, not be secret. */
static uint64_t session_rand(struct zkr_session *s)
{
	return prng_next(&s->rng);
}

/*
 * Full jitter over an exponential window: a fleet of routers that lost
 * their sessions together (a long partition) come back spread out instead
 * of reconnecting and re-reading the whole tree in one burst.
 */
static int session_backoff_ms(struct zkr_session *s)
{
	unsigned shift = s->attempts < 8 ? s->attempts : 8;
	long window = (long)SESSION_BACKOFF_FIRST_MS << shift;
	if (window > SESSION_BACKOFF_MAX_MS)
		window = SESSION_BACKOFF_MAX_MS;
	s->attempts++;
	return (int)(window / 4 + (long)(session_rand(s) % (uint64_t)(window * 3 / 4 + 1)));
}

/* ---- subscribers ------------------------------------------------------ */

static void session_notify(struct zkr_session *s, enum zkr_session_event ev)
{
	s->notifying++;
	/* n_subs may grow during the loop; new subscribers hear this event too,
	 * which is harmless. Removed ones have cb == NULL until compaction. */
	for (size_t i = 0; i < s->n_subs; i++) {
		if (s->subs[i].cb != NULL)
			s->subs[i].cb(s, ev, s->subs[i].arg);
	}
	s->notifying--;
	if (s->notifying == 0 && s->subs_dirty) {
		size_t j = 0;
		for (size_t i = 0; i < s->n_subs; i++)
			if (s->subs[i].cb != NULL)
				s->subs[j++] = s->subs[i];
		s->n_subs = j;
		s->subs_dirty = false;
	}
}

bool zkr_session_subscribe(struct zkr_session *s, zkr_session_cb cb, void *arg)
{
	if (s->n_subs == s->cap_subs) {
		size_t cap = s->cap_subs ? s->cap_subs * 2 : 4;
		struct subscriber *n = realloc(s->subs, cap * sizeof(*n));
		if (n == NULL)
			return false;
		s->subs = n;
		s->cap_subs = cap;
	}
	s->subs[s->n_subs++] = (struct subscriber){ cb, arg };
	return true;
}

void zkr_session_unsubscribe(struct zkr_session *s, zkr_session_cb cb, void *arg)
{
	for (size_t i = 0; i < s->n_subs; i++) {
		if (s->subs[i].cb == cb && s->subs[i].arg == arg) {
			if (s->notifying > 0) {
				/* Don't shift the array under the notify loop. */
				s->subs[i].cb = NULL;
				s->subs_dirty = true;
			} else {
				memmove(&s->subs[i], &s->subs[i + 1], (s->n_subs - i - 1) * sizeof(s->subs[0]));
				s->n_subs--;
			}
			return;
		}
	}
}

bool zkr_session_ensure_path(struct zkr_session *s, const char *path, const struct ACL_vector *acl,
			     zkr_session_done_cb done, void *arg)
{
	zhandle_t *zh = zkr_session_zh(s);
	if (zh == NULL)
		return false;
	if (!session_util_ensure_path(zh, path, acl, done, arg))
		return false;
	zkr_session_kick(s);
	return true;
}

/* ---- handle lifecycle ------------------------------------------------- */

/* Closes the current handle. Its pending completions run in here (with
 * ZCLOSING), so the in_zk guard keeps their kicks from re-entering. */
static void session_close_handle(struct zkr_session *s)
{
	if (s->zh == NULL)
		return;
	if (s->io != NULL)
		event_del(s->io);
	zhandle_t *zh = s->zh;
	bool was_in = s->in_zk;
	s->in_zk = true;
	int rc = zookeeper_close(zh);
	s->in_zk = was_in;
	s->zh = NULL;
	s->rearm = false;
	if (rc != ZOK)
		log_debug("zk: close: %s", zerror(rc));
}

static void session_schedule_open(struct zkr_session *s, int delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
	event_add(s->retry, &tv);
}

/* The handle is dead (expired, auth refused, or the bootstrap failed):
 * close it from the timer, never from the callback that noticed. */
static void session_dead(struct zkr_session *s, const char *why)
{
	if (s->state == SESSION_DEAD || s->state == SESSION_CLOSED)
		return;
	/* Subscribers only heard of sessions that got as far as CONNECTING. */
	bool was_main = s->state != SESSION_BOOT && s->state != SESSION_IDLE;
	session_set_state(s, SESSION_DEAD);
	int delay = session_backoff_ms(s);
	log_warn("zk: %s; new session in %d ms", why, delay);
	session_schedule_open(s, delay);
	if (was_main)
		session_notify(s, ZKR_SESSION_EXPIRED);
}

static void session_boot_done(int rc, void *arg)
{
	struct zkr_session *s = arg;
	if (rc == ZCLOSING || s->state != SESSION_BOOT)
		return;
	if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
		/* The library reconnects; the CONNECTED event restarts the chain. */
		return;
	}
	if (rc != ZOK) {
		log_error("zk: cannot create the chroot %s: %s", s->chroot, zerror(rc));
		session_dead(s, "chroot bootstrap failed");
		return;
	}
	log_info("zk: created the chroot %s", s->chroot);
	/* Switch handles from the main loop: we are inside a completion. */
	session_set_state(s, SESSION_IDLE);
	session_schedule_open(s, 0);
}

/*
 * On reconnect the client first re-sends all our watches in one packet.
 * If the servers refuse it (larger than their jute.maxbuffer), they drop
 * the connection at once, the client reconnects on the same session, and
 * this repeats forever: the session never expires, so no re-read happens
 * and the router never sees another change. Three drops within a second
 * of reconnecting end that: a new session has no watches to re-send, and
 * subscribers re-read (setting the watches one request at a time).
 */
#define SESSION_FLAP_MS 1000
#define SESSION_FLAPS_MAX 3

static bool session_flapping(struct zkr_session *s)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - s->reconnected_at.tv_sec) * 1000L +
		  (now.tv_nsec - s->reconnected_at.tv_nsec) / 1000000L;
	if (s->reconnected_at.tv_sec == 0 || ms > SESSION_FLAP_MS) {
		s->flaps = 0;
		return false;
	}
	if (++s->flaps < SESSION_FLAPS_MAX)
		return false;
	s->flaps = 0;
	return true;
}

static void session_connected(struct zkr_session *s)
{
	s->reconnected_at.tv_sec = 0;
	s->flaps = 0;
	session_set_state(s, SESSION_CONNECTED);
	s->attempts = 0;
	log_info("zk: connected, session 0x%llx, timeout %d ms, chroot %s",
		 (unsigned long long)zoo_client_id(s->zh)->client_id, zoo_recv_timeout(s->zh),
		 s->chroot[0] ? s->chroot : "/");
	session_notify(s, ZKR_SESSION_NEW);
}

/* With a chroot handle, "/" is the chroot itself. */
static void session_chroot_checked(int rc, const struct Stat *stat, const void *data)
{
	struct zkr_session *s = (struct zkr_session *)data;
	(void)stat;
	if (rc == ZCLOSING || s->state != SESSION_CHECK)
		return;
	if (rc == ZOK) {
		session_connected(s);
	} else if (rc == ZNONODE && s->read_only) {
		/* Reads find nothing, as in an empty chroot; leave it absent. */
		log_debug("zk: chroot %s missing; not creating it", s->chroot);
		session_connected(s);
	} else if (rc == ZNONODE) {
		log_info("zk: chroot %s missing; creating it", s->chroot);
		s->need_boot = true;
		session_set_state(s, SESSION_IDLE);
		/* Repeated misses back off like failed sessions do. */
		session_schedule_open(s, s->attempts > 0 ? session_backoff_ms(s) : (s->attempts++, 0));
	} else if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) {
		log_error("zk: cannot check the chroot %s: %s", s->chroot, zerror(rc));
		session_dead(s, "chroot check failed");
	}
	/* Connection loss: the next CONNECTED event checks again. */
}

static void session_check_chroot(struct zkr_session *s)
{
	session_set_state(s, SESSION_CHECK);
	int rc = zoo_aexists(s->zh, "/", 0, session_chroot_checked, s);
	if (rc != ZOK)
		session_dead(s, "cannot check the chroot");
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zkr_session *s = ctx;
	(void)path;
	if (type != ZOO_SESSION_EVENT || zh != s->zh)
		return;

	if (state == ZOO_EXPIRED_SESSION_STATE) {
		session_dead(s, "session expired");
		return;
	}
	if (state == ZOO_AUTH_FAILED_STATE) {
		log_error("zk: authentication refused for the digest identity given");
		session_dead(s, "authentication failed");
		return;
	}

	if (s->state == SESSION_BOOT) {
		if (state == ZOO_CONNECTED_STATE &&
		    !session_util_ensure_path(zh, s->chroot, NULL, session_boot_done, s))
			session_dead(s, "cannot issue the chroot bootstrap");
		return;
	}

	if (state == ZOO_CONNECTED_STATE) {
		if (s->state == SESSION_CONNECTING || s->state == SESSION_CHECK) {
			if (s->chroot[0] == '\0')
				session_connected(s);
			else
				session_check_chroot(s);
		} else if (s->state == SESSION_DISCONNECTED) {
			clock_gettime(CLOCK_MONOTONIC, &s->reconnected_at);
			session_set_state(s, SESSION_CONNECTED);
			log_info("zk: reconnected, session 0x%llx",
				 (unsigned long long)zoo_client_id(zh)->client_id);
			session_notify(s, ZKR_SESSION_RECONNECTED);
		}
	} else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
		if (s->state == SESSION_CONNECTED) {
			if (session_flapping(s)) {
				session_dead(s, "the connection drops right after every reconnect (is the "
						"reconnect's SetWatches larger than the servers' jute.maxbuffer?); "
						"starting a new session");
				return;
			}
			session_set_state(s, SESSION_DISCONNECTED);
			log_warn("zk: disconnected; keeping state, the client reconnects");
			session_notify(s, ZKR_SESSION_DISCONNECTED);
		}
	}
}

/* Makes the next handle: the bootstrap one (no chroot) or the main one. */
static void session_open(struct zkr_session *s, bool boot)
{
	if (s->state == SESSION_CLOSED)
		return;
	session_close_handle(s);
	session_util_log_level();
	if (s->chroot[0] == '\0')
		boot = false;

	const char *hosts = boot ? s->hosts : s->connect;
	/* zookeeper_init resolves names with a blocking getaddrinfo; IP
	 * literals in the connect string avoid that stall. */
	zhandle_t *zh = zookeeper_init2(hosts, session_watcher, s->timeout_ms, NULL, s, 0,
					session_util_log);
	if (zh == NULL) {
		int delay = session_backoff_ms(s);
		log_error("zk: cannot create a handle for %s: %s; retrying in %d ms", hosts,
			  strerror(errno), delay);
		session_set_state(s, SESSION_DEAD);
		session_schedule_open(s, delay);
		return;
	}
	s->zh = zh;
	if (s->auth != NULL) {
		/* Queued now, sent right after the handshake, and re-sent by the
		 * library on every reconnect of this handle. A refusal arrives as
		 * ZOO_AUTH_FAILED_STATE in the watcher. */
		int rc = zoo_add_auth(zh, "digest", s->auth, (int)strlen(s->auth), NULL, NULL);
		if (rc != ZOK)
			log_error("zk: add_auth: %s", zerror(rc));
	}
	session_set_state(s, boot ? SESSION_BOOT : SESSION_CONNECTING);
	session_arm(s);
}

/*
 * The retry timer: opens the next handle, the bootstrap one if the check
 * asked for it. The old handle is closed while the state still hides it
 * from zkr_session_zh, so completions that run inside the close cannot
 * pick it up again.
 */
static void session_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_session *s = arg;
	(void)fd;
	(void)what;
	bool boot = s->need_boot;
	s->need_boot = false;
	session_close_handle(s);
	session_open(s, boot);
}

/* ---- driving the client ----------------------------------------------- */

static void session_io(evutil_socket_t fd, short what, void *arg)
{
	struct zkr_session *s = arg;
	if (s->zh == NULL)
		return;
	int events = 0;
	if (what & EV_READ)
		events |= ZOOKEEPER_READ;
	if (what & EV_WRITE)
		events |= ZOOKEEPER_WRITE;
	s->in_zk = true;
	int rc = zookeeper_process(s->zh, events);
	/*
	 * zookeeper_process reads one reply per call. After a burst of
	 * requests (a full re-read issues tens of thousands) the socket holds
	 * many; take them here while bytes are waiting instead of one loop
	 * turn (and one re-arm) each. Bounded, so timers and the proxy still
	 * get their turn; the fd cannot change in between because only
	 * zookeeper_interest reconnects.
	 */
	int avail = 0;
	for (int n = 0; n < SESSION_READ_BURST && (events & ZOOKEEPER_READ) && fd >= 0 &&
			rc == ZOK && ioctl(fd, FIONREAD, &avail) == 0 && avail > 0; n++)
		rc = zookeeper_process(s->zh, ZOOKEEPER_READ);
	s->in_zk = false;
	/* ZNOTHING (nothing to read yet), ZCONNECTIONLOSS and ZINVALIDSTATE
	 * during reconnect backoff are routine. Whether the session is gone is
	 * decided by the session event alone, never from this code. */
	if (rc != ZOK && rc != ZNOTHING)
		log_debug("zk: process: %s", zerror(rc));
	session_arm(s);
}

static void session_arm(struct zkr_session *s)
{
	if (s->in_zk) {
		s->rearm = true;
		return;
	}
	if (s->zh == NULL || s->state == SESSION_DEAD || s->state == SESSION_CLOSED) {
		event_del(s->io);
		return;
	}
	int fd = -1, interest = 0;
	struct timeval tv = { 0, 0 };
	int rc = ZOK;
	/* A socket error inside zookeeper_interest runs completions (with
	 * ZCONNECTIONLOSS) and those may kick: ask again so that requests they
	 * queued are reflected. Bounded, to stay out of a loop. */
	for (int round = 0; round < 4; round++) {
		s->rearm = false;
		s->in_zk = true;
		rc = zookeeper_interest(s->zh, &fd, &interest, &tv);
		s->in_zk = false;
		if (!s->rearm || s->zh == NULL || s->state == SESSION_DEAD)
			break;
	}
	if (s->zh == NULL || s->state == SESSION_DEAD || s->state == SESSION_CLOSED) {
		event_del(s->io);
		return;
	}
	if (rc == ZINVALIDSTATE) {
		/* Unrecoverable handle: the session event that says so is queued
		 * and runs in the next zookeeper_process; give it a turn. */
		int st = zoo_state(s->zh);
		if (st == ZOO_EXPIRED_SESSION_STATE || st == ZOO_AUTH_FAILED_STATE) {
			session_watcher(s->zh, ZOO_SESSION_EVENT, st, "", s);
			event_del(s->io);
			return;
		}
	} else if (rc != ZOK) {
		log_debug("zk: interest: %s", zerror(rc));
	}

	short flags = 0;
	if (fd >= 0) {
		if (interest & ZOOKEEPER_READ)
			flags |= EV_READ;
		if (interest & ZOOKEEPER_WRITE)
			flags |= EV_WRITE;
	} else {
		fd = -1;
	}
	/* A zero deadline happens right after a socket error: process once
	 * more (it notices fd -1) and the next interest picks a server or a
	 * backoff. The library adds its own delay after cycling all servers. */
	event_del(s->io);
	if (event_assign(s->io, s->base, fd, flags, session_io, s) != 0 ||
	    event_add(s->io, &tv) != 0) {
		log_error("zk: cannot arm the session event (fd %d)", fd);
		/* Fall back to a plain timer so the client keeps being driven. */
		struct timeval again = { 0, 100000 };
		if (event_assign(s->io, s->base, -1, 0, session_io, s) == 0)
			event_add(s->io, &again);
	}
}

void zkr_session_kick(struct zkr_session *s)
{
	session_arm(s);
}

/* ---- public ----------------------------------------------------------- */

/* Splits "h:p,h:p/chroot" into hosts and chroot, defaulting the chroot. */
static bool session_parse_connect(struct zkr_session *s, const char *connect, char *why, size_t whylen)
{
	const char *slash = strchr(connect, '/');
	size_t hlen = slash ? (size_t)(slash - connect) : strlen(connect);
	if (hlen == 0) {
		zkr_set_why(why, whylen, "connect string '%s' names no server", connect);
		return false;
	}
	const char *root = slash ? slash : SESSION_CHROOT_DEFAULT;
	if (strcmp(root, "/") == 0)
		root = "";  /* explicit "/": use the server's root, no chroot */
	else if (!session_util_valid_path(root) || strstr(root, "/.") != NULL) {
		zkr_set_why(why, whylen, "bad chroot '%s' in the connect string", root);
		return false;
	}
	s->hosts = strndup(connect, hlen);
	s->chroot = strdup(root);
	if (s->hosts == NULL || s->chroot == NULL ||
	    asprintf(&s->connect, "%s%s", s->hosts, s->chroot) < 0) {
		s->connect = NULL;
		zkr_set_why(why, whylen, "out of memory");
		return false;
	}
	return true;
}

struct zkr_session *zkr_session_new(struct event_base *base, const struct zkr_session_opts *opts,
				    char *why, size_t whylen)
{
	if (opts == NULL || opts->connect == NULL || opts->connect[0] == '\0') {
		zkr_set_why(why, whylen, "no ZooKeeper connect string");
		return NULL;
	}
	if (opts->auth != NULL && strchr(opts->auth, ':') == NULL) {
		zkr_set_why(why, whylen, "auth must be user:password");
		return NULL;
	}
	struct zkr_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->state = SESSION_CONNECTING;
	s->read_only = opts->read_only;
	s->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
	if (s->timeout_ms < SESSION_TIMEOUT_MIN_MS)
		s->timeout_ms = SESSION_TIMEOUT_MIN_MS;
	if (s->timeout_ms > SESSION_TIMEOUT_MAX_MS)
		s->timeout_ms = SESSION_TIMEOUT_MAX_MS;
	prng_seed(&s->rng, (uint64_t)(uintptr_t)s);

	if (!session_parse_connect(s, opts->connect, why, whylen))
		goto failed;
	if (opts->auth != NULL && (s->auth = strdup(opts->auth)) == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		goto failed;
	}
	s->io = event_new(base, -1, 0, session_io, s);
	s->retry = evtimer_new(base, session_retry_cb, s);
	if (s->io == NULL || s->retry == NULL) {
		zkr_set_why(why, whylen, "cannot create libevent events");
		goto failed;
	}

	session_open(s, false);
	if (s->zh == NULL) {
		/* The first handle failing is a configuration error (a host that
		 * does not parse); say so instead of retrying forever. */
		zkr_set_why(why, whylen, "cannot use connect string '%s'", opts->connect);
		goto failed;
	}
	return s;

failed:
	zkr_session_free(s);
	return NULL;
}

void zkr_session_close(struct zkr_session *s)
{
	if (s == NULL || s->state == SESSION_CLOSED)
		return;
	if (s->retry != NULL)
		event_del(s->retry);
	session_set_state(s, SESSION_CLOSED);
	session_close_handle(s);
}

void zkr_session_free(struct zkr_session *s)
{
	if (s == NULL)
		return;
	zkr_session_close(s);
	if (s->io != NULL)
		event_free(s->io);
	if (s->retry != NULL)
		event_free(s->retry);
	free(s->subs);
	free(s->hosts);
	free(s->chroot);
	free(s->connect);
	if (s->auth != NULL) {
		explicit_bzero(s->auth, strlen(s->auth));
		free(s->auth);
	}
	free(s);
}

zhandle_t *zkr_session_zh(struct zkr_session *s)
{
	switch (s->state) {
	case SESSION_CONNECTING:
	case SESSION_CONNECTED:
	case SESSION_DISCONNECTED:
		return s->zh;
	default:
		return NULL;
	}
}

const char *const zkr_session_state_names[ZKR_SESSION_STATES] = {
	"connecting", "connected", "disconnected", "expired", "closed",
};

const char *zkr_session_state(const struct zkr_session *s)
{
	switch (s->state) {
	case SESSION_CONNECTED: return zkr_session_state_names[1];
	case SESSION_DISCONNECTED: return zkr_session_state_names[2];
	case SESSION_DEAD: return zkr_session_state_names[3];
	case SESSION_CLOSED: return zkr_session_state_names[4];
	default: return zkr_session_state_names[0];
	}
}

bool zkr_session_connected(const struct zkr_session *s)
{
	return s->state == SESSION_CONNECTED;
}

const char *zkr_session_chroot(const struct zkr_session *s)
{
	return s->chroot[0] ? s->chroot : "/";
}

int64_t zkr_session_id(const struct zkr_session *s)
{
	if (s->zh == NULL || s->state == SESSION_BOOT || s->state == SESSION_IDLE)
		return 0;
	const clientid_t *id = zoo_client_id(s->zh);
	return id ? id->client_id : 0;
}
