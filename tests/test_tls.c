/*
 * Certificate store suite: records added, replaced and removed through
 * the API the ZooKeeper watcher uses, each checked by a real handshake
 * over memory BIOs between an OpenSSL client and an SSL from
 * tls_store_new_ssl; bad records are refused and change nothing; a
 * thousand records are found by name; an established connection keeps
 * its certificate when its record goes; strict SNI refuses an unknown
 * name. Keys and certificates are made here, none is committed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "node/config.h"
#include "node/tls.h"
#include "tests/lib/certgen.h"
#include "tests/lib/unit.h"

static EVP_PKEY *ec_key, *rsa_key, *ec_key2;
static char def_path[] = "/tmp/zkr-test-tls-XXXXXX";
static X509 *def_cert;

/* Adds a record for `san` with `key` (the key given is `given`). Returns the certificate. */
static X509 *add(struct tls_store *s, const char *path, EVP_PKEY *key, EVP_PKEY *given, const char *san,
		 long from_s, long to_s, bool *ok)
{
	X509 *x = test_make_cert(key, NULL, "test", san, from_s, to_s);
	struct test_pem c, k;

	if (x == NULL) {
		*ok = false;
		return NULL;
	}
	c = test_cert_pem(x);
	k = test_key_pem(given);
	*ok = tls_store_add_record(s, path, c.s, c.len, k.s, k.len);
	free(c.s);
	free(k.s);
	return x;
}

struct conn {
	SSL_CTX *cctx;
	SSL *client, *server;
};

/* A client limited to TLS 1.2 and these ciphers, when set. */
static const char *client_cipher;
/* A session for the client to resume, without tickets, when set. */
static SSL_SESSION *client_session;

/* A handshake in memory with SNI `name` (NULL: none); true when both ends completed. */
static bool handshake(struct tls_store *s, const char *name, struct conn *c)
{
	BIO *cb, *sb;
	int done_c = 0, done_s = 0;

	memset(c, 0, sizeof(*c));
	c->cctx = SSL_CTX_new(TLS_client_method());
	if (client_cipher != NULL && c->cctx != NULL) {
		SSL_CTX_set_max_proto_version(c->cctx, TLS1_2_VERSION);
		SSL_CTX_set_security_level(c->cctx, 0);
		SSL_CTX_set_cipher_list(c->cctx, client_cipher);
		SSL_CTX_set_options(c->cctx, SSL_OP_NO_TICKET);
	}
	c->client = SSL_new(c->cctx);
	c->server = tls_store_new_ssl(s);
	if (client_session != NULL && c->client != NULL)
		SSL_set_session(c->client, client_session);
	if (c->client == NULL || c->server == NULL || !BIO_new_bio_pair(&cb, 0, &sb, 0))
		return false;
	SSL_set_bio(c->client, cb, cb);
	SSL_set_bio(c->server, sb, sb);
	if (name != NULL)
		SSL_set_tlsext_host_name(c->client, name);
	SSL_set_connect_state(c->client);
	SSL_set_accept_state(c->server);
	for (int i = 0; i < 20 && (done_c != 1 || done_s != 1); i++) {
		if (done_c != 1)
			done_c = SSL_do_handshake(c->client);
		if (done_s != 1)
			done_s = SSL_do_handshake(c->server);
		if ((done_c <= 0 && SSL_get_error(c->client, done_c) != SSL_ERROR_WANT_READ) ||
		    (done_s <= 0 && SSL_get_error(c->server, done_s) != SSL_ERROR_WANT_READ))
			break;
	}
	ERR_clear_error();
	return done_c == 1 && done_s == 1;
}

static void conn_free(struct conn *c)
{
	SSL_free(c->client);
	SSL_free(c->server);
	SSL_CTX_free(c->cctx);
}

/* Whether a handshake for `name` gets certificate `want`. */
static bool serves(struct tls_store *s, const char *name, X509 *want)
{
	struct conn c;
	bool ok = false;

	if (handshake(s, name, &c)) {
		X509 *got = SSL_get1_peer_certificate(c.client);
		ok = got != NULL && X509_cmp(got, want) == 0;
		X509_free(got);
	}
	conn_free(&c);
	return ok;
}

static int suite_init(void)
{
	int fd;
	FILE *f;

	ec_key = EVP_EC_gen("P-256");
	ec_key2 = EVP_EC_gen("P-256");
	rsa_key = EVP_RSA_gen(2048);
	if (ec_key == NULL || ec_key2 == NULL || rsa_key == NULL)
		return 1;
	def_cert = test_make_cert(rsa_key, NULL, "test", "DNS:default.test", -60, 86400);
	if (def_cert == NULL || (fd = mkstemp(def_path)) < 0 || (f = fdopen(fd, "w")) == NULL)
		return 1;
	/* The default: one file holding the chain and its key. */
	PEM_write_X509(f, def_cert);
	PEM_write_PrivateKey(f, rsa_key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return 0;
}

static int suite_clean(void)
{
	unlink(def_path);
	X509_free(def_cert);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec_key2);
	EVP_PKEY_free(rsa_key);
	return 0;
}

