/*
 * Internal to registry/session.c: the helpers it shares with
 * registry/session_util.c. Other modules use registry/session.h.
 */
#ifndef ZKR_SESSION_UTIL_H
#define ZKR_SESSION_UTIL_H

#include <stdbool.h>

#include <zookeeper/zookeeper.h>

#include "registry/session.h"

/* ZooKeeper's log callback: one client line into our log, level mapped,
 * repeats within a minute demoted to debug. */
void session_util_log(const char *message);

/* Sets the client's (global) log level from ours. */
void session_util_log_level(void);

/* An absolute znode path, not "/", without empty components or a
 * trailing slash. */
bool session_util_valid_path(const char *path);

/* mkdir -p on a given handle; see zkr_session_ensure_path. `done` is not
 * called when this returns false. */
bool session_util_ensure_path(zhandle_t *zh, const char *path, const struct ACL_vector *acl,
			      zkr_session_done_cb done, void *arg);

#endif
