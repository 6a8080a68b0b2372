/*
 * xorshift64* (Marsaglia; Vigna's multiplier). See prng.h.
 */
#include <config.h>

#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "registry/prng.h"

uint64_t prng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void prng_seed(uint64_t *state, uint64_t salt)
{
	if (getrandom(state, sizeof(*state), 0) != (ssize_t)sizeof(*state) || *state == 0)
		*state = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() ^ salt ^
			 0x9e3779b97f4a7c15ull;
	if (*state == 0)
		*state = 0x9e3779b97f4a7c15ull;
}
