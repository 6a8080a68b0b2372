/*
 * Clock, PRNG and hash suite (registry/clock.h, prng.h, hash.h): SipHash
 * against the reference vectors, the balancer's key hash pinned to the
 * values every router has always computed (another value would send a
 * key to another instance during a rolling upgrade), the PRNG's sequence
 * and seeding, and a clock that does not go back.
 */
#include <config.h>

#include <string.h>

#include "node/balancer.h"
#include "registry/clock.h"
#include "registry/hash.h"
#include "registry/prng.h"
#include "tests/lib/unit.h"

static void ref_key(struct hash_key *k)
{
	k->k0 = 0x0706050403020100ull;
	k->k1 = 0x0f0e0d0c0b0a0908ull;
}

/* The reference implementation's vectors: key 00..0f, message 00..len-1. */
static void test_sip_vectors(void)
{
	static const struct { size_t len; uint64_t h; } v[] = {
		{ 0, 0x726fdb47dd0e0e31ull },
		{ 7, 0xab0200f58b01d137ull },
		{ 8, 0x93f5f5799a932462ull },
		{ 15, 0xa129ca6149be45e5ull },
		{ 16, 0x3f2acc7f57c29bdbull },
	};
	struct hash_key k;
	uint8_t msg[64];

	ref_key(&k);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CU_ASSERT_EQUAL(hash_sip(&k, msg, v[i].len), v[i].h);
}

static void test_sip_keyed(void)
{
	struct hash_key a, b;

	hash_key_random(&a);
	b = a;
	b.k1 ^= 1;
	CU_ASSERT_NOT_EQUAL(hash_sip(&a, "10.0.0.1", 8), hash_sip(&b, "10.0.0.1", 8));
	CU_ASSERT_EQUAL(hash_sip(&a, "10.0.0.1", 8), hash_sip(&a, "10.0.0.1", 8));
}

static void test_stable_hashes(void)
{
	CU_ASSERT_EQUAL(hash_fnv1a("", 0), 1469598103934665603ull);
	CU_ASSERT_EQUAL(hash_fnv1a("user-42", 7), hash_fnv1a_str("user-42"));
	/* Pinned: what the hash policies and the per-instance seeds computed
	 * before the module existed. */
	CU_ASSERT_EQUAL(balancer_hash_key("user-42", 7), 0xe1a2fed0654c3d97ull);
	CU_ASSERT_EQUAL(hash_mix64(1), 0x5692161d100b05e5ull);
	CU_ASSERT_EQUAL(hash_fnv1a_str("app-1"), 0xf0c0c33122c5ec70ull);
}

static void test_prng(void)
{
	uint64_t s = 1, t = 1, z = 0;

	/* xorshift64* from state 1: the first value is the multiplier times
	 * 0x2000001 (the state after one step). */
	CU_ASSERT_EQUAL(prng_next(&s), 0x2000001ull * 0x2545F4914F6CDD1Dull);
	prng_next(&t);
	CU_ASSERT_EQUAL(s, t);
	prng_seed(&z, 0);
	CU_ASSERT_NOT_EQUAL(z, 0);
}

static void test_clock(void)
{
	uint64_t a = clock_now_us(), b = clock_now_us(), ms = clock_now_ms();

	CU_ASSERT_TRUE(b >= a);
	CU_ASSERT_TRUE(ms >= a / 1000u);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("hash", NULL, NULL);
	UNIT_TEST(s, test_sip_vectors);
	UNIT_TEST(s, test_sip_keyed);
	UNIT_TEST(s, test_stable_hashes);
	UNIT_TEST(s, test_prng);
	UNIT_TEST(s, test_clock);
}
