/*
 * Certificates and keys made in memory for the TLS suites, so that no key
 * is committed for them: a self-signed (or CA-signed) X509 with the SAN
 * given, and PEM text of a certificate or a key.
 */
#ifndef ZKR_TEST_CERTGEN_H
#define ZKR_TEST_CERTGEN_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct test_pem {
	char *s;                   /* NUL-terminated; NULL when out of memory */
	size_t len;
};

/*
 * A certificate for `key` signed by `signer` (`key` itself when NULL),
 * valid from now+from_s to now+to_s, with subject CN `cn` and the SAN in
 * OpenSSL's config syntax ("DNS:a.test,DNS:*.b.test"; NULL: none). Each
 * gets its own serial number. NULL on failure.
 */
X509 *test_make_cert(EVP_PKEY *key, EVP_PKEY *signer, const char *cn, const char *san,
		     long from_s, long to_s);
struct test_pem test_cert_pem(X509 *x);
struct test_pem test_key_pem(EVP_PKEY *k);
void test_pem_free(struct test_pem *p);

#endif
