/*
 * The balancing policies (see balancer.h). Every pick is O(instances) at
 * worst and allocates nothing: candidates are filtered on the fly.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include "node/balancer.h"
#include "registry/hash.h"
#include "registry/prng.h"


static bool was_tried(const struct balancer_args *a, const struct backend *b)
{
	size_t i;

	for (i = 0; i < a->n_tried; i++)
		if (a->tried[i] == b)
			return true;
	return false;
}

/* Level 0: healthy candidates only; level 1: fail open (ejected or down
 * ones too). */
static bool eligible(const struct balancer_args *a, const struct backend *b, int level)
{
	if (!backend_routable(b) || was_tried(a, b))
		return false;
	if (a->max_outstanding && b->outstanding >= a->max_outstanding)
		return false;
	if (level == 0 && (backend_health_down(b) || backend_ejected(b, a->now_ms)))
		return false;
	return true;
}

/* outstanding/weight compared without division. */
static bool less_loaded(const struct backend *x, const struct backend *y)
{
	uint64_t lx = (uint64_t)(x->outstanding + 1) * y->weight;
	uint64_t ly = (uint64_t)(y->outstanding + 1) * x->weight;

	return lx < ly;
}

/*
 * Power of two choices: two distinct eligible candidates drawn at random,
 * the less loaded wins. They are drawn in one pass (reservoir sampling),
 * so that each backend's eligibility is read once per pick: it depends on
 * state other workers write at any moment (ejection, health checks), and
 * a count taken first could disagree with a second walk.
 */
static struct backend *pick_p2c(const struct balancer_args *a, int level)
{
	struct backend *x = NULL, *y = NULL, *t;
	uint64_t seen = 0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		struct backend *b = a->bes[i];

		if (!eligible(a, b, level))
			continue;
		seen++;
		if (seen == 1) {
			x = b;
		} else if (seen == 2) {
			y = b;
		} else {
			uint64_t r = prng_next(a->rng) % seen;

			if (r == 0)
				x = b;
			else if (r == 1)
				y = b;
		}
	}
	if (y == NULL)
		return x;
	/* The order of the two is random too, for the tie below. */
	if (prng_next(a->rng) & 1) {
		t = x;
		x = y;
		y = t;
	}
	if (less_loaded(y, x))
		return y;
	if (less_loaded(x, y))
		return x;
	/* A tie: the heavier weight, else the first draw. */
	return y->weight > x->weight ? y : x;
}

static struct backend *pick_swrr(const struct balancer_args *a, int level)
{
	struct backend *best = NULL;
	int64_t total = 0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		struct backend *b = a->bes[i];

		if (!eligible(a, b, level))
			continue;
		b->swrr_current += b->weight;
		total += b->weight;
		if (best == NULL || b->swrr_current > best->swrr_current)
			best = b;
	}
	if (best)
		best->swrr_current -= total;
	return best;
}

uint64_t balancer_hash_key(const char *s, size_t len)
{
	return hash_mix64(hash_fnv1a(s, len));
}

/* Weighted rendezvous: score = -weight / ln(u), u in (0,1) from the hash of
 * (key, instance). The highest score wins; removing an instance moves only
 * the keys it had. */
static struct backend *pick_hash(const struct balancer_args *a, int level)
{
	uint64_t kh = a->key_hash;
	struct backend *best = NULL;
	double best_score = 0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		struct backend *b = a->bes[i];
		uint64_t h;
		double u, score;

		if (!eligible(a, b, level))
			continue;
		h = hash_mix64(kh ^ b->hash_seed);
		u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;   /* (0,1) */
		score = -(double)b->weight / log(u);
		if (best == NULL || score > best_score ||
		    (score == best_score && strcmp(b->id, best->id) < 0)) {
			best = b;
			best_score = score;
		}
	}
	return best;
}

struct backend *balancer_pick(const struct balancer_args *a)
{
	struct backend *b;
	int level;

	for (level = 0; level < 2; level++) {
		switch (a->policy) {
		case ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN:
			b = pick_swrr(a, level);
			break;
		case ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER:
		case ZKROUTER__APP_CONFIG__BALANCE__HASH_COOKIE:
			b = a->has_key ? pick_hash(a, level) : pick_p2c(a, level);
			break;
		default:
			b = pick_p2c(a, level);
			break;
		}
		if (b)
			return b;
	}
	return NULL;
}

bool balancer_cookie_value(const char *cookie, size_t len, const char *name,
			   const char **val, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = cookie, *end = cookie + len;

	while (p < end) {
		const char *semi, *eq;

		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		semi = memchr(p, ';', (size_t)(end - p));
		if (semi == NULL)
			semi = end;
		eq = memchr(p, '=', (size_t)(semi - p));
		if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
			const char *v = eq + 1, *ve = semi;

			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
				v++;
				ve--;
			}
			*val = v;
			*vlen = (size_t)(ve - v);
			return true;
		}
		p = semi;
	}
	return false;
}
