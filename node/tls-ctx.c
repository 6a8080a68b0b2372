/*
 * OpenSSL contexts of the HTTPS listeners (see tls.h): the base context
 * with the policy, the session-ID cache and the client hello callback that
 * picks a certificate by SNI, one context per certificate, and the ALPN
 * table. The certificate is chosen in the client hello callback rather
 * than the servername callback because only there can the ClientHello's
 * signature algorithms and cipher suites be read, which decide between an
 * ECDSA and an RSA certificate of the same name.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include "node/tls-int.h"
#include "node/tls.h"
#include "registry/log.h"

/* The same on every context, so that SSL_set_SSL_CTX keeps sessions resumable. */
static const unsigned char sid_ctx[] = "zkrouterd";

/*
 * The protocols ALPN may choose, in our order of preference: HTTP/2
 * first (one connection for a browser's requests), then HTTP/1.1. A new
 * one is one more line here and a dispatch on tls_conn_protocol.
 */
static const struct {
	enum tls_proto proto;
	const char *name;
} alpn_table[] = {
	{ TLS_PROTO_H2, "h2" },
	{ TLS_PROTO_HTTP11, "http/1.1" },
};
#define ALPN_N (sizeof(alpn_table) / sizeof(alpn_table[0]))

static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	ERR_clear_error();
	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, len);
	return buf;
}

/*
 * Our choice among the client's protocols: ours in table order, the first
 * the client offers too. A client offering none of them gets no ALPN
 * answer and, per RFC 7301, speaks HTTP/1.1.
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (size_t i = 0; i < ALPN_N; i++) {
		size_t len = strlen(alpn_table[i].name);
		for (unsigned int at = 0; at < inlen; at += 1u + in[at]) {
			if (at + 1u + in[at] > inlen)
				break;
			if (in[at] == len && memcmp(in + at + 1, alpn_table[i].name, len) == 0) {
				*out = in + at + 1;
				*outlen = (unsigned char)len;
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
}

enum tls_proto tls_conn_protocol(const SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(ssl, &p, &len);
	for (size_t i = 0; p != NULL && i < ALPN_N; i++)
		if (len == strlen(alpn_table[i].name) && memcmp(p, alpn_table[i].name, len) == 0)
			return alpn_table[i].proto;
	return TLS_PROTO_NONE;
}

/*
 * The SNI host name, lower-cased without a trailing dot, into name[256];
 * false when the client sent none (or one we cannot read: it is treated
 * as none, and the default answers).
 */
static bool hello_sni(SSL *ssl, char *name, size_t size)
{
	const unsigned char *p;
	size_t len, n;

	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5)
		return false;
	/* server_name_list length, then name_type 0 (host_name), then the name. */
	if ((size_t)((p[0] << 8) | p[1]) != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
		return false;
	n = (size_t)((p[3] << 8) | p[4]);
	if (n == 0 || n + 5 > len || n >= size)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[5 + i];
		if (c == '\0')
			return false;
		name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	if (n > 1 && name[n - 1] == '.')
		n--;
	name[n] = '\0';
	return true;
}

/* Whether the client's TLS 1.3 offer can be taken (supported_versions holds 0x0304). */
static bool hello_tls13(SSL *ssl)
{
	const unsigned char *p;
	size_t len;

	if (SSL_get_max_proto_version(ssl) != 0 && SSL_get_max_proto_version(ssl) < TLS1_3_VERSION)
		return false;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) || len < 1 ||
	    (size_t)p[0] + 1 > len)
		return false;
	for (size_t i = 1; i + 1 < (size_t)p[0] + 1; i += 2)
		if (p[i] == 0x03 && p[i + 1] == 0x04)
			return true;
	return false;
}

/*
 * Whether an ECDSA certificate will do for this client: it signs with an
 * ECDSA scheme (signature_algorithms; RFC 5246 lets a TLS 1.2 client that
 * sends none take SHA-1 signatures of the suite's kind), and below TLS 1.3
 * it also offers an ECDHE-ECDSA suite that we enable.
 */
