/*
 * zkrouterctl's view of ZooKeeper: one session (registry/session.h) on a
 * private event loop, and blocking wrappers around the asynchronous
 * single-threaded client. A command line tool reads best as a sequence of
 * steps, so each wrapper issues one request, runs the loop until its
 * completion arrives or the tool's deadline passes, and returns the
 * ZooKeeper result code (ZOPERATIONTIMEOUT when the deadline passed).
 *
 * The wrappers must not be called from inside a ZooKeeper callback.
 */
#ifndef ZKR_CTL_ZK_H
#define ZKR_CTL_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <zookeeper/zookeeper.h>

#include "registry/session.h"

struct ctl_zk {
	struct event_base *base;
	struct zkr_session *session;
	struct event *wake;        /* bounds each wait */
	int timeout_ms;            /* per request, and for the first connect */
	bool connected;
	bool expired;              /* the session expired under us */
};

/*
 * Connects and waits up to timeout_ms for the session. Returns false with a
 * reason (e.g. "cannot reach ZooKeeper at ... within 3000 ms"). With
 * `read_only` a missing chroot is left missing (reads find nothing).
 */
bool ctl_zk_open(struct ctl_zk *c, const char *connect, const char *auth, int timeout_ms,
		 bool read_only, char *why, size_t whylen);
void ctl_zk_close(struct ctl_zk *c);

/* Runs the loop for up to ms milliseconds, or until *flag turns true (a
 * watcher or signal handler sets it); returns *flag. For `watch`. */
bool ctl_zk_run_until(struct ctl_zk *c, const bool *flag, int ms);

/* *data is malloc'd (NUL-terminated beyond len) or NULL for an empty node. */
int ctl_zk_get(struct ctl_zk *c, const char *path, char **data, int *len, struct Stat *st);
int ctl_zk_wget(struct ctl_zk *c, const char *path, watcher_fn w, void *ctx,
		char **data, int *len, struct Stat *st);
/* out receives sorted names; free with deallocate_String_vector. */
int ctl_zk_children(struct ctl_zk *c, const char *path, struct String_vector *out);
int ctl_zk_wchildren(struct ctl_zk *c, const char *path, watcher_fn w, void *ctx,
		     struct String_vector *out);
int ctl_zk_exists(struct ctl_zk *c, const char *path, struct Stat *st);
int ctl_zk_create(struct ctl_zk *c, const char *path, const void *data, int len,
		  const struct ACL_vector *acl, int flags);
/* Like ctl_zk_create; *created receives the path made (malloc'd), which
 * for ZOO_SEQUENCE carries the sequence number. */
int ctl_zk_create_path(struct ctl_zk *c, const char *path, const void *data, int len,
		       const struct ACL_vector *acl, int flags, char **created);
int ctl_zk_set(struct ctl_zk *c, const char *path, const void *data, int len, int version);
int ctl_zk_delete(struct ctl_zk *c, const char *path, int version);
/* acl: free with deallocate_ACL_vector. */
int ctl_zk_get_acl(struct ctl_zk *c, const char *path, struct ACL_vector *acl, struct Stat *st);
int ctl_zk_set_acl(struct ctl_zk *c, const char *path, int version, const struct ACL_vector *acl);

/*
 * Atomically creates both nodes (the app and its instances folder) with
 * their own ACLs; *failed_op receives the index of the op that failed.
 */
int ctl_zk_create2(struct ctl_zk *c,
		   const char *path1, const void *data1, int len1, const struct ACL_vector *acl1,
		   const char *path2, const struct ACL_vector *acl2, int *failed_op);

/* Words an operator understands for a ZooKeeper result code. */
const char *ctl_zk_strerror(int rc);

#endif