static struct tls_store *store_new(struct zkr_config *cfg, bool strict)
{
	char why[512];
	struct tls_store *s;

	CU_ASSERT_FATAL(config_init(cfg));
	cfg->tls_cert = calloc(2, sizeof(char *));
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->tls_cert);
	cfg->tls_cert[0] = strdup(def_path);
	cfg->n_tls_cert = 1;
	cfg->tls_strict_sni = strict;
	s = tls_store_new(NULL, cfg, why, sizeof(why));
	if (s == NULL)
		fprintf(stderr, "tls_store_new: %s\n", why);
	return s;
}

static void test_records(void)
{
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, false);
	X509 *a, *a2, *w, *bad;
	bool ok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(tls_store_count(s), 1);
	CU_ASSERT_TRUE(serves(s, NULL, def_cert));
	CU_ASSERT_TRUE(serves(s, "a.test", def_cert));

	a = add(s, "/certs/a", ec_key, ec_key, "DNS:a.test", -60, 86400, &ok);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(tls_store_count(s), 2);
	CU_ASSERT_TRUE(serves(s, "a.test", a));
	CU_ASSERT_TRUE(serves(s, "A.TEST", a));
	CU_ASSERT_TRUE(serves(s, "b.test", def_cert));

	/* Refused: key of another certificate, expired, not yet valid, garbage. */
	bad = add(s, "/certs/a", ec_key2, ec_key, "DNS:a.test", -60, 86400, &ok);
	CU_ASSERT_FALSE(ok);
	X509_free(bad);
	bad = add(s, "/certs/old", ec_key, ec_key, "DNS:old.test", -7200, -3600, &ok);
	CU_ASSERT_FALSE(ok);
	X509_free(bad);
	bad = add(s, "/certs/new", ec_key, ec_key, "DNS:new.test", 3600, 7200, &ok);
	CU_ASSERT_FALSE(ok);
	X509_free(bad);
	CU_ASSERT_FALSE(tls_store_add_record(s, "/certs/junk", "junk", 4, NULL, 0));
	CU_ASSERT_EQUAL(tls_store_count(s), 2);
	CU_ASSERT_TRUE(serves(s, "a.test", a));

	/* Replaced under the same path. */
	a2 = add(s, "/certs/a", ec_key2, ec_key2, "DNS:a.test", -60, 2 * 86400, &ok);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(tls_store_count(s), 2);
	CU_ASSERT_TRUE(serves(s, "a.test", a2));

	/* A one-label wildcard. */
	w = add(s, "/certs/w", ec_key, ec_key, "DNS:*.w.test", -60, 86400, &ok);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_TRUE(serves(s, "x.w.test", w));
	CU_ASSERT_TRUE(serves(s, "x.y.w.test", def_cert));
	CU_ASSERT_TRUE(serves(s, "w.test", def_cert));

	/* Removed: the default again; unknown paths are ignored. */
	tls_store_remove_record(s, "/certs/a");
	tls_store_remove_record(s, "/certs/nothing");
	CU_ASSERT_EQUAL(tls_store_count(s), 2);
	CU_ASSERT_TRUE(serves(s, "a.test", def_cert));
	X509_free(a);
	X509_free(a2);
	X509_free(w);
	tls_store_free(s);
	config_free(&cfg);
}

/* An established connection keeps its certificate and works after its record goes. */
static void test_established_survives(void)
{
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, false);
	struct conn c;
	X509 *a, *got;
	bool ok;
	char buf[8];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	a = add(s, "/certs/a", ec_key, ec_key, "DNS:a.test", -60, 86400, &ok);
	CU_ASSERT_TRUE_FATAL(ok);
	CU_ASSERT_TRUE_FATAL(handshake(s, "a.test", &c));
	tls_store_remove_record(s, "/certs/a");
	CU_ASSERT_TRUE(serves(s, "a.test", def_cert));
	CU_ASSERT_EQUAL(SSL_write(c.client, "ping", 4), 4);
	CU_ASSERT_EQUAL(SSL_read(c.server, buf, sizeof(buf)), 4);
	CU_ASSERT_EQUAL(SSL_write(c.server, "pong", 4), 4);
	CU_ASSERT_EQUAL(SSL_read(c.client, buf, sizeof(buf)), 4);
	CU_ASSERT_EQUAL(memcmp(buf, "pong", 4), 0);
	got = SSL_get1_peer_certificate(c.client);
	CU_ASSERT(got != NULL && X509_cmp(got, a) == 0);
	X509_free(got);
	conn_free(&c);
	/* An established connection outlives the store (its contexts are counted). */
	CU_ASSERT_TRUE_FATAL(handshake(s, NULL, &c));
	tls_store_free(s);
	CU_ASSERT_EQUAL(SSL_write(c.client, "ping", 4), 4);
	CU_ASSERT_EQUAL(SSL_read(c.server, buf, sizeof(buf)), 4);
	conn_free(&c);
	X509_free(a);
	config_free(&cfg);
}

