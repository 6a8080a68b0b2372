/*
 * Certificate parser suite: chains and keys made here with the OpenSSL API
 * (no key is committed) are parsed, matched by name and checked for
 * validity; every refusal carries its own reason.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "registry/tlscert.h"
#include "tests/lib/certgen.h"
#include "tests/lib/unit.h"

static char why[256];

/* Generated once: an RSA key, two EC keys. */
static EVP_PKEY *rsa_key, *ec_key, *ec_key2;

/* Parses a certificate for `key` with `san`, valid [from, to] from now. */
static bool parse_made(EVP_PKEY *key, EVP_PKEY *given_key, const char *san, long from_s, long to_s,
		       struct zkr_cert *c)
{
	X509 *x = test_make_cert(key, NULL, "leaf.test", san, from_s, to_s);
	struct test_pem cp, kp;
	bool ok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	cp = test_cert_pem(x);
	kp = test_key_pem(given_key);
	why[0] = '\0';
	ok = zkr_cert_parse(cp.s, cp.len, kp.s, kp.len, c, why, sizeof(why));
	test_pem_free(&cp);
	test_pem_free(&kp);
	X509_free(x);
	return ok;
}

static int suite_init(void)
{
	rsa_key = EVP_RSA_gen(2048);
	ec_key = EVP_EC_gen("P-256");
	ec_key2 = EVP_EC_gen("P-256");
	return rsa_key != NULL && ec_key != NULL && ec_key2 != NULL ? 0 : 1;
}

static int suite_clean(void)
{
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec_key2);
	return 0;
}

static void test_parse_rsa(void)
{
	struct zkr_cert c;
	unsigned char zero[32] = { 0 };

	CU_ASSERT_TRUE_FATAL(parse_made(rsa_key, rsa_key, "DNS:App.Example.COM,DNS:*.Apps.Test,IP:10.0.0.1",
					-60, 86400, &c));
	CU_ASSERT_EQUAL(c.key_type, ZKR_KEY_RSA);
	CU_ASSERT_EQUAL_FATAL(c.n_names, 2);
	CU_ASSERT_STRING_EQUAL(c.names[0], "app.example.com");
	CU_ASSERT_STRING_EQUAL(c.names[1], "*.apps.test");
	CU_ASSERT_PTR_NOT_NULL(strstr(c.subject, "CN=leaf.test"));
	CU_ASSERT_PTR_NOT_NULL(strstr(c.issuer, "CN=leaf.test"));
	CU_ASSERT(c.not_after - c.not_before == 86400 + 60);
	CU_ASSERT(llabs((long long)(c.not_before - (time(NULL) - 60))) < 10);
	CU_ASSERT_NOT_EQUAL(memcmp(c.sha256, zero, sizeof(zero)), 0);
	CU_ASSERT_PTR_NOT_NULL(c.leaf);
	CU_ASSERT_PTR_NOT_NULL(c.key);
	CU_ASSERT_EQUAL(sk_X509_num(c.chain), 0);
	CU_ASSERT_TRUE(zkr_cert_usable(&c, time(NULL), why, sizeof(why)));
	{
		struct zkr_cert d;
		CU_ASSERT_TRUE_FATAL(zkr_cert_copy(&d, &c));
		zkr_cert_free(&c);
		CU_ASSERT_EQUAL_FATAL(d.n_names, 2);
		CU_ASSERT_STRING_EQUAL(d.names[1], "*.apps.test");
		CU_ASSERT_EQUAL(X509_check_private_key(d.leaf, d.key), 1);
		CU_ASSERT_TRUE(zkr_cert_matches(&d, "x.apps.test", NULL));
		zkr_cert_free(&d);
	}
}

