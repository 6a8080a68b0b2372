/*
 * The watched routing table: follows /apps in ZooKeeper through a
 * zkr_session and publishes route_table snapshots (registry/table.h).
 *
 * What is watched: the children of /apps, the data of each /apps/<domain>
 * (AppConfig) and the children of each /apps/<domain>/instances. Instance
 * records are immutable, so each new child is read once and never watched.
 * A change to one app rebuilds that app only; the snapshots share every
 * other app.
 *
 * Fail static: nothing is published while the session is down, and no
 * failed read ever removes an instance or an app. After a new session
 * (start, or after expiry) everything is read again into a fresh model and
 * the result is published only once that read is complete.
 *
 * Single-threaded: everything runs in the session's event loop.
 */
#ifndef ZKR_WATCHER_H
#define ZKR_WATCHER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "registry/session.h"
#include "registry/table.h"

struct zkr_watcher_opts {
	/* Re-lists triggered by watch events are batched and delayed by a
	 * random 0..relist_jitter_ms, so that routers that all saw the same
	 * event do not hit ZooKeeper in the same millisecond. Default 10;
	 * negative means 0. */
	int relist_jitter_ms;
	/* Delay before retrying a read that failed for another reason than a
	 * lost connection (ZNOAUTH, ...). Default 2000. */
	int retry_ms;
};

struct zkr_watcher_stats {
	uint64_t requests;         /* ZooKeeper requests issued */
	uint64_t published;        /* snapshots published */
	uint64_t syncs;            /* complete re-reads finished */
	uint64_t bad_records;      /* records skipped as undecodable/invalid */
	uint64_t read_errors;      /* reads failed (other than ZNONODE) */
	uint64_t app_rebuilds;     /* incremental app rebuilds */
};

struct zkr_watcher;

/*
 * Called in the loop with each new snapshot. The table is borrowed: take
 * a reference (route_table_ref) to keep it past the call. The generation
 * counts publications of this watcher (1, 2, ...), the digest depends on
 * content only.
 */
typedef void (*zkr_watcher_cb)(struct route_table *t, void *arg);

/* Subscribes to the session and starts reading as soon as it connects.
 * opts may be NULL. Returns NULL (with a reason) on allocation failure. */
struct zkr_watcher *zkr_watcher_new(struct event_base *base, struct zkr_session *s,
				    const struct zkr_watcher_opts *opts, zkr_watcher_cb cb, void *arg,
				    char *why, size_t whylen);

/*
 * Unsubscribes and frees everything. Call it while the session object
 * still exists (before zkr_session_free; after zkr_session_close is fine).
 * Completions and watches still queued on the session find the watcher
 * gone and do nothing, whichever is closed first. Not from inside the
 * watcher's own callback.
 */
void zkr_watcher_free(struct zkr_watcher *w);

/* The last published snapshot (borrowed; NULL before the first). */
struct route_table *zkr_watcher_table(const struct zkr_watcher *w);

/* True once a complete read has been published, and no fresh re-read is
 * in progress (false while resyncing after expiry). */
bool zkr_watcher_synced(const struct zkr_watcher *w);

void zkr_watcher_get_stats(const struct zkr_watcher *w, struct zkr_watcher_stats *out);

#endif