/* A thousand records, each found by its name. */
static void test_many(void)
{
	enum { N = 1000 };
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, false);
	X509 *probe[3] = { NULL, NULL, NULL };
	const int at[3] = { 0, 517, N - 1 };
	bool ok, all = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int i = 0; i < N; i++) {
		char path[64], san[64];
		X509 *x;
		snprintf(path, sizeof(path), "/certs/n%d", i);
		snprintf(san, sizeof(san), "DNS:n%d.test,DNS:*.n%d.test", i, i);
		x = add(s, path, ec_key, ec_key, san, -60, 86400, &ok);
		all = all && ok;
		for (int k = 0; k < 3; k++)
			if (i == at[k])
				probe[k] = x;
		if (i != at[0] && i != at[1] && i != at[2])
			X509_free(x);
	}
	CU_ASSERT_TRUE(all);
	CU_ASSERT_EQUAL(tls_store_count(s), N + 1);
	for (int k = 0; k < 3; k++) {
		char name[64];
		snprintf(name, sizeof(name), "n%d.test", at[k]);
		CU_ASSERT_TRUE(serves(s, name, probe[k]));
		snprintf(name, sizeof(name), "www.n%d.test", at[k]);
		CU_ASSERT_TRUE(serves(s, name, probe[k]));
		X509_free(probe[k]);
	}
	CU_ASSERT_TRUE(serves(s, "n1000.test", def_cert));
	tls_store_free(s);
	config_free(&cfg);
}

static void test_strict_sni(void)
{
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, true);
	struct conn c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_FALSE(handshake(s, "unknown.test", &c));
	conn_free(&c);
	CU_ASSERT_TRUE(serves(s, "default.test", def_cert));
	CU_ASSERT_TRUE(serves(s, NULL, def_cert));
	/* Reloaded off: the default answers again. */
	cfg.tls_strict_sni = false;
	CU_ASSERT_TRUE(tls_store_reload(s, &cfg));
	CU_ASSERT_TRUE(serves(s, "unknown.test", def_cert));
	tls_store_free(s);
	config_free(&cfg);
}

static void test_alpn(void)
{
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, false);
	struct conn c;
	static const unsigned char offer[] = "\x02h2\x08http/1.1";

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE_FATAL(handshake(s, NULL, &c));
	CU_ASSERT_EQUAL(tls_conn_protocol(c.server), TLS_PROTO_NONE);
	conn_free(&c);
	memset(&c, 0, sizeof(c));
	{
		/* Offered h2 and http/1.1: we choose h2, our first. */
		SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
		SSL *cl = SSL_new(cctx), *sv = tls_store_new_ssl(s);
		BIO *cb, *sb;
		int rc = 0, rs = 0;
		CU_ASSERT_FATAL(cl != NULL && sv != NULL && BIO_new_bio_pair(&cb, 0, &sb, 0));
		SSL_set_alpn_protos(cl, offer, sizeof(offer) - 1);
		SSL_set_bio(cl, cb, cb);
		SSL_set_bio(sv, sb, sb);
		SSL_set_connect_state(cl);
		SSL_set_accept_state(sv);
		for (int i = 0; i < 20 && (rc != 1 || rs != 1); i++) {
			if (rc != 1)
				rc = SSL_do_handshake(cl);
			if (rs != 1)
				rs = SSL_do_handshake(sv);
		}
		CU_ASSERT_EQUAL(rc, 1);
		CU_ASSERT_EQUAL(tls_conn_protocol(sv), TLS_PROTO_H2);
		SSL_free(cl);
		SSL_free(sv);
		SSL_CTX_free(cctx);
	}
	tls_store_free(s);
	config_free(&cfg);
}

/* The policy holds on the certificate a connection switched to, and a
 * reloaded one applies to the contexts of certificates already loaded. */
