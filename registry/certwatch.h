/*
 * The watched certificates: follows /certs in ZooKeeper through a
 * zkr_session and reports each TlsCertificate record as it appears and
 * disappears, for the router's TLS store.
 *
 * Records live at /certs/<name>.<sequence> and are immutable (a
 * replacement is a new node, then the old one removed), so the rules are
 * those of instances: one child watch on /certs for the whole folder,
 * one getData per new child, never a re-read of a child already known.
 * A record that fails to decode or lacks its chain or key is skipped and
 * logged with its path; so is one the store refuses (it says why).
 *
 * Fail static: a failed read or an unreachable ZooKeeper never removes a
 * certificate in service. After a new session (expiry) /certs is listed
 * again and compared with what is known: children gone meanwhile are
 * reported removed, new ones read, the rest left alone.
 *
 * Single-threaded: everything runs in the session's event loop.
 */
#ifndef ZKR_CERTWATCH_H
#define ZKR_CERTWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "registry/record.h"
#include "registry/session.h"

#define CERTS_PATH "/certs"

/*
 * A new record at `path` ("/certs/<child>", relative to the chroot). The
 * record is borrowed for the call. Returns false, with a reason in `why`,
 * when the certificate is not taken into service (it does not parse, its
 * key does not match...): the record is then skipped, and logged here.
 */
typedef bool (*zkr_cert_add_cb)(const char *path, const record_tls_certificate *rec, char *why,
				size_t whylen, void *arg);
/* A record that add accepted is gone (removed, or its folder was). */
typedef void (*zkr_cert_remove_cb)(const char *path, void *arg);

struct zkr_certwatch_stats {
	uint64_t requests;         /* ZooKeeper requests issued */
	uint64_t records_read;     /* record reads that returned data */
	uint64_t bad_records;      /* records skipped */
	uint64_t read_errors;      /* reads failed (other than ZNONODE or a lost connection) */
	uint64_t served;           /* records accepted and not removed since */
};

struct zkr_certwatch;

/* Subscribes to the session and starts reading once it connects.
 * Returns NULL (with a reason) on allocation failure. */
struct zkr_certwatch *zkr_certwatch_new(struct event_base *base, struct zkr_session *s,
					zkr_cert_add_cb add, zkr_cert_remove_cb remove, void *arg,
					char *why, size_t whylen);

/* Like zkr_watcher_free: while the session object still exists; replies
 * queued on it afterwards find the watcher gone. Reports no removals. */
void zkr_certwatch_free(struct zkr_certwatch *cw);

void zkr_certwatch_get_stats(const struct zkr_certwatch *cw, struct zkr_certwatch_stats *out);

#endif
