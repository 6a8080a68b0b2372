/*
 * The session-ticket key ring (see tls-tickets.h), through OpenSSL 3's
 * SSL_CTX_set_tlsext_ticket_key_evp_cb: we choose the key by the name a
 * ticket carries and hand OpenSSL the cipher and MAC contexts; OpenSSL
 * does the ticket format, the encryption and the integrity check.
 *
 * The callback receives the SSL, not our ring: each context we attach
 * to holds the ring in its ex_data. A handshake whose SNI callback
 * switched to another context still calls the callback of the context
 * it began on, but SSL_get_SSL_CTX then names the new one; if that one
 * was never attached, the process's first ring answers (there is one ring
 * per process, shared by every listener and loop).
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "node/tls-tickets.h"
#include "registry/log.h"

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "session tickets need OpenSSL 3 (SSL_CTX_set_tlsext_ticket_key_evp_cb)"
#endif

struct ring {
	unsigned refs;             /* atomic: the owner's one plus one per callback running */
	size_t n;
	struct zkr_ticket_key keys[ZKR_TICKET_KEYS_MAX];
};

struct tls_tickets {
	pthread_mutex_t mu;        /* guards `ring` (the pointer, not what it points to) */
	struct ring *ring;
	uint64_t issued, resumed, renewed, failed, swaps;   /* atomic */
};

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static struct tls_tickets *first_tickets;   /* atomic; see the top of the file */

static void ex_index_init(void)
{
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static void ring_put(struct ring *r)
{
	if (r != NULL && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		OPENSSL_cleanse(r, sizeof(*r));
		free(r);
	}
}

static struct ring *ring_get(struct tls_tickets *t)
{
	struct ring *r;

	pthread_mutex_lock(&t->mu);
	r = t->ring;
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->mu);
	return r;
}

static struct ring *ring_new(const struct zkr_ticket_key *keys, size_t n)
{
	struct ring *r;

	if (n < 1 || n > ZKR_TICKET_KEYS_MAX || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->refs = 1;
	r->n = n;
	memcpy(r->keys, keys, n * sizeof(keys[0]));
	return r;
}

/* Sets the cipher and the MAC to one key; the IV is the caller's. */
static bool key_init(const struct zkr_ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac_key,
						      sizeof(k->hmac_key));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return false;
	if (enc)
		return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes_key, iv) == 1;
	return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes_key, iv) == 1;
}

/*
 * OpenSSL's contract: issuing (enc = 1) returns 1 with the name, IV and
 * contexts filled, 0 to send no ticket; accepting returns 0 when no key
 * has that name (a full handshake follows), 1 when the current key
 * decrypts, 2 when an older one does (the client gets a new ticket), and
 * -1 would abort the handshake, which a ticket never deserves.
 */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
	struct tls_tickets *t = ctx != NULL ? SSL_CTX_get_ex_data(ctx, ex_index) : NULL;
	struct ring *r;
	int ret = 0;

	if (t == NULL)
		t = __atomic_load_n(&first_tickets, __ATOMIC_ACQUIRE);
	if (t == NULL)
		return 0;
	r = ring_get(t);
	if (enc) {
		const struct zkr_ticket_key *k = &r->keys[0];
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 &&
		    key_init(k, iv, cctx, hctx, 1)) {
			memcpy(key_name, k->name, ZKR_TICKET_NAME_LEN);
			count(&t->issued);
			ret = 1;
		}
	} else {
		size_t i;
		for (i = 0; i < r->n; i++)
			if (memcmp(key_name, r->keys[i].name, ZKR_TICKET_NAME_LEN) == 0)
				break;
		if (i < r->n && key_init(&r->keys[i], iv, cctx, hctx, 0)) {
			count(&t->resumed);
			if (i > 0)
				count(&t->renewed);
			ret = i == 0 ? 1 : 2;
		} else {
			count(&t->failed);
		}
	}
	ring_put(r);
	return ret;
}

struct tls_tickets *tls_tickets_new(void)
{
	struct tls_tickets *t = calloc(1, sizeof(*t));
	struct zkr_ticket_key k;

	if (t == NULL)
		return NULL;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return NULL;
	}
	if (!zkr_ticket_key_generate(&k) || (t->ring = ring_new(&k, 1)) == NULL) {
		OPENSSL_cleanse(&k, sizeof(k));
		tls_tickets_free(t);
		return NULL;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return t;
}

bool tls_tickets_attach(struct tls_tickets *t, SSL_CTX *ctx)
{
	struct tls_tickets *none = NULL;

	if (pthread_once(&ex_once, ex_index_init) != 0 || ex_index < 0)
		return false;
	if (SSL_CTX_set_ex_data(ctx, ex_index, t) != 1)
		return false;
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
		return false;
	__atomic_compare_exchange_n(&first_tickets, &none, t, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	return true;
}

bool tls_tickets_set(struct tls_tickets *t, const struct zkr_ticket_key *keys, size_t n)
{
	struct ring *r = ring_new(keys, n), *old;

	if (r == NULL) {
		if (n < 1 || n > ZKR_TICKET_KEYS_MAX)
			log_error("tls tickets: %zu keys offered, want 1 to %d; keeping the ring", n,
				  ZKR_TICKET_KEYS_MAX);
		else
			log_error("tls tickets: out of memory for %zu keys; keeping the ring", n);
		return false;
	}
	pthread_mutex_lock(&t->mu);
	old = t->ring;
	t->ring = r;
	pthread_mutex_unlock(&t->mu);
	ring_put(old);
	count(&t->swaps);
	return true;
}

void tls_tickets_stats(struct tls_tickets *t, struct tls_tickets_stats *out)
{
	out->issued = __atomic_load_n(&t->issued, __ATOMIC_RELAXED);
	out->resumed = __atomic_load_n(&t->resumed, __ATOMIC_RELAXED);
	out->renewed = __atomic_load_n(&t->renewed, __ATOMIC_RELAXED);
	out->failed = __atomic_load_n(&t->failed, __ATOMIC_RELAXED);
	out->swaps = __atomic_load_n(&t->swaps, __ATOMIC_RELAXED);
}

void tls_tickets_free(struct tls_tickets *t)
{
	struct tls_tickets *self = t;

	if (t == NULL)
		return;
	__atomic_compare_exchange_n(&first_tickets, &self, NULL, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	ring_put(t->ring);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