static void test_policy(void)
{
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, false);
	struct conn c;
	bool ok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	client_cipher = "AES128-SHA";
	CU_ASSERT_FALSE(handshake(s, "default.test", &c));
	conn_free(&c);
	client_cipher = "ECDHE-RSA-AES128-GCM-SHA256";
	CU_ASSERT_TRUE(handshake(s, "default.test", &c));
	CU_ASSERT_STRING_EQUAL(SSL_get_cipher_name(c.server), "ECDHE-RSA-AES128-GCM-SHA256");
	conn_free(&c);
	/* Reloaded with a CBC suite allowed: it is accepted now. */
	free(cfg.tls_ciphers);
	cfg.tls_ciphers = strdup("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA");
	CU_ASSERT_TRUE(tls_store_reload(s, &cfg));
	client_cipher = "AES128-SHA";
	ok = handshake(s, "default.test", &c);
	CU_ASSERT_TRUE(ok);
	if (ok)
		CU_ASSERT_STRING_EQUAL(SSL_get_cipher_name(c.server), "AES128-SHA");
	conn_free(&c);
	/* A minimum of TLS 1.3 refuses a TLS 1.2 client. */
	free(cfg.tls_min_version);
	cfg.tls_min_version = strdup("1.3");
	CU_ASSERT_TRUE(tls_store_reload(s, &cfg));
	CU_ASSERT_FALSE(handshake(s, "default.test", &c));
	conn_free(&c);
	client_cipher = NULL;
	CU_ASSERT_TRUE(handshake(s, "default.test", &c));
	CU_ASSERT_EQUAL(SSL_version(c.server), TLS1_3_VERSION);
	conn_free(&c);
	tls_store_free(s);
	config_free(&cfg);
}

/* TLS 1.2 session IDs resume through the base context's cache, whichever
 * certificate's context the connection switched to. */
static void test_session_id_resumes(void)
{
	struct zkr_config cfg;
	struct tls_store *s = store_new(&cfg, false);
	struct conn c;
	X509 *a;
	bool ok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	a = add(s, "/certs/a", rsa_key, rsa_key, "DNS:a.test", -60, 86400, &ok);
	CU_ASSERT_TRUE_FATAL(ok);
	client_cipher = "ECDHE-RSA-AES128-GCM-SHA256";
	CU_ASSERT_TRUE_FATAL(handshake(s, "a.test", &c));
	CU_ASSERT_FALSE(SSL_session_reused(c.server));
	/* Both ends close properly, so the session stays in the cache. */
	SSL_shutdown(c.server);
	SSL_shutdown(c.client);
	SSL_shutdown(c.server);
	client_session = SSL_get1_session(c.client);
	CU_ASSERT_PTR_NOT_NULL_FATAL(client_session);
	CU_ASSERT(SSL_SESSION_get_id(client_session, NULL) != NULL);
	conn_free(&c);
	CU_ASSERT_TRUE(handshake(s, "a.test", &c));
	CU_ASSERT_TRUE(SSL_session_reused(c.server));
	CU_ASSERT_TRUE(SSL_session_reused(c.client));
	conn_free(&c);
	SSL_SESSION_free(client_session);
	client_session = NULL;
	client_cipher = NULL;
	X509_free(a);
	tls_store_free(s);
	config_free(&cfg);
}

/* Records only (an empty tls-cert-dir): no default, so a client without
 * SNI or with an unknown name is refused, a known name is served. */
static void test_records_only(void)
{
	struct zkr_config cfg;
	char dir[] = "/tmp/zkr-test-tls-dir-XXXXXX", why[512];
	struct tls_store *s;
	struct conn c;
	X509 *a;
	bool ok;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	CU_ASSERT_FATAL(config_init(&cfg));
	cfg.tls_cert_dir = strdup(dir);
	s = tls_store_new(NULL, &cfg, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(tls_store_count(s), 0);
	CU_ASSERT_FALSE(handshake(s, NULL, &c));
	conn_free(&c);
	a = add(s, "/certs/a", ec_key, ec_key, "DNS:a.test", -60, 86400, &ok);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_TRUE(serves(s, "a.test", a));
	CU_ASSERT_FALSE(handshake(s, "b.test", &c));
	conn_free(&c);
	X509_free(a);
	tls_store_free(s);
	config_free(&cfg);
	rmdir(dir);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("tls store", suite_init, suite_clean);
	UNIT_TEST(s, test_records);
	UNIT_TEST(s, test_established_survives);
	UNIT_TEST(s, test_many);
	UNIT_TEST(s, test_strict_sni);
	UNIT_TEST(s, test_alpn);
	UNIT_TEST(s, test_policy);
	UNIT_TEST(s, test_session_id_resumes);
	UNIT_TEST(s, test_records_only);
}
