/*
 * PEM certificate chains and keys, parsed and checked once for every
 * source (files, directories, /certs records, zkrouterctl cert add), so
 * that a router and the operator's tool agree on what is servable.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "registry/log.h"
#include "registry/tlscert.h"

/* OpenSSL's last queued error as text (and the queue emptied), or `dflt`. */
static const char *ssl_reason(char *buf, size_t len, const char *dflt)
{
	unsigned long e = ERR_peek_last_error();

	ERR_clear_error();
	if (e == 0)
		return dflt;
	ERR_error_string_n(e, buf, len);
	return buf;
}

/* Converts an ASN1_TIME (UTCTime or GeneralizedTime) to seconds since the epoch. */
static bool asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = timegm(&tm);
	return true;
}

/* Copies a SAN into out->names, lower-cased; false on an allocation failure. */
static bool add_name(struct zkr_cert *out, const unsigned char *s, int len)
{
	char *name;

	/* A name with a NUL inside could pass as a shorter one: refuse it. */
	if (len <= 0 || memchr(s, '\0', (size_t)len) != NULL)
		return true;
	if (out->n_names >= ZKR_CERT_NAMES_MAX) {
		log_warn("certificate %s: more than %d DNS names, ignoring \"%.*s\" and the rest",
			 out->subject, ZKR_CERT_NAMES_MAX, len, (const char *)s);
		return true;
	}
	if ((name = malloc((size_t)len + 1)) == NULL)
		return false;
	for (int i = 0; i < len; i++)
		name[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : (char)s[i];
	/* A trailing dot is the same name for SNI purposes, which sends none. */
	if (len > 1 && name[len - 1] == '.')
		len--;
	name[len] = '\0';
	out->names[out->n_names++] = name;
	return true;
}

static bool read_names(struct zkr_cert *out, char *why, size_t whylen)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(out->leaf, NID_subject_alt_name, NULL, NULL);
	bool ok = false;
	int n;

	if (sans == NULL) {
		zkr_set_why(why, whylen, "no DNS name in subjectAltName (the certificate has no subjectAltName)");
		return false;
	}
	n = sk_GENERAL_NAME_num(sans);
	out->names = calloc(n > 0 ? (size_t)n : 1, sizeof(*out->names));
	if (out->names == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		goto done;
	}
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type != GEN_DNS)
			continue;
		if (!add_name(out, ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName))) {
			zkr_set_why(why, whylen, "out of memory");
			goto done;
		}
	}
	if (out->n_names == 0) {
		zkr_set_why(why, whylen, "no DNS name in subjectAltName");
		goto done;
	}
	ok = true;
done:
	GENERAL_NAMES_free(sans);
	return ok;
}

static enum zkr_key_type key_type(const EVP_PKEY *k)
{
	switch (EVP_PKEY_base_id(k)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		return ZKR_KEY_RSA;
	case EVP_PKEY_EC:
		return ZKR_KEY_ECDSA;
	default:
		return ZKR_KEY_OTHER;
	}
}

/*
 * Reads the first private key in `pem`. NULL when there is none (*broken
 * false) or when a key block is there but does not decode (*broken true):
 * OpenSSL 3's decoders report both alike, so the PEM label tells them apart.
 */
static EVP_PKEY *read_key(const char *pem, size_t len, bool *broken)
{
	static const char label[] = "PRIVATE KEY-----";
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = NULL;

	*broken = false;
	if (b == NULL)
		return NULL;
	/* PEM_read_bio_PrivateKey skips the certificates before the key. */
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (k == NULL) {
		*broken = memmem(pem, len, label, sizeof(label) - 1) != NULL;
		if (!*broken)
			ERR_clear_error();
	}
	BIO_free(b);
	return k;
}

bool zkr_cert_parse(const char *chain_pem, size_t chain_len, const char *key_pem, size_t key_len,
		    struct zkr_cert *out, char *why, size_t whylen)
{
	char ebuf[256];
	BIO *b = NULL;
	X509 *x;
	bool broken;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	ERR_clear_error();
	if (chain_pem == NULL || chain_len == 0 || chain_len > (size_t)0x7fffffff) {
		zkr_set_why(why, whylen, "no certificate in the chain (empty)");
		goto done;
	}
	if (key_pem != NULL && key_len > (size_t)0x7fffffff) {
		zkr_set_why(why, whylen, "private key too large");
		goto done;
	}
	if ((b = BIO_new_mem_buf(chain_pem, (int)chain_len)) == NULL ||
	    (out->chain = sk_X509_new_null()) == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		goto done;
	}
	out->leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (out->leaf == NULL) {
		unsigned long e = ERR_peek_last_error();
		if (e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
			zkr_set_why(why, whylen, "no certificate in the chain (no \"BEGIN CERTIFICATE\" block)");
		else
			zkr_set_why(why, whylen, "certificate does not parse: %s",
				ssl_reason(ebuf, sizeof(ebuf), "unknown error"));
		ERR_clear_error();
		goto done;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(out->chain, x)) {
			X509_free(x);
			zkr_set_why(why, whylen, "out of memory");
			goto done;
		}
	}
	/* The loop ends on "no start line" at the end; anything else is a broken intermediate. */
	{
		unsigned long e = ERR_peek_last_error();
		if (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
			zkr_set_why(why, whylen, "certificate %d of the chain does not parse: %s",
				sk_X509_num(out->chain) + 2, ssl_reason(ebuf, sizeof(ebuf), "unknown error"));
			goto done;
		}
		ERR_clear_error();
	}

