/*
 * Shared by node/tls-store.c (sources, snapshots, the name index) and
 * node/tls-ctx.c (OpenSSL contexts, the client hello callback, ALPN).
 * Not for the rest of the daemon, which uses node/tls.h.
 */
#ifndef ZKR_TLS_INT_H
#define ZKR_TLS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include <event2/event.h>

#include <openssl/ssl.h>

#include "node/tls.h"
#include "registry/tlscert.h"

/* One certificate in service: immutable once built, shared by snapshots. */
struct tls_cert_entry {
	atomic_uint refs;
	char *name;                  /* file path, or the record's path */
	enum tls_source source;
	char *key_file;              /* TLS_SOURCE_FILE with a separate key, else NULL */
	unsigned char digest[32];    /* of the bytes read (chain, then key): a reload compares it */
	struct zkr_cert cert;
	SSL_CTX *ctx;                /* chain and key; SSLs switch to it */
};

/* A name of the index: entries[start .. start+count) of `ids`. */
struct tls_slot {
	const char *key;             /* exact name, or ".suffix" for "*.suffix" */
	uint32_t start, count;
};

/* Immutable after build; freed when the last reference goes. */
struct tls_snapshot {
	atomic_uint refs;
	struct tls_cert_entry **entries;
	size_t n;
	struct tls_cert_entry *def;  /* the default certificate, NULL when none */
	struct tls_slot *exact, *wild;
	size_t exact_mask, wild_mask; /* capacity - 1, a power of two */
	uint32_t *ids;
};

/* The store: tls-store.c (snapshots, output) and tls-sources.c (loading). */
struct tls_store {
	pthread_mutex_t lock;          /* guards the swaps of `snap` and `base_ctx` */
	struct tls_snapshot *snap;
	SSL_CTX *base_ctx;
	atomic_bool strict_sni;

	/* Loop thread only. */
	struct tls_cert_entry **files; /* tls-cert pairs in order, then tls-cert-dir sorted */
	size_t n_files;
	struct tls_cert_entry **records;
	size_t n_records;
	char *min_version, *ciphers, *ciphersuites;
	struct event *publish_ev, *daily_ev;
	tls_base_ctx_cb base_cb;
	void *base_cb_arg;
};

/* What the client offered, for choosing among certificates of one name. */
struct tls_hello {
	bool ecdsa;                  /* an ECDSA certificate can be used with it */
};

/*
 * The certificate for SNI `name` (lower-case, NULL when the client sent
 * none): see tls_select's ranking in tls-store.c. NULL when no certificate
 * holds the name and `strict`, or when there is no default.
 */
struct tls_cert_entry *tls_snapshot_select(const struct tls_snapshot *snap, const char *name,
					   const struct tls_hello *hello, bool strict, time_t now);

struct tls_snapshot *tls_store_acquire(struct tls_store *s);
void tls_snapshot_release(struct tls_snapshot *snap);
bool tls_store_strict_sni(struct tls_store *s);

/* tls-store.c: entries (refcounted with atomics; the last unref frees). */
struct tls_cert_entry *tls_entry_new(const struct tls_store *s, const char *name, enum tls_source source, const char *key_file,
				     const char *chain, size_t chain_len, const char *key, size_t key_len,
				     char *why, size_t whylen);
struct tls_cert_entry *tls_entry_ref(struct tls_cert_entry *e);
void tls_entry_unref(struct tls_cert_entry *e);
/* The same certificate with a context under the store's current policy. */
struct tls_cert_entry *tls_entry_repolicy(const struct tls_store *s, const struct tls_cert_entry *old,
					  char *why, size_t whylen);
void tls_entry_warn_expiry(const struct tls_cert_entry *e, time_t now);
const char *tls_source_name(enum tls_source s);

/* tls-store.c: a new snapshot of the sources now, or on the next loop turn. */
bool tls_store_publish_now(struct tls_store *s);
void tls_store_publish_later(struct tls_store *s);
void tls_store_publish_cb(evutil_socket_t fd, short what, void *arg);
void tls_store_daily_cb(evutil_socket_t fd, short what, void *arg);

/* tls-ctx.c: a certificate's context (chain and key), shaped like every other. */
SSL_CTX *tls_cert_ctx_new(const struct zkr_cert *c, const char *min_version, const char *ciphers,
			  const char *ciphersuites, char *why, size_t whylen);

/* tls-ctx.c: the base context for a policy, its client hello callback bound to `s`. */
SSL_CTX *tls_base_ctx_new(struct tls_store *s, const char *min_version, const char *ciphers,
			  const char *ciphersuites, char *why, size_t whylen);

#endif