static void test_parse_ecdsa_one_file(void)
{
	X509 *ca_leaf = test_make_cert(ec_key, NULL, "leaf.test", "DNS:one.test", -60, 3600);
	X509 *inter = test_make_cert(ec_key2, NULL, "inter.test", "DNS:inter.test", -60, 3600);
	struct test_pem a = test_cert_pem(ca_leaf), b = test_cert_pem(inter), k = test_key_pem(ec_key);
	size_t len = a.len + b.len + k.len;
	char *all = malloc(len + 1);
	struct zkr_cert c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	/* Leaf, intermediate, then the key: one file as in a --tls-cert-dir. */
	memcpy(all, a.s, a.len);
	memcpy(all + a.len, b.s, b.len);
	memcpy(all + a.len + b.len, k.s, k.len);
	CU_ASSERT_TRUE(zkr_cert_parse(all, len, NULL, 0, &c, why, sizeof(why)));
	CU_ASSERT_EQUAL(c.key_type, ZKR_KEY_ECDSA);
	CU_ASSERT_EQUAL(sk_X509_num(c.chain), 1);
	CU_ASSERT_EQUAL_FATAL(c.n_names, 1);
	CU_ASSERT_STRING_EQUAL(c.names[0], "one.test");
	zkr_cert_free(&c);

	/* The key first, then the chain: the same. */
	memcpy(all, k.s, k.len);
	memcpy(all + k.len, a.s, a.len);
	memcpy(all + k.len + a.len, b.s, b.len);
	CU_ASSERT_TRUE(zkr_cert_parse(all, len, NULL, 0, &c, why, sizeof(why)));
	CU_ASSERT_EQUAL(sk_X509_num(c.chain), 1);
	zkr_cert_free(&c);

	/* No key anywhere. */
	CU_ASSERT_FALSE(zkr_cert_parse(a.s, a.len, NULL, 0, &c, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no private key"));
	free(all);
	test_pem_free(&a);
	test_pem_free(&b);
	test_pem_free(&k);
	X509_free(ca_leaf);
	X509_free(inter);
}

static void test_refusals(void)
{
	struct zkr_cert c;
	struct test_pem k = test_key_pem(rsa_key);
	const char garbage[] = "not a certificate\n";
	const char broken[] = "-----BEGIN CERTIFICATE-----\nMIIBzzCCAXWgAwIB\n-----END CERTIFICATE-----\n";

	CU_ASSERT_FALSE(parse_made(rsa_key, ec_key, "DNS:a.test", -60, 3600, &c));
	CU_ASSERT_STRING_EQUAL(why, "key does not match the certificate");
	CU_ASSERT_FALSE(parse_made(rsa_key, rsa_key, "IP:10.0.0.1", -60, 3600, &c));
	CU_ASSERT_STRING_EQUAL(why, "no DNS name in subjectAltName");
	/* No SAN at all: the CN is not used. */
	CU_ASSERT_FALSE(parse_made(rsa_key, rsa_key, NULL, -60, 3600, &c));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no DNS name in subjectAltName"));
	CU_ASSERT_FALSE(zkr_cert_parse(garbage, sizeof(garbage) - 1, k.s, k.len, &c, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no certificate in"));
	CU_ASSERT_FALSE(zkr_cert_parse(broken, sizeof(broken) - 1, k.s, k.len, &c, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not parse"));
	CU_ASSERT_FALSE(zkr_cert_parse(NULL, 0, k.s, k.len, &c, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no certificate in"));
	/* The key file holds garbage. */
	{
		X509 *x = test_make_cert(rsa_key, NULL, "x", "DNS:x.test", -60, 3600);
		struct test_pem cp = test_cert_pem(x);
		CU_ASSERT_FALSE(zkr_cert_parse(cp.s, cp.len, garbage, sizeof(garbage) - 1, &c, why, sizeof(why)));
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "no private key in the key"));
		static const char badkey[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
		CU_ASSERT_FALSE(zkr_cert_parse(cp.s, cp.len, badkey, sizeof(badkey) - 1, &c, why, sizeof(why)));
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "private key does not parse"));
		test_pem_free(&cp);
		X509_free(x);
	}
	test_pem_free(&k);
}

static void test_validity(void)
{
	struct zkr_cert c;
	time_t now = time(NULL);

	CU_ASSERT_TRUE_FATAL(parse_made(ec_key, ec_key, "DNS:old.test", -7200, -3600, &c));
	CU_ASSERT_FALSE(zkr_cert_usable(&c, now, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "expired on "));
	CU_ASSERT_TRUE(zkr_cert_usable(&c, now - 5400, why, sizeof(why)));
	zkr_cert_free(&c);
	CU_ASSERT_TRUE_FATAL(parse_made(ec_key, ec_key, "DNS:new.test", 3600, 7200, &c));
	CU_ASSERT_FALSE(zkr_cert_usable(&c, now, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not valid before "));
	zkr_cert_free(&c);
}

static void test_matches(void)
{
	struct zkr_cert c;
	bool wild = true;

	CU_ASSERT_TRUE_FATAL(parse_made(ec_key, ec_key, "DNS:example.com,DNS:*.example.com,DNS:*.b.test",
					-60, 3600, &c));
	static const struct {
		const char *name;
		bool match, wild;
	} cases[] = {
		{ "example.com", true, false },
		{ "a.example.com", true, true },
		{ "www.example.com", true, true },
		{ "a.b.example.com", false, false },
		{ ".example.com", false, false },
		{ "example.org", false, false },
		{ "com", false, false },
		{ "x.b.test", true, true },
		{ "b.test", false, false },
		{ "", false, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wild = !cases[i].wild;
		CU_ASSERT_EQUAL(zkr_cert_matches(&c, cases[i].name, &wild), cases[i].match);
		CU_ASSERT_EQUAL(wild, cases[i].wild);
	}
	CU_ASSERT_TRUE(zkr_cert_matches(&c, "a.example.com", NULL));
	zkr_cert_free(&c);
	/* Freeing twice (after a failed parse, too) is harmless. */
	zkr_cert_free(&c);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("tlscert", suite_init, suite_clean);
	UNIT_TEST(s, test_parse_rsa);
	UNIT_TEST(s, test_parse_ecdsa_one_file);
	UNIT_TEST(s, test_refusals);
	UNIT_TEST(s, test_validity);
	UNIT_TEST(s, test_matches);
}