	X509_NAME_oneline(X509_get_subject_name(out->leaf), out->subject, sizeof(out->subject));
	X509_NAME_oneline(X509_get_issuer_name(out->leaf), out->issuer, sizeof(out->issuer));

	if (key_pem != NULL)
		out->key = read_key(key_pem, key_len, &broken);
	else
		out->key = read_key(chain_pem, chain_len, &broken);
	if (out->key == NULL) {
		if (broken)
			zkr_set_why(why, whylen, "private key does not parse: %s",
				ssl_reason(ebuf, sizeof(ebuf), "unknown error"));
		else
			zkr_set_why(why, whylen, "no private key in %s",
				key_pem != NULL ? "the key" : "the chain (and no separate key given)");
		goto done;
	}
	if (X509_check_private_key(out->leaf, out->key) != 1) {
		ERR_clear_error();
		zkr_set_why(why, whylen, "key does not match the certificate");
		goto done;
	}
	out->key_type = key_type(out->key);

	if (!asn1_time(X509_get0_notBefore(out->leaf), &out->not_before) ||
	    !asn1_time(X509_get0_notAfter(out->leaf), &out->not_after)) {
		ERR_clear_error();
		zkr_set_why(why, whylen, "certificate validity dates do not parse");
		goto done;
	}
	if (!read_names(out, why, whylen))
		goto done;
	{
		unsigned int mdlen = 0;
		if (X509_digest(out->leaf, EVP_sha256(), out->sha256, &mdlen) != 1 || mdlen != 32) {
			zkr_set_why(why, whylen, "cannot hash the certificate: %s",
				ssl_reason(ebuf, sizeof(ebuf), "unknown error"));
			goto done;
		}
	}
	ok = true;
done:
	BIO_free(b);
	if (!ok)
		zkr_cert_free(out);
	return ok;
}

bool zkr_cert_usable(const struct zkr_cert *c, time_t now, char *why, size_t whylen)
{
	char when[32];
	struct tm tm;

	if (now < c->not_before) {
		gmtime_r(&c->not_before, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		zkr_set_why(why, whylen, "not valid before %s", when);
		return false;
	}
	if (now > c->not_after) {
		gmtime_r(&c->not_after, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		zkr_set_why(why, whylen, "expired on %s", when);
		return false;
	}
	return true;
}

bool zkr_cert_matches(const struct zkr_cert *c, const char *name, bool *wildcard)
{
	const char *dot = strchr(name, '.');

	if (wildcard != NULL)
		*wildcard = false;
	for (size_t i = 0; i < c->n_names; i++)
		if (strcmp(c->names[i], name) == 0)
			return true;
	/* "*.example.com" stands for exactly one non-empty label before ".example.com". */
	if (dot == NULL || dot == name || dot[1] == '\0')
		return false;
	for (size_t i = 0; i < c->n_names; i++) {
		const char *n = c->names[i];
		if (n[0] == '*' && n[1] == '.' && strcmp(n + 1, dot) == 0) {
			if (wildcard != NULL)
				*wildcard = true;
			return true;
		}
	}
	return false;
}

bool zkr_cert_copy(struct zkr_cert *dst, const struct zkr_cert *src)
{
	*dst = *src;
	dst->leaf = NULL;
	dst->chain = NULL;
	dst->key = NULL;
	dst->names = NULL;
	dst->n_names = 0;
	if (X509_up_ref(src->leaf) != 1)
		goto failed;
	dst->leaf = src->leaf;
	if ((dst->chain = X509_chain_up_ref(src->chain)) == NULL)
		goto failed;
	if (EVP_PKEY_up_ref(src->key) != 1)
		goto failed;
	dst->key = src->key;
	if ((dst->names = calloc(src->n_names ? src->n_names : 1, sizeof(*dst->names))) == NULL)
		goto failed;
	for (; dst->n_names < src->n_names; dst->n_names++)
		if ((dst->names[dst->n_names] = strdup(src->names[dst->n_names])) == NULL)
			goto failed;
	return true;
failed:
	zkr_cert_free(dst);
	return false;
}

void zkr_cert_free(struct zkr_cert *c)
{
	if (c == NULL)
		return;
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	memset(c, 0, sizeof(*c));
}
