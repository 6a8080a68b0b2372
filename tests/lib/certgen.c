/* tests/lib/certgen.h: certificates and keys made in memory. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tests/lib/certgen.h"

X509 *test_make_cert(EVP_PKEY *key, EVP_PKEY *signer, const char *cn, const char *san,
		     long from_s, long to_s)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n;

	if (x == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (san != NULL) {
		X509V3_CTX ctx;
		X509_EXTENSION *ext;

		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		if (ext == NULL || !X509_add_ext(x, ext, -1)) {
			X509_EXTENSION_free(ext);
			X509_free(x);
			return NULL;
		}
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, signer != NULL ? signer : key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static struct test_pem bio_take(BIO *b)
{
	struct test_pem p = { NULL, 0 };
	char *data;
	long n;

	if (b == NULL)
		return p;
	n = BIO_get_mem_data(b, &data);
	if (n > 0 && (p.s = malloc((size_t)n + 1)) != NULL) {
		memcpy(p.s, data, (size_t)n);
		p.s[n] = '\0';
		p.len = (size_t)n;
	}
	BIO_free(b);
	return p;
}

struct test_pem test_cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b != NULL)
		PEM_write_bio_X509(b, x);
	return bio_take(b);
}

struct test_pem test_key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b != NULL)
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	return bio_take(b);
}

void test_pem_free(struct test_pem *p)
{
	free(p->s);
	p->s = NULL;
	p->len = 0;
}
