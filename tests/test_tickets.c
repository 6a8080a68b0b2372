/*
 * Session-ticket suite: real TLS handshakes in memory (OpenSSL BIO pairs)
 * between a client and servers whose contexts use node/tls-tickets.c.
 * Two servers holding the same keys resume each other's tickets, others
 * do not; an older key still decrypts and the ticket is renewed; a key
 * pushed out of the ring no longer does; a ring swapped by another thread
 * while handshakes run never fails one. Then the checks on the
 * TicketKeys record read from ZooKeeper (registry/ticketkeys.c).
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "node/tls-tickets.h"
#include "registry/ticketkeys.h"
#include "tests/lib/unit.h"
#include "zkrouter.pb-c.h"

static EVP_PKEY *pkey;
static X509 *cert;

static int suite_init(void)
{
	X509_NAME *name;

	pkey = EVP_EC_gen("P-256");
	cert = X509_new();
	if (pkey == NULL || cert == NULL)
		return -1;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, pkey);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"app.test", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	return X509_sign(cert, pkey, EVP_sha256()) > 0 ? 0 : -1;
}

static int suite_clean(void)
{
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return 0;
}

/* A server context as the router makes one, tickets from `t`, and no
 * session cache, so that only a ticket can resume. */
static SSL_CTX *server_ctx(struct tls_tickets *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	CU_ASSERT_FATAL(ctx != NULL);
	CU_ASSERT_FATAL(SSL_CTX_use_certificate(ctx, cert) == 1);
	CU_ASSERT_FATAL(SSL_CTX_use_PrivateKey(ctx, pkey) == 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	CU_ASSERT_FATAL(tls_tickets_attach(t, ctx));
	return ctx;
}

static SSL_CTX *client_ctx(int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	CU_ASSERT_FATAL(ctx != NULL);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	return ctx;
}

/*
 * One connection: a handshake offering `offer` (or none), one byte from
 * the server (a TLS 1.3 ticket comes after the handshake). Returns the
 * client's session afterwards (the caller frees it), *reused whether the
 * offered one resumed.
 */
static SSL_SESSION *connect_once(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, bool *reused)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *sb, *cb;
	bool sdone = false, cdone = false;
	unsigned char byte;
	SSL_SESSION *got;

	CU_ASSERT_FATAL(s != NULL && c != NULL);
	CU_ASSERT_FATAL(BIO_new_bio_pair(&sb, 0, &cb, 0) == 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (offer != NULL)
		CU_ASSERT_FATAL(SSL_set_session(c, offer) == 1);
	for (int i = 0; i < 100 && !(sdone && cdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(c) == 1;
		if (!sdone)
			sdone = SSL_do_handshake(s) == 1;
	}
	CU_ASSERT_FATAL(sdone && cdone);
	CU_ASSERT_FATAL(SSL_write(s, "x", 1) == 1);
	CU_ASSERT_FATAL(SSL_read(c, &byte, 1) == 1);
	*reused = SSL_session_reused(c) == 1;
	/* Closed without close_notify, OpenSSL would mark the session not
	 * resumable. */
	SSL_shutdown(c);
	SSL_shutdown(s);
	got = SSL_get1_session(c);
	SSL_free(c);
	SSL_free(s);
	return got;
}

static void make_keys(struct zkr_ticket_key *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_FATAL(zkr_ticket_key_generate(&k[i]));
}

static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

static void test_same_keys_resume(void)
{
	for (size_t v = 0; v < 2; v++) {
		struct zkr_ticket_key k[1];
		struct tls_tickets *ta = tls_tickets_new(), *tb = tls_tickets_new();
		struct tls_tickets_stats st;
		bool reused;

		make_keys(k, 1);
		CU_ASSERT_FATAL(ta != NULL && tb != NULL);
		CU_ASSERT_TRUE(tls_tickets_set(ta, k, 1));
		CU_ASSERT_TRUE(tls_tickets_set(tb, k, 1));
		SSL_CTX *a = server_ctx(ta), *b = server_ctx(tb), *c = client_ctx(versions[v]);
		SSL_SESSION *sess = connect_once(a, c, NULL, &reused);
		CU_ASSERT_FALSE(reused);
		CU_ASSERT_TRUE_FATAL(sess != NULL && SSL_SESSION_has_ticket(sess));
		SSL_SESSION *again = connect_once(b, c, sess, &reused);
		CU_ASSERT_TRUE(reused);
		tls_tickets_stats(ta, &st);
		CU_ASSERT_TRUE(st.issued >= 1);
		tls_tickets_stats(tb, &st);
		CU_ASSERT_EQUAL(st.resumed, 1);
		CU_ASSERT_EQUAL(st.renewed, 0);
		CU_ASSERT_EQUAL(st.failed, 0);
		SSL_SESSION_free(again);
		SSL_SESSION_free(sess);
		SSL_CTX_free(a);
		SSL_CTX_free(b);
		SSL_CTX_free(c);
		tls_tickets_free(ta);
		tls_tickets_free(tb);
	}
}

/* What the old code did: each server its own random keys. */
static void test_other_keys_full_handshake(void)
{
	for (size_t v = 0; v < 2; v++) {
		struct tls_tickets *ta = tls_tickets_new(), *tb = tls_tickets_new();
		struct tls_tickets_stats st;
		bool reused;

		CU_ASSERT_FATAL(ta != NULL && tb != NULL);
		SSL_CTX *a = server_ctx(ta), *b = server_ctx(tb), *c = client_ctx(versions[v]);
		SSL_SESSION *sess = connect_once(a, c, NULL, &reused);
		SSL_SESSION *again = connect_once(b, c, sess, &reused);
		CU_ASSERT_FALSE(reused);
		tls_tickets_stats(tb, &st);
		CU_ASSERT_EQUAL(st.resumed, 0);
		CU_ASSERT_EQUAL(st.failed, 1);
		SSL_SESSION_free(again);
		SSL_SESSION_free(sess);
		SSL_CTX_free(a);
		SSL_CTX_free(b);
		SSL_CTX_free(c);
		tls_tickets_free(ta);
		tls_tickets_free(tb);
	}
}

static void test_rotation(void)
{
	for (size_t v = 0; v < 2; v++) {
		struct zkr_ticket_key k[5], ring[3];
		struct tls_tickets *t = tls_tickets_new();
		struct tls_tickets_stats st;
		bool reused;

		make_keys(k, 5);
		CU_ASSERT_FATAL(t != NULL);
		CU_ASSERT_TRUE(tls_tickets_set(t, &k[0], 1));
		SSL_CTX *s = server_ctx(t), *c = client_ctx(versions[v]);
		SSL_SESSION *old = connect_once(s, c, NULL, &reused);

		/* Rotated once: [k1, k0]. The old ticket resumes and is renewed. */
		ring[0] = k[1];
		ring[1] = k[0];
		CU_ASSERT_TRUE(tls_tickets_set(t, ring, 2));
		SSL_SESSION *renewed = connect_once(s, c, old, &reused);
		CU_ASSERT_TRUE(reused);
		tls_tickets_stats(t, &st);
		CU_ASSERT_EQUAL(st.resumed, 1);
		CU_ASSERT_EQUAL(st.renewed, 1);

		/* The renewed ticket is under k1: it resumes as current. */
		SSL_SESSION *third = connect_once(s, c, renewed, &reused);
		CU_ASSERT_TRUE(reused);
		tls_tickets_stats(t, &st);
		CU_ASSERT_EQUAL(st.renewed, 1);

		/* Three more rotations push k0 out: [k4, k3, k2]. */
		ring[0] = k[4];
		ring[1] = k[3];
		ring[2] = k[2];
		CU_ASSERT_TRUE(tls_tickets_set(t, ring, 3));
		SSL_SESSION *gone = connect_once(s, c, old, &reused);
		CU_ASSERT_FALSE(reused);
		tls_tickets_stats(t, &st);
		CU_ASSERT_EQUAL(st.failed, 1);
		SSL_SESSION_free(gone);
		SSL_SESSION_free(third);
		SSL_SESSION_free(renewed);
		SSL_SESSION_free(old);
		SSL_CTX_free(s);
		SSL_CTX_free(c);
		tls_tickets_free(t);
	}
}

static void test_set_bounds(void)
{
	struct zkr_ticket_key k[ZKR_TICKET_KEYS_MAX + 1];
	struct tls_tickets *t = tls_tickets_new();
	struct tls_tickets_stats st;

	make_keys(k, ZKR_TICKET_KEYS_MAX + 1);
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_FALSE(tls_tickets_set(t, k, 0));
	CU_ASSERT_FALSE(tls_tickets_set(t, k, ZKR_TICKET_KEYS_MAX + 1));
	CU_ASSERT_TRUE(tls_tickets_set(t, k, ZKR_TICKET_KEYS_MAX));
	tls_tickets_stats(t, &st);
	CU_ASSERT_EQUAL(st.swaps, 1);
	tls_tickets_free(t);
}

/* Rings swapped by another thread all hold the ticket's key: every
 * handshake resumes, none sees a ring half made or already freed. */
struct swapper {
	struct tls_tickets *t;
	struct zkr_ticket_key keys[2][2];
	bool stop;                 /* atomic */
	unsigned swaps;
};

static void *swap_loop(void *arg)
{
	struct swapper *sw = arg;

	while (!__atomic_load_n(&sw->stop, __ATOMIC_RELAXED)) {
		if (!tls_tickets_set(sw->t, sw->keys[sw->swaps % 2], 2))
			break;
		sw->swaps++;
	}
	return NULL;
}

static void test_swap_under_handshakes(void)
{
	struct swapper sw = { 0 };
	struct zkr_ticket_key shared[3];
	pthread_t th;
	bool reused;
	unsigned resumed = 0;

	make_keys(shared, 3);
	sw.t = tls_tickets_new();
	CU_ASSERT_FATAL(sw.t != NULL);
	/* [a, s] and [b, s]: a ticket under s decrypts with either. */
	sw.keys[0][0] = shared[0];
	sw.keys[0][1] = shared[2];
	sw.keys[1][0] = shared[1];
	sw.keys[1][1] = shared[2];
	CU_ASSERT_TRUE(tls_tickets_set(sw.t, &shared[2], 1));
	SSL_CTX *s = server_ctx(sw.t), *c = client_ctx(TLS1_3_VERSION);
	SSL_SESSION *sess = connect_once(s, c, NULL, &reused);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, swap_loop, &sw) == 0);
	for (int i = 0; i < 40; i++) {
		SSL_SESSION *got = connect_once(s, c, sess, &reused);
		resumed += reused;
		SSL_SESSION_free(got);
	}
	__atomic_store_n(&sw.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(resumed, 40);
	CU_ASSERT_TRUE(sw.swaps > 0);
	SSL_SESSION_free(sess);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
	tls_tickets_free(sw.t);
}

/* ---- the record ------------------------------------------------------- */

/* Encodes n keys whose fields have the given lengths (0: absent). */
static uint8_t *record(size_t n, size_t name_len, size_t aes_len, size_t hmac_len, bool dup,
		       size_t *len)
{
	static uint8_t bytes[64];
	Zkrouter__TicketKeys r = ZKROUTER__TICKET_KEYS__INIT;
	Zkrouter__TicketKeys__Key k[8], *kp[8];
	uint8_t *buf;

	for (size_t i = 0; i < n; i++) {
		zkrouter__ticket_keys__key__init(&k[i]);
		memset(bytes, 0, sizeof(bytes));
		k[i].has_name = name_len > 0;
		k[i].name = (ProtobufCBinaryData){ name_len, malloc(name_len + 1) };
		memset(k[i].name.data, dup ? 7 : (int)i + 1, name_len);
		k[i].has_aes_key = aes_len > 0;
		k[i].aes_key = (ProtobufCBinaryData){ aes_len, bytes };
		k[i].has_hmac_key = hmac_len > 0;
		k[i].hmac_key = (ProtobufCBinaryData){ hmac_len, bytes };
		kp[i] = &k[i];
	}
	r.n_keys = n;
	r.keys = kp;
	r.has_rotated_at_ms = 1;
	r.rotated_at_ms = 1234;
	r.rotated_by = (char *)"r1";
	*len = zkrouter__ticket_keys__get_packed_size(&r);
	buf = malloc(*len + 1);
	zkrouter__ticket_keys__pack(&r, buf);
	for (size_t i = 0; i < n; i++)
		free(k[i].name.data);
	return buf;
}

static void test_decode(void)
{
	static const struct {
		size_t n, name, aes, hmac;
		bool dup, ok;
	} cases[] = {
		{ 1, 16, 32, 32, false, true },
		{ 3, 16, 32, 32, false, true },
		{ 0, 16, 32, 32, false, false },   /* no key */
		{ 4, 16, 32, 32, false, false },   /* too many */
		{ 2, 15, 32, 32, false, false },   /* short name */
		{ 1, 16, 16, 32, false, false },   /* AES-128 key */
		{ 1, 16, 32, 0, false, false },    /* no HMAC key */
		{ 2, 16, 32, 32, true, false },    /* two keys, one name */
	};
	struct zkr_ticket_key keys[ZKR_TICKET_KEYS_MAX];
	char by[16], why[160];
	uint64_t at;
	size_t n, len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *buf = record(cases[i].n, cases[i].name, cases[i].aes, cases[i].hmac, cases[i].dup,
				      &len);
		bool ok = zkr_ticketkeys_decode(buf, len, keys, &n, &at, by, sizeof(by), why, sizeof(why));
		if (ok != cases[i].ok)
			printf("case %zu: %s\n", i, ok ? "accepted" : why);
		CU_ASSERT_EQUAL(ok, cases[i].ok);
		if (ok) {
			CU_ASSERT_EQUAL(n, cases[i].n);
			CU_ASSERT_EQUAL(at, 1234);
			CU_ASSERT_STRING_EQUAL(by, "r1");
			CU_ASSERT_EQUAL(keys[n - 1].name[0], n);
		}
		free(buf);
	}
	CU_ASSERT_FALSE(zkr_ticketkeys_decode((const uint8_t *)"\xff\xff\xff", 3, keys, &n, &at, NULL, 0,
					      why, sizeof(why)));
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("tickets", suite_init, suite_clean);

	UNIT_TEST(s, test_same_keys_resume);
	UNIT_TEST(s, test_other_keys_full_handshake);
	UNIT_TEST(s, test_rotation);
	UNIT_TEST(s, test_set_bounds);
	UNIT_TEST(s, test_swap_under_handshakes);
	UNIT_TEST(s, test_decode);
}