static bool hello_ecdsa(SSL *ssl)
{
	const unsigned char *p;
	size_t len;
	bool tls13 = hello_tls13(ssl), sig = false;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_signature_algorithms, &p, &len)) {
		if (len < 2)
			return false;
		for (size_t i = 2; i + 1 < len; i += 2) {
			/* ecdsa_sha1 and ecdsa_secp*r1_sha*: 0x0203, 0x0403, 0x0503, 0x0603;
			 * TLS 1.3's brainpool ECDSA: 0x081a-0x081c. */
			if ((p[i + 1] == 0x03 && p[i] >= 0x02 && p[i] <= 0x06) ||
			    (p[i] == 0x08 && p[i + 1] >= 0x1a && p[i + 1] <= 0x1c)) {
				sig = true;
				break;
			}
		}
		if (!sig)
			return false;
	} else if (tls13) {
		return false;
	}
	if (tls13)
		return true;
	{
		const unsigned char *cs;
		size_t n = SSL_client_hello_get0_ciphers(ssl, &cs);
		STACK_OF(SSL_CIPHER) *ours = SSL_get_ciphers(ssl);

		for (size_t i = 0; i + 1 < n; i += 2) {
			const SSL_CIPHER *c = SSL_CIPHER_find(ssl, cs + i);
			if (c == NULL || SSL_CIPHER_get_auth_nid(c) != NID_auth_ecdsa)
				continue;
			for (int j = 0; j < sk_SSL_CIPHER_num(ours); j++)
				if (sk_SSL_CIPHER_value(ours, j) == c)
					return true;
		}
	}
	return false;
}

/*
 * Runs on the base context for each ClientHello: chooses the certificate
 * from the snapshot current now and switches the connection to its
 * context (which the SSL then holds: the snapshot may go).
 */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_store *s = arg;
	struct tls_snapshot *snap;
	struct tls_cert_entry *e;
	struct tls_hello hello;
	char name[256];
	bool has_name = hello_sni(ssl, name, sizeof(name));
	int rc = SSL_CLIENT_HELLO_SUCCESS;

	hello.ecdsa = hello_ecdsa(ssl);
	snap = tls_store_acquire(s);
	e = tls_snapshot_select(snap, has_name ? name : NULL, &hello, tls_store_strict_sni(s), time(NULL));
	if (e == NULL) {
		log_debug("TLS: no certificate for %s%s%s", has_name ? "\"" : "",
			  has_name ? name : "a client without SNI", has_name ? "\"" : "");
		*al = SSL_AD_UNRECOGNIZED_NAME;
		rc = SSL_CLIENT_HELLO_ERROR;
	} else if (SSL_set_SSL_CTX(ssl, e->ctx) == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		rc = SSL_CLIENT_HELLO_ERROR;
	}
	tls_snapshot_release(snap);
	return rc;
}

/* What every context shares: the session id context and ALPN (read from
 * the certificate's context once the connection has switched to it). */
static bool ctx_common(SSL_CTX *ctx)
{
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1)
		return false;
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return true;
}

static bool apply_policy(SSL_CTX *ctx, const char *min_version, const char *ciphers,
			 const char *ciphersuites, char *why, size_t whylen);

/* A server context with the policy and what every context shares: the
 * start of both the base context and each certificate's. */
static SSL_CTX *policy_ctx_new(const char *min_version, const char *ciphers,
			       const char *ciphersuites, char *why, size_t whylen)
{
	char ebuf[200];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		snprintf(why, whylen, "cannot create a TLS context: %s", ssl_reason(ebuf, sizeof(ebuf)));
		return NULL;
	}
	if (!apply_policy(ctx, min_version, ciphers, ciphersuites, why, whylen))
		goto failed;
	if (!ctx_common(ctx)) {
		snprintf(why, whylen, "TLS context: %s", ssl_reason(ebuf, sizeof(ebuf)));
		goto failed;
	}
	return ctx;
