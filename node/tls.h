/*
 * HTTPS on the router's side: the certificate store and the server
 * contexts.
 *
 *   sources ─────────────> struct tls_store (mutable, loop thread only)
 *     --tls-cert/--tls-key     │ each change publishes
 *     --tls-cert-dir           v
 *     /certs records       snapshot: immutable, refcounted (atomics);
 *                          one SSL_CTX per certificate + a name index
 *                              ^
 *   accept: SSL_new(base) ─> client hello callback: SNI ─> snapshot
 *                            lookup ─> SSL_set_SSL_CTX(the cert's context)
 *
 * The base context carries the policy (versions, ciphers, options), the
 * session-ID cache, the session id context, the ALPN table and the client
 * hello callback; it lives until the policy changes on SIGHUP. A
 * certificate's context carries only its chain and key. A connection holds
 * its certificate's context (OpenSSL counts the reference), so a change of
 * certificates never touches an established connection; a handshake
 * selects against the snapshot current when its ClientHello arrives.
 *
 * Threads: every function below except tls_store_new_ssl and the client
 * hello callback it installs is for the thread that owns the store (the
 * loop that loads files and ZooKeeper records). tls_store_new_ssl and the
 * callback may run on any thread: they take a snapshot under a short lock
 * and a reference counted with atomics.
 */
#ifndef ZKR_TLS_H
#define ZKR_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

struct zkr_config;
struct tls_store;

/* Where a certificate came from. */
enum tls_source {
	TLS_SOURCE_FILE,      /* --tls-cert (with --tls-key, or both in one file) */
	TLS_SOURCE_DIR,       /* a *.pem file of --tls-cert-dir */
	TLS_SOURCE_RECORD,    /* a ZooKeeper /certs record */
};

/* The application protocols ALPN may choose (tls-ctx.c holds the table). */
enum tls_proto {
	TLS_PROTO_NONE,       /* no ALPN: HTTP/1.1 by default */
	TLS_PROTO_HTTP11,     /* "http/1.1" */
	TLS_PROTO_H2,         /* "h2" (RFC 9113) */
};

/* Mozilla's "intermediate" choice without DHE: forward secrecy and AEAD only. */
#define TLS_POLICY_DEFAULT_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_POLICY_DEFAULT_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* Key-exchange groups offered (not an option yet: Mozilla's intermediate list). */
#define TLS_POLICY_GROUPS "X25519:P-256:P-384"

/*
 * Whether OpenSSL accepts the policy options (tls-min-version "1.2" or
 * "1.3", the cipher list, the TLS 1.3 suites); the reason names the option.
 * Used by the configuration check, so that a bad value is a configuration
 * error at start and a refused reload on SIGHUP.
 */
bool tls_policy_check(const char *min_version, const char *ciphers, const char *ciphersuites,
		      char *why, size_t whylen);

/* Warn this long before a certificate's not-after (at load, then daily). */
#define TLS_EXPIRY_WARN_DAYS 30

/*
 * Loads every file source of `cfg` (tls-cert/tls-key pairs, tls-cert-dir)
 * and builds the base context from its policy (tls-min-version,
 * tls-ciphers, tls-ciphersuites, tls-strict-sni). `base` (may be NULL)
 * runs the daily expiry check and batches publications. NULL with the
 * file and the reason in `why` when a file cannot be used or the policy
 * is invalid: the caller stops the start.
 */
struct tls_store *tls_store_new(struct event_base *base, const struct zkr_config *cfg,
				char *why, size_t whylen);

/*
 * SIGHUP: applies the policy of `cfg` (a bad one keeps the old, logged
 * with the option named) and re-reads every file source. A file that
 * changed is validated first; on any error its previous certificate stays
 * in service and the log names the file and the reason. One log line
 * names the certificates added, replaced and removed. False when anything
 * was refused (the rest is applied).
 */
bool tls_store_reload(struct tls_store *s, const struct zkr_config *cfg);

/*
 * A certificate from ZooKeeper, under the name `path` (the znode path;
 * /metrics and /certs show it). The chain and key are PEM; key_pem may be
 * NULL when the key is in the chain. Validated with zkr_cert_parse and
 * zkr_cert_usable: on failure the path and the reason are logged and
 * false returned, and whatever was served before (under this path too)
 * stays served. Adding a path that exists replaces its certificate.
 */
bool tls_store_add_record(struct tls_store *s, const char *path, const char *chain_pem,
			  size_t chain_len, const char *key_pem, size_t key_len);

/* The record added under `path` leaves service (no-op when unknown). */
void tls_store_remove_record(struct tls_store *s, const char *path);

/*
 * A new server SSL for an accepted connection, on the current base
 * context; the certificate is chosen in its handshake. NULL when out of
 * memory. Any thread.
 */
SSL *tls_store_new_ssl(struct tls_store *s);

/*
 * The current base context (the store keeps its reference; take one with
 * SSL_CTX_up_ref to keep it). A new one replaces it when the policy
 * changes on SIGHUP: tls_store_on_base_ctx lets a part that configures it
 * (session-ticket keys) see every one, the first at once.
 */
SSL_CTX *tls_store_base_ctx(struct tls_store *s);
typedef void (*tls_base_ctx_cb)(SSL_CTX *ctx, void *arg);
void tls_store_on_base_ctx(struct tls_store *s, tls_base_ctx_cb cb, void *arg);

/* The protocol ALPN chose on this connection (after the handshake). */
enum tls_proto tls_conn_protocol(const SSL *ssl);

/* Certificates in service (every source). */
size_t tls_store_count(const struct tls_store *s);

/* /metrics: zkrouter_tls_certificate_expiry_timestamp_seconds{name=...}. */
void tls_store_write_metrics(struct tls_store *s, struct evbuffer *out);

/* /certs: a JSON array, one object per certificate in service; strings
 * go through the caller's JSON string writer (admin_json_string). */
void tls_store_write_json(struct tls_store *s, struct evbuffer *out,
			  void (*json_string)(struct evbuffer *out, const char *s));

/* Logs a warning for each certificate within TLS_EXPIRY_WARN_DAYS of expiry. */
void tls_store_check_expiry(struct tls_store *s, time_t now);

void tls_store_free(struct tls_store *s);

#endif
