/*
 * The routing table on disk, for fail static across restarts: a router
 * keeps its last published table in a file under --state-dir, and one that
 * starts while ZooKeeper is unreachable routes with that file's table
 * until ZooKeeper's own view is complete.
 *
 * The file is one TableSnapshot record (proto/zkrouter.proto) between a
 * fixed header and a checksum:
 *
 *   offset  size  what
 *        0     8  magic "ZKRTABLE"
 *        8     4  format version, big-endian (STATEFILE_VERSION)
 *       12     8  payload length N, big-endian
 *       20     N  payload: a packed TableSnapshot
 *     20+N    32  SHA-256 over bytes 0 .. 20+N-1
 *
 * A file that is truncated, corrupt, of another format version, written
 * for another ZooKeeper chroot, or holding a record this router would
 * refuse from ZooKeeper is rejected whole, with the reason.
 *
 * Writes are atomic (a temporary file, fsync, rename, fsync of the
 * directory), so a crash leaves the old file or the new one, never a mix.
 * The daemon's writer (statefile_open) runs them on a thread of its own,
 * so a slow disk never holds up the event loop, and at most once per
 * interval; the newest table handed to it is always written in the end,
 * at the latest by statefile_close.
 */
#ifndef ZKR_STATEFILE_H
#define ZKR_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/table.h"

#define STATEFILE_VERSION 1
#define STATEFILE_HEADER_LEN 20
#define STATEFILE_SUM_LEN 32
/* Far above any real table (10,000 apps of 10 instances pack to ~5 MB), so
 * that a corrupt length can never make us allocate without bound. */
#define STATEFILE_MAX_PAYLOAD (256u * 1024 * 1024)
#define STATEFILE_WHY_MAX 256

/* What a file says about itself besides the table. */
struct statefile_meta {
	uint64_t written_at_ms;    /* Unix time in milliseconds */
	uint64_t generation;       /* the writer's generation of that table */
	char node_id[RECORD_ID_MAX + 1];
};

/* ---- the format (no I/O) ----------------------------------------------- */

/*
 * The file image of `t`, malloc'd, with *len its size. `chroot` and
 * `node_id` are recorded; `now_ms` is the write time. NULL (with a reason)
 * on allocation failure or if the table holds a record that would not
 * validate (it cannot, coming from ZooKeeper).
 */
uint8_t *statefile_encode(const struct route_table *t, const char *chroot, const char *node_id,
			  uint64_t now_ms, size_t *len, char *why, size_t whylen);

/*
 * The table in a file image (generation 0, digest recomputed and checked
 * against the stored one), or NULL with the reason. `chroot` is the
 * reader's: a file written for another one is refused. meta may be NULL.
 */
struct route_table *statefile_decode(const uint8_t *buf, size_t len, const char *chroot,
				     struct statefile_meta *meta, char *why, size_t whylen);

/* ---- files -------------------------------------------------------------- */

/* Writes `t` to `path` atomically (see above). False with a reason. */
bool statefile_write(const char *path, const struct route_table *t, const char *chroot,
		     const char *node_id, char *why, size_t whylen);

/* Reads and decodes `path`. NULL with a reason; errno is ENOENT (and the
 * reason says so) when there is no file at all, which is no error. */
struct route_table *statefile_read(const char *path, const char *chroot, struct statefile_meta *meta,
				   char *why, size_t whylen);

/* ---- the daemon's writer ------------------------------------------------ */

struct statefile;

struct statefile_stats {
	uint64_t writes;           /* files written */
	uint64_t write_errors;     /* writes that failed */
	uint64_t written_generation; /* generation of the last table written, 0 if none */
};

/*
 * Creates `dir` if it is missing (one level, mode 0750), checks that a file
 * can be created in it, and starts the writer thread. The file is
 * DIR/table-NODE_ID, so routers on one host may share a directory. At most
 * one write per `min_interval_ms`. NULL with a reason on failure.
 */
struct statefile *statefile_open(const char *dir, const char *node_id, const char *chroot,
				 unsigned min_interval_ms, char *why, size_t whylen);

/* The file's path (for messages). */
const char *statefile_path(const struct statefile *sf);

/* statefile_read of this writer's file. */
struct route_table *statefile_load(struct statefile *sf, struct statefile_meta *meta, char *why,
				   size_t whylen);

/* Queues `t` to be written (takes its own reference; replaces a table
 * still waiting). Never blocks on the disk. */
void statefile_save(struct statefile *sf, struct route_table *t);

void statefile_get_stats(struct statefile *sf, struct statefile_stats *out);

/* Writes what is still queued, stops the thread and frees everything. */
void statefile_close(struct statefile *sf);

#endif
