/*
 * A ZooKeeper session driven by a libevent loop, with the single-threaded
 * C client (zookeeper_interest / zookeeper_process). Nothing here runs on
 * a thread of its own: watchers and completions run inside the loop.
 *
 * The session survives disconnects (the client reconnects on its own and
 * re-sends watches). After expiry it makes a new handle from the main loop
 * with jittered backoff, re-authenticates and tells every subscriber with
 * ZKR_SESSION_NEW, so they re-create ephemerals and re-read with watches.
 */
#ifndef ZKR_SESSION_H
#define ZKR_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <zookeeper/zookeeper.h>

enum zkr_session_event {
	ZKR_SESSION_NEW,           /* connected on a new session (first, or after expiry) */
	ZKR_SESSION_RECONNECTED,   /* connected again on the same session */
	ZKR_SESSION_DISCONNECTED,  /* connection lost; the library reconnects */
	ZKR_SESSION_EXPIRED,       /* the session is gone; a new one is on its way */
};

struct zkr_session_opts {
	const char *connect;       /* "host:port,host:port[/chroot]"; chroot default /zkrouter */
	const char *auth;          /* "user:password" for digest auth, or NULL */
	int timeout_ms;            /* requested session timeout */
	bool read_only;            /* never create a missing chroot (reads then find nothing) */
};

struct zkr_session;

typedef void (*zkr_session_cb)(struct zkr_session *s, enum zkr_session_event ev, void *arg);

/*
 * Starts connecting (nothing blocks: the first events arrive in the loop).
 * Returns NULL with a reason for a connect string or auth that cannot
 * work. The connect string should use IP literals: zookeeper_init
 * resolves names with a blocking getaddrinfo.
 */
struct zkr_session *zkr_session_new(struct event_base *base, const struct zkr_session_opts *opts,
				    char *why, size_t whylen);

/* Closes (see zkr_session_close: blocks until the server confirms, so
 * our ephemerals go at once) and frees. Not from a ZooKeeper callback. */
void zkr_session_free(struct zkr_session *s);

/* Adds a listener for session events; returns false on allocation failure. */
bool zkr_session_subscribe(struct zkr_session *s, zkr_session_cb cb, void *arg);
void zkr_session_unsubscribe(struct zkr_session *s, zkr_session_cb cb, void *arg);

/* The live handle, or NULL while a new one is being made after expiry. */
zhandle_t *zkr_session_zh(struct zkr_session *s);
bool zkr_session_connected(const struct zkr_session *s);

/* Where the session stands, in one word for /metrics: "connecting" (no
 * session yet, or a new one on its way), "connected", "disconnected" (the
 * library reconnects on the same session), "expired" (waiting to make a
 * new one: expired, refused, or its bootstrap failed) or "closed". */
const char *zkr_session_state(const struct zkr_session *s);
#define ZKR_SESSION_STATES 5
extern const char *const zkr_session_state_names[ZKR_SESSION_STATES];

/* Re-arm the loop's interest after issuing requests from outside a
 * ZooKeeper callback (a timer, a signal), so queued writes go out. */
void zkr_session_kick(struct zkr_session *s);

/* ---- additions: helpers for the modules built on the session ---------- */

/*
 * Closes the handle now and stops reconnecting: the server drops this
 * session's ephemerals at once, and every pending completion runs (with
 * ZCLOSING) before this returns. On a connected handle the client waits
 * for the server's answer (up to a few seconds on a loaded server): call
 * it on the way out, not on a hot path. Subscribers stay registered but hear
 * nothing more. Call it before freeing objects whose completions may still
 * be queued; zkr_session_free does it too. Not from a ZooKeeper callback.
 */
void zkr_session_close(struct zkr_session *s);

/* The chroot in use ("/zkrouter" by default), for messages. */
const char *zkr_session_chroot(const struct zkr_session *s);

/* The server-assigned session id of the live handle, 0 if none. Compare it
 * with Stat.ephemeralOwner to tell our own ephemeral from a stale one. */
int64_t zkr_session_id(const struct zkr_session *s);

/* Called once with ZOK or the first ZooKeeper error (ZCLOSING if the
 * handle closed meanwhile). */
typedef void (*zkr_session_done_cb)(int rc, void *arg);

/*
 * Creates every missing component of `path` (persistent, empty data, with
 * `acl`, NULL meaning world-readable-and-writable), like `mkdir -p`.
 * ZNODEEXISTS on any component counts as success. Returns false, without
 * calling `done`, if nothing could be issued (no live handle, bad path, no
 * memory). Safe from inside a ZooKeeper callback.
 */
bool zkr_session_ensure_path(struct zkr_session *s, const char *path, const struct ACL_vector *acl,
			     zkr_session_done_cb done, void *arg);

/* A short name for a ZooKeeper return code ("ZNONODE"), for log lines. */
const char *zkr_zerror_name(int rc);

#endif