failed:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_cert_ctx_new(const struct zkr_cert *c, const char *min_version, const char *ciphers,
			  const char *ciphersuites, char *why, size_t whylen)
{
	char ebuf[200];
	/* The suites too: a switched SSL chooses its cipher from the list of
	 * the context it switched to, not of the one it was made from. */
	SSL_CTX *ctx = policy_ctx_new(min_version, ciphers, ciphersuites, why, whylen);

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate(ctx, c->leaf) != 1) {
		snprintf(why, whylen, "certificate refused: %s", ssl_reason(ebuf, sizeof(ebuf)));
		goto failed;
	}
	for (int i = 0; i < sk_X509_num(c->chain); i++) {
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->chain, i)) != 1) {
			snprintf(why, whylen, "chain certificate %d refused: %s", i + 2,
				 ssl_reason(ebuf, sizeof(ebuf)));
			goto failed;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, c->key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, whylen, "private key refused: %s", ssl_reason(ebuf, sizeof(ebuf)));
		goto failed;
	}
	return ctx;
failed:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool parse_min_version(const char *v, int *out)
{
	if (strcmp(v, "1.2") == 0)
		*out = TLS1_2_VERSION;
	else if (strcmp(v, "1.3") == 0)
		*out = TLS1_3_VERSION;
	else
		return false;
	return true;
}

/* Applies the policy to ctx; false with the option named in `why`. */
static bool apply_policy(SSL_CTX *ctx, const char *min_version, const char *ciphers,
			 const char *ciphersuites, char *why, size_t whylen)
{
	char ebuf[200];
	int v;

	if (min_version == NULL || !parse_min_version(min_version, &v)) {
		snprintf(why, whylen, "tls-min-version: \"%s\" is not 1.2 or 1.3",
			 min_version ? min_version : "");
		return false;
	}
	if (SSL_CTX_set_min_proto_version(ctx, v) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		snprintf(why, whylen, "tls-min-version: %s", ssl_reason(ebuf, sizeof(ebuf)));
		return false;
	}
	if (ciphers == NULL || SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		ERR_clear_error();
		snprintf(why, whylen, "tls-ciphers: no cipher OpenSSL knows in \"%s\"", ciphers ? ciphers : "");
		return false;
	}
	if (ciphersuites == NULL || SSL_CTX_set_ciphersuites(ctx, ciphersuites) != 1) {
		ERR_clear_error();
		snprintf(why, whylen, "tls-ciphersuites: \"%s\" is not a list of TLS 1.3 suites OpenSSL knows",
			 ciphersuites ? ciphersuites : "");
		return false;
	}
	/* Key exchange: Mozilla's "intermediate" groups, fastest first. OpenSSL
	 * would also offer X448, P-521 and the finite-field groups, which cost
	 * more and buy no client we know of. */
	if (SSL_CTX_set1_groups_list(ctx, TLS_POLICY_GROUPS) != 1) {
		snprintf(why, whylen, "TLS groups %s: %s", TLS_POLICY_GROUPS, ssl_reason(ebuf, sizeof(ebuf)));
		return false;
	}
	/* An empty TLS 1.3 list with min 1.3 would accept no handshake at all. */
	if (v == TLS1_3_VERSION && ciphersuites[0] == '\0') {
		snprintf(why, whylen, "tls-ciphersuites: empty, but tls-min-version is 1.3");
		return false;
	}
	return true;
}

bool tls_policy_check(const char *min_version, const char *ciphers, const char *ciphersuites,
		      char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	bool ok;

	if (ctx == NULL) {
		snprintf(why, whylen, "TLS: cannot create a context (out of memory?)");
		return false;
	}
	ok = apply_policy(ctx, min_version, ciphers, ciphersuites, why, whylen);
	SSL_CTX_free(ctx);
	return ok;
}

SSL_CTX *tls_base_ctx_new(struct tls_store *s, const char *min_version, const char *ciphers,
			  const char *ciphersuites, char *why, size_t whylen)
{
	SSL_CTX *ctx = policy_ctx_new(min_version, ciphers, ciphersuites, why, whylen);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION);
	/* The session-ID cache lives here: OpenSSL looks sessions up in the
	 * context the SSL was made from, whatever certificate it switched to. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	/* One TLS 1.3 ticket per full handshake, as Go's servers send, not
	 * OpenSSL's two: each costs an encryption and a write of its own, and
	 * a resumption brings a fresh one. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, s);
	return ctx;
}
