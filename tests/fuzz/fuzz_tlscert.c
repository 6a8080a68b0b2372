/*
 * Fuzz target "tlscert": what a router reads to serve HTTPS, where the
 * bytes come from whoever may write /certs or /tls/ticket-keys, or from a
 * certificate file an operator dropped in place. Byte 0 picks (modulo 3):
 *
 *   0: a TlsCertificate record (/certs/<name>.<seq>), decoded, and when it
 *      validates, its chain and key parsed as the TLS store does;
 *   1: a TicketKeys record (/tls/ticket-keys);
 *   2: PEM text as in a file: the chain, then after the first NUL byte
 *      (if any) the key, parsed with zkr_cert_parse.
 *
 * Properties: a refusal always says why; a certificate that parses has a
 * key, at least one name, and matches each of its own names; decoded
 * ticket keys number 1 to ZKR_TICKET_KEYS_MAX. The seeds' certificates and
 * keys were made for them alone and protect nothing.
 */
#include <string.h>
#include <time.h>

#include "registry/record.h"
#include "registry/ticketkeys.h"
#include "registry/tlscert.h"
#include "tests/fuzz/fuzz.h"

static void parse_pem(const char *chain, size_t chain_len, const char *key, size_t key_len)
{
	struct zkr_cert c;
	char why[256] = "";

	memset(&c, 0, sizeof(c));
	if (!zkr_cert_parse(chain, chain_len, key, key_len, &c, why, sizeof(why))) {
		FUZZ_CHECK(why[0] != '\0');
		return;
	}
	FUZZ_CHECK(c.leaf != NULL && c.key != NULL && c.n_names > 0);
	for (size_t i = 0; i < c.n_names; i++) {
		bool wildcard;
		const char *name = c.names[i];

		/* "*.example.com" is matched by a name under it, not itself. */
		if (strncmp(name, "*.", 2) == 0)
			continue;
		FUZZ_CHECK(zkr_cert_matches(&c, name, &wildcard));
	}
	why[0] = '\0';
	if (!zkr_cert_usable(&c, time(NULL), why, sizeof(why)))
		FUZZ_CHECK(why[0] != '\0');
	zkr_cert_free(&c);
}

static void cert_record(const uint8_t *buf, size_t len)
{
	char why[RECORD_WHY_MAX] = "";
	record_tls_certificate *r = record_tls_certificate_decode(buf, len, why, sizeof(why));

	if (r == NULL) {
		FUZZ_CHECK(why[0] != '\0');
		return;
	}
	if (record_tls_certificate_validate(r, why, sizeof(why)))
		parse_pem(r->chain_pem, strlen(r->chain_pem), r->key_pem, strlen(r->key_pem));
	else
		FUZZ_CHECK(why[0] != '\0');
	record_tls_certificate_free(r);
}

static void ticket_keys(const uint8_t *buf, size_t len)
{
	struct zkr_ticket_key keys[ZKR_TICKET_KEYS_MAX];
	size_t n = 0;
	uint64_t at = 0;
	char by[64] = "", why[256] = "";

	if (zkr_ticketkeys_decode(buf, len, keys, &n, &at, by, sizeof(by), why, sizeof(why)))
		FUZZ_CHECK(n >= 1 && n <= ZKR_TICKET_KEYS_MAX && memchr(by, '\0', sizeof(by)) != NULL);
	else
		FUZZ_CHECK(why[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *buf = data + 1;
	size_t len = size - 1;

	switch (data[0] % 3) {
	case 0:
		cert_record(buf, len);
		break;
	case 1:
		ticket_keys(buf, len);
		break;
	default: {
		const uint8_t *nul = memchr(buf, '\0', len);
		size_t chain_len = nul != NULL ? (size_t)(nul - buf) : len;

		parse_pem((const char *)buf, chain_len, nul != NULL ? (const char *)nul + 1 : NULL,
			  nul != NULL ? len - chain_len - 1 : 0);
		break;
	}
	}
	return 0;
}
