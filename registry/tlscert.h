/*
 * A TLS certificate with its key, parsed from PEM and checked the way a
 * router uses it. One parser for every source: --tls-cert files and
 * directories (node/), /certs records in ZooKeeper (routers and
 * zkrouterctl cert add, which refuses what a router would skip).
 */
#ifndef ZKR_TLSCERT_H
#define ZKR_TLSCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Names a certificate may serve; more are ignored (with a log line). */
#define ZKR_CERT_NAMES_MAX 512

enum zkr_key_type {
	ZKR_KEY_RSA,
	ZKR_KEY_ECDSA,
	ZKR_KEY_OTHER,   /* Ed25519 and the like: served, never preferred */
};

struct zkr_cert {
	X509 *leaf;
	STACK_OF(X509) *chain;   /* intermediates after the leaf, maybe empty */
	EVP_PKEY *key;
	char **names;            /* DNS SANs, lower-case, "*.x.y" for wildcards */
	size_t n_names;
	time_t not_before;
	time_t not_after;
	enum zkr_key_type key_type;
	char subject[256];       /* one-line forms, for listings and logs */
	char issuer[256];
	unsigned char sha256[32]; /* of the leaf's DER: identity for reloads */
};

/*
 * Parses a PEM chain (leaf first) and a PEM private key. key_pem may be
 * NULL when the key is in chain_pem (one file holding both, as in a
 * --tls-cert-dir). Fails with a reason in `why` when nothing parses, the
 * key does not match the leaf, or the leaf has no DNS name. Validity
 * dates are recorded, not checked: see zkr_cert_usable.
 */
bool zkr_cert_parse(const char *chain_pem, size_t chain_len, const char *key_pem, size_t key_len,
		    struct zkr_cert *out, char *why, size_t whylen);

/* False, with a reason, when the certificate is expired or not yet valid at `now`. */
bool zkr_cert_usable(const struct zkr_cert *c, time_t now, char *why, size_t whylen);

/*
 * True when `name` (lower-case, no trailing dot) is one of the
 * certificate's names: exactly, or under a one-label wildcard
 * ("*.example.com" matches "a.example.com", not "a.b.example.com" nor
 * "example.com").
 */
bool zkr_cert_matches(const struct zkr_cert *c, const char *name, bool *wildcard);

/* A second holder of the same certificate and key (references, names
 * copied), e.g. for a context built under another policy. False when out
 * of memory (dst then holds nothing). */
bool zkr_cert_copy(struct zkr_cert *dst, const struct zkr_cert *src);

void zkr_cert_free(struct zkr_cert *c);

#endif
