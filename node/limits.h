/*
 * Per-client-address limits: open connections per address and a request
 * rate per address (token bucket), kept in a table of fixed size so that
 * a flood from many source addresses costs no more memory than a quiet
 * day.
 *
 * The table is set-associative: an address hashes (SipHash with a key
 * drawn at start, so nobody can aim addresses at one bucket) to a bucket
 * of LIMITS_WAYS entries. A new address takes a free entry of its bucket,
 * else the least recently used entry that has no open connection (an
 * eviction: that address starts over with a full bucket of tokens). An
 * entry with open connections is pinned: the connections hold it and
 * give it back when they close. A bucket whose every entry is pinned
 * leaves the new address untracked (counted, never limited): with the
 * table much larger than the connections held at once this stays rare.
 *
 * Addresses: IPv4 by full address, IPv6 by its /64 (one host usually
 * owns a whole /64 and picks addresses in it at will), an IPv4-mapped
 * IPv6 address as the IPv4 address it carries.
 *
 * One table serves the whole process: every worker's connections use
 * it at once. Buckets are guarded by striped locks, taken only while a
 * limit is configured (with both limits off a connection costs no hash
 * and no lock); the counters are relaxed atomics. An entry pointer held
 * by a connection stays valid (the table never moves); its fields are
 * read and written under its bucket's lock only.
 */
#ifndef ZKR_LIMITS_H
#define ZKR_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIMITS_WAYS 8

struct limits;

/* The table's key for one client address. */
struct limits_key {
	uint8_t b[16];
};

/* One tracked address. Opaque to callers except for tests. */
struct limits_entry {
	struct limits_key key;
	uint64_t stamp_ms;         /* last use (LRU) and last refill; 0: free */
	uint32_t milli_tokens;     /* the bucket, in thousandths of a request */
	uint32_t conns;            /* open connections holding this entry */
};

struct limits_stats {
	uint64_t rejected_conns;   /* over max_conns: answered 429 */
	uint64_t refused_conns;    /* over twice max_conns: closed at once */
	uint64_t rejected_reqs;    /* over the rate: answered 429 */
	uint64_t evictions;        /* entries reused for another address */
	uint64_t untracked;        /* addresses that found no entry */
	size_t tracked;            /* entries in use now */
	size_t size;               /* entries in all */
};

enum limits_verdict {
	LIMITS_OK,                 /* within the limit (or untracked) */
	LIMITS_OVER,               /* over max_conns: answer 429, then close */
	LIMITS_REFUSE,             /* over 2 * max_conns: close now */
};

/* A table of `size` entries (rounded up to a power of two, at least one
 * bucket). The memory is allocated at once but untouched until used.
 * NULL on allocation failure. */
struct limits *limits_new(size_t size);
void limits_free(struct limits *l);

/* The limits, 0 meaning off: open connections per address, requests per
 * second per address, and the burst (0: the same as the rate). */
void limits_configure(struct limits *l, unsigned max_conns, unsigned rate, unsigned burst);

/* True when either limit is on: connections then take entries. */
bool limits_enabled(const struct limits *l);

/* The key of a numeric address ("192.0.2.1", "2001:db8::1"). False when
 * the text is not one. */
bool limits_key_parse(const char *ip, struct limits_key *k);

/*
 * A connection from `k` opens. On LIMITS_OK and LIMITS_OVER, *e is the
 * entry it holds (NULL when untracked) and must be given back with
 * limits_conn_close when the connection closes; on LIMITS_REFUSE it holds
 * nothing.
 */
enum limits_verdict limits_conn_open(struct limits *l, const struct limits_key *k,
				     uint64_t now_ms, struct limits_entry **e);
void limits_conn_close(struct limits *l, struct limits_entry *e);

/* A request on a connection holding `e` (NULL: untracked, always
 * allowed). False when over the rate; *retry_after_s then says when a
 * token will be there (whole seconds, at least 1). */
bool limits_request(struct limits *l, struct limits_entry *e, uint64_t now_ms,
		    unsigned *retry_after_s);

void limits_get_stats(const struct limits *l, struct limits_stats *out);

#endif
