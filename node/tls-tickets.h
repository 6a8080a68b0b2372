/*
 * Session-ticket keys for every TLS listener: one key ring, consulted by
 * OpenSSL at each handshake that issues or presents a ticket, and
 * replaced whole when the keys change (registry/ticketkeys.h reads them
 * from ZooKeeper so that every router holds the same ring).
 *
 * keys[0] encrypts new tickets (AES-256-CBC, HMAC-SHA256); every key in
 * the ring decrypts. A ticket under an older key resumes and is replaced
 * by one under keys[0]; a ticket under a key no longer in the ring means
 * a full handshake.
 *
 * Thread safety: the ring is immutable and reference-counted; a swap
 * takes a mutex for the pointer only, and a handshake holds a reference
 * for the length of one callback. Any thread may swap while others
 * handshake.
 */
#ifndef ZKR_TLS_TICKETS_H
#define ZKR_TLS_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "registry/ticketkeys.h"

struct tls_tickets;

/* A ring of one local random key; NULL on allocation or RNG failure. */
struct tls_tickets *tls_tickets_new(void);

/* Makes `ctx` issue and accept tickets with this ring. Call it for every
 * SSL_CTX a handshake may run on, including contexts chosen by SNI.
 * The ring must outlive the contexts. */
bool tls_tickets_attach(struct tls_tickets *t, SSL_CTX *ctx) __attribute__((warn_unused_result));

/* Replaces the ring (keys copied; 1 to ZKR_TICKET_KEYS_MAX). False, the
 * ring unchanged, on a bad count or allocation failure. */
bool tls_tickets_set(struct tls_tickets *t, const struct zkr_ticket_key *keys, size_t n);

struct tls_tickets_stats {
	uint64_t issued;           /* tickets encrypted */
	uint64_t resumed;          /* tickets presented whose key is in the ring */
	uint64_t renewed;          /* of those, under an older key: a new ticket follows */
	uint64_t failed;           /* tickets presented under an unknown key, or a cipher error */
	uint64_t swaps;            /* rings put in force */
};
void tls_tickets_stats(struct tls_tickets *t, struct tls_tickets_stats *out);

/* After every context that uses it is freed. */
void tls_tickets_free(struct tls_tickets *t);

#endif
