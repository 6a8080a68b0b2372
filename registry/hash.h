/*
 * The one set of hash functions.
 *
 * - hash_sip: SipHash-2-4 under a random per-process key, for tables where
 *   hostile input picks the bucket (client addresses in the per-IP limits).
 * - hash_fnv1a, hash_mix64: unkeyed and the same in every process, for what
 *   must agree across routers (the hash balancing policies, per-instance
 *   seeds) and for indexes of trusted names (certificates, domains).
 */
#ifndef ZKR_HASH_H
#define ZKR_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash_key {
	uint64_t k0, k1;
};

/* A random key (getrandom(), or a weaker one that still differs per
 * process when the kernel has no entropy to give). */
void hash_key_random(struct hash_key *k);

uint64_t hash_sip(const struct hash_key *k, const void *data, size_t len);

/* FNV-1a, 64 bits, with the offset basis the hash balancing policies have
 * always used (1469598103934665603): another would move every key to
 * another instance. */
uint64_t hash_fnv1a(const void *data, size_t len);
uint64_t hash_fnv1a_str(const char *s);

/* A bijective finalizer (splitmix64's): every input bit moves every
 * output bit. */
uint64_t hash_mix64(uint64_t x);

#endif
