/*
 * Internals of the watched routing table, shared by registry/watcher.c
 * (model, watches, building and publishing) and registry/watcher_read.c
 * (issuing reads and merging replies). Not for other modules: they use
 * registry/watcher.h.
 */
#ifndef ZKR_WATCHER_INT_H
#define ZKR_WATCHER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "registry/record.h"
#include "registry/watcher.h"

enum winst_state {
	WINST_NONE,                /* not read yet */
	WINST_OK,                  /* record decoded and valid: routed */
	WINST_BAD,                 /* undecodable or invalid: skipped (logged) */
};

struct winst {
	char *id;                  /* znode name */
	enum winst_state st;
	bool inflight;             /* a getData is outstanding */
	bool retry;                /* not read successfully yet; the sweep re-reads */
	/* What the table needs of the record; labels are not routed on. */
	char *host;
	char *zone;
	uint32_t port, weight;
	bool draining;
	bool has_registered_at;
	uint64_t registered_at_ms;
};

struct wapp {
	struct wapp *hnext;
	char *domain;
	uint64_t serial;           /* unique per wapp, so replies to a removed
				    * and re-added app's predecessor are dropped */
	bool invalid;              /* bad domain name: ignored, not watched */
	bool mark;                 /* scratch for the /apps diff */

	record_app_config *cfg;    /* NULL: defaults (empty data or not read) */
	bool cfg_read;             /* a data read finished at least once */
	bool cfg_inflight, cfg_again, cfg_need;
	bool cfg_failed;           /* the last read failed for good (ZNOAUTH...) */
	bool cfg_gone;             /* the last read found no node */

	bool list_read;            /* an instances list finished at least once */
	bool list_inflight, list_again, list_need;
	bool list_failed;          /* likewise for the instances list */
	bool have_cversion;
	int32_t cversion;          /* of instances, as of the last list */
	unsigned pending_gets;
	struct winst *inst;        /* sorted by id */
	size_t n_inst;

	bool in_batch;
	bool complete;             /* counted in w->n_incomplete while false */
	bool dirty;                /* model differs from what the table has */
};

enum req_kind { REQ_APPS, REQ_CFG, REQ_LIST, REQ_GET, REQ_EXISTS };

struct req {
	uint64_t wid, epoch, serial;
	enum req_kind kind;
	char *domain;
	char *id;
};

struct zkr_watcher {
	struct zkr_watcher *live_next;
	uint64_t id;
	struct event_base *base;
	struct zkr_session *s;
	zkr_watcher_cb cb;
	void *cb_arg;
	int jitter_ms, retry_ms;
	int retry_cur_ms;          /* backs off from retry_ms after failures */
	uint64_t rng;

	uint64_t epoch;            /* +1 per session; older replies are dropped */
	bool running;              /* a session is live and reads are issued */
	bool syncing;              /* a complete re-read is in progress */
	bool apps_read;            /* /apps listed once in this epoch */
	bool apps_inflight, apps_again, apps_need;
	size_t n_incomplete;
	size_t watch_bytes;        /* estimated size of the reconnect SetWatches */
	bool watch_bytes_warned;

	struct wapp **buckets;
	size_t n_buckets, n_apps;
	uint64_t next_serial;

	struct wapp **batch;       /* apps waiting for the batch timer */
	size_t n_batch, cap_batch;
	bool batch_apps;           /* relist /apps in the next batch */
	struct event *batch_ev;
	struct event *retry_ev;
	struct event *publish_ev;


	struct route_table *current;   /* last published */
	struct route_table *work;      /* built, not yet published (or NULL) */
	uint64_t generation;
	struct zkr_watcher_stats stats;
};

/* ---- shared between watcher.c and watcher_read.c ---------------------- */

#define APPS_PATH "/apps"
#define WATCHER_RETRY_MAX_MS 60000

/* watcher.c: the model, watches, building and publishing */
struct zkr_watcher *watcher_lookup(uint64_t id);
const char *watcher_chroot(struct zkr_watcher *w);
struct wapp *watcher_app_find(struct zkr_watcher *w, const char *domain);
struct wapp *watcher_app_add(struct zkr_watcher *w, const char *domain);
void watcher_app_remove(struct zkr_watcher *w, struct wapp *a);
void watcher_inst_clear(struct winst *in);
void watcher_batch_add(struct zkr_watcher *w, struct wapp *a);
void watcher_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx);
void watcher_app_settle(struct zkr_watcher *w, struct wapp *a);
void watcher_check_synced(struct zkr_watcher *w);
void watcher_table_remove(struct zkr_watcher *w, const char *domain);
void watcher_note_watches(struct zkr_watcher *w, const struct wapp *a, bool add);

/* watcher_read.c: issuing reads and merging their replies */
bool watcher_rc_transient(int rc);
void watcher_schedule_retry(struct zkr_watcher *w, bool transient);
void watcher_read_failed(struct zkr_watcher *w, const char *what, const char *path, int rc);
void watcher_issue_apps(struct zkr_watcher *w);
void watcher_issue_cfg(struct zkr_watcher *w, struct wapp *a);
void watcher_issue_list(struct zkr_watcher *w, struct wapp *a);
void watcher_issue_get(struct zkr_watcher *w, struct wapp *a, struct winst *in);

#endif
