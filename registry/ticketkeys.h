/*
 * The TLS session-ticket keys the routers share through ZooKeeper, at
 * /tls/ticket-keys (a TicketKeys record, proto/zkrouter.proto), so that a
 * ticket one router issued resumes on any other.
 *
 * Read and watched; created when missing, with an ACL that gives the
 * routers' digest identity (--auth) every right and nobody else any.
 * Rotated every `rotate_s` seconds by the first router that finds
 * rotated_at_ms + period in the past: it writes [new, keys[0], keys[1]]
 * with a setData conditional on the version it read, so two routers due
 * at once rotate once (the loser gets ZBADVERSION and reads the winner's).
 *
 * Without an identity the keys are not shared (a node anybody may read
 * would hand the means to decrypt every ticket to every agent): the keys
 * stay local to the router and rotate locally on the same period.
 * While ZooKeeper is unreachable the keys in force stay; a router that
 * never read them uses the local keys it made at start (rotating them
 * locally when due) until it can.
 *
 * Every change of the key set is handed to `on_keys`, inside the loop;
 * the first call happens in zkr_ticketkeys_new with the local keys.
 */
#ifndef ZKR_TICKETKEYS_H
#define ZKR_TICKETKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "registry/session.h"

#define ZKR_TICKET_KEYS_MAX 3
#define ZKR_TICKET_NAME_LEN 16
#define ZKR_TICKET_AES_LEN 32
#define ZKR_TICKET_HMAC_LEN 32
#define ZKR_TICKET_KEYS_PATH "/tls/ticket-keys"

/* Bounds of the rotation period (--tls-ticket-rotate-s). */
#define ZKR_TICKET_ROTATE_MIN_S 1
#define ZKR_TICKET_ROTATE_MAX_S 2592000

struct zkr_ticket_key {
	uint8_t name[ZKR_TICKET_NAME_LEN];     /* sent in clear in each ticket */
	uint8_t aes_key[ZKR_TICKET_AES_LEN];   /* AES-256-CBC */
	uint8_t hmac_key[ZKR_TICKET_HMAC_LEN]; /* HMAC-SHA256 */
};

/* keys[0] encrypts new tickets, every key decrypts; 1 to ZKR_TICKET_KEYS_MAX. */
typedef void (*zkr_ticketkeys_cb)(const struct zkr_ticket_key *keys, size_t n, void *arg);

struct zkr_ticketkeys_opts {
	const char *node_id;       /* rotated_by in what we write */
	const char *auth;          /* the routers' digest "user:password"; NULL: local keys only */
	unsigned rotate_s;         /* ZKR_TICKET_ROTATE_MIN_S..MAX_S */
	zkr_ticketkeys_cb on_keys;
	void *arg;
};

struct zkr_ticketkeys_stats {
	bool shared;               /* the keys in force were read from ZooKeeper */
	int32_t version;           /* of the znode they came from (when shared) */
	uint64_t rotated_at_ms;    /* of the keys in force */
	uint8_t name[ZKR_TICKET_NAME_LEN]; /* of keys[0] */
	uint64_t rotations;        /* rotations this router wrote to ZooKeeper */
	uint64_t local_rotations;  /* rotations of keys not shared (no identity, or ZooKeeper never read) */
	uint64_t conflicts;        /* rotations another router wrote first (ZBADVERSION) */
	uint64_t updates;          /* key sets read from ZooKeeper and put in force */
	uint64_t rejected;         /* reads kept out: undecodable, wrong sizes */
};

struct zkr_ticketkeys;

/* Returns NULL with a reason on bad options or allocation failure. */
struct zkr_ticketkeys *zkr_ticketkeys_new(struct event_base *base, struct zkr_session *s,
					  const struct zkr_ticketkeys_opts *opts, char *why, size_t whylen);

/* A new rotation period (SIGHUP); the next due time follows from it. */
void zkr_ticketkeys_set_period(struct zkr_ticketkeys *k, unsigned rotate_s);

void zkr_ticketkeys_stats(const struct zkr_ticketkeys *k, struct zkr_ticketkeys_stats *out);

/* A TicketKeys record read from ZooKeeper, checked: 1 to
 * ZKR_TICKET_KEYS_MAX keys of the right sizes with distinct names. False
 * with a reason otherwise. `by` (may be NULL) receives rotated_by. */
bool zkr_ticketkeys_decode(const uint8_t *buf, size_t len, struct zkr_ticket_key *keys, size_t *n,
			   uint64_t *rotated_at_ms, char *by, size_t bylen, char *why, size_t whylen);

/* Fresh random key material (RAND_bytes); false if the generator fails. */
bool zkr_ticket_key_generate(struct zkr_ticket_key *k);

/* Call it while the session object exists (before zkr_session_free). */
void zkr_ticketkeys_free(struct zkr_ticketkeys *k);

#endif
