/*
 * The one pseudo-random generator: xorshift64*. Fast, not secret: it
 * spreads load (random and power-of-two balancing), makes request ids
 * and jitters retries. Its state is a uint64_t kept by its user (one per
 * proxy, per session, per watcher), so no two threads share one; seed it
 * with prng_seed.
 */
#ifndef ZKR_PRNG_H
#define ZKR_PRNG_H

#include <stdint.h>

/* Next value; the state must be non-zero (prng_seed makes it so). */
uint64_t prng_next(uint64_t *state);

/* Seeds from getrandom(), or from the time, pid and `salt` when the
 * kernel has no entropy to give; never zero. */
void prng_seed(uint64_t *state, uint64_t salt);

#endif
