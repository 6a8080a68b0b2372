/*
 * Routing table snapshots. See table.h for the model.
 *
 * Digests: each app hashes a canonical serialization of itself (domain,
 * resolved config, instances in id order) with SHA-256. A table keeps the
 * XOR of its app digests, which a one-app change updates in O(1), and
 * publishes SHA-256 over that accumulator. Domains are unique within a
 * table, so the XOR cannot cancel two equal apps out, and two routers with
 * the same content compute the same digest whatever order the changes
 * reached them in.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "registry/log.h"
#include "registry/table.h"

/* The table's XOR accumulator sits behind the public struct. */
struct table_private {
	struct route_table pub;
	unsigned char acc[ROUTE_DIGEST_LEN];
};

static struct table_private *table_priv(const struct route_table *t)
{
	return (struct table_private *)(void *)t;
}

/* ---- references ------------------------------------------------------ */

struct route_app *route_app_ref(struct route_app *a)
{
	if (__atomic_fetch_add(&a->refs, 1, __ATOMIC_RELAXED) == 0)
		ZKR_BUG("app %s: reference taken on a released app", a->domain);
	return a;
}

static void app_free(struct route_app *a)
{
	for (size_t i = 0; i < a->n_instances; i++) {
		free(a->instances[i].id);
		free(a->instances[i].host);
		free(a->instances[i].zone);
	}
	free(a->instances);
	free(a->config.hash_key);
	free(a->config.health_path);
	free(a->config.sticky_cookie);
	free(a->domain);
	free(a);
}

/* A count that was already 0 before this release went below zero: the
 * object is left alone (a leak, not a second free). */
void route_app_unref(struct route_app *a)
{
	unsigned before;

	if (a == NULL)
		return;
	before = __atomic_fetch_sub(&a->refs, 1, __ATOMIC_ACQ_REL);
	if (before == 0)
		ZKR_BUG("app %s: reference count underflow", a->domain);
	else if (before == 1)
		app_free(a);
}

struct route_table *route_table_ref(struct route_table *t)
{
	if (__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED) == 0)
		ZKR_BUG("table %llu: reference taken on a released table",
			(unsigned long long)t->generation);
	return t;
}

void route_table_unref(struct route_table *t)
{
	unsigned before;

	if (t == NULL)
		return;
	before = __atomic_fetch_sub(&t->refs, 1, __ATOMIC_ACQ_REL);
	if (before == 0)
		ZKR_BUG("table %llu: reference count underflow", (unsigned long long)t->generation);
	if (before != 1)
		return;
	for (size_t i = 0; i < t->n_apps; i++)
		route_app_unref(t->apps[i]);
	free(t->apps);
	free(table_priv(t));
}

/* ---- lookup ---------------------------------------------------------- */

/* strcmp of a NUL-terminated domain against (key, len). */
static int domain_cmp(const char *domain, const char *key, size_t len)
{
	int c = strncmp(domain, key, len);
	if (c != 0)
		return c;
	return domain[len] == '\0' ? 0 : 1;
}

/* Index of the app with `domain`, or -(insertion point) - 1. */
static ptrdiff_t table_search(const struct route_table *t, const char *domain, size_t len)
{
	size_t lo = 0, hi = t->n_apps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = domain_cmp(t->apps[mid]->domain, domain, len);
		if (c == 0)
			return (ptrdiff_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ptrdiff_t)lo - 1;
}

struct route_app *route_table_find(const struct route_table *t, const char *domain, size_t len)
{
	ptrdiff_t i = table_search(t, domain, len);
	return i >= 0 ? t->apps[i] : NULL;
}

struct route_app *route_table_match(const struct route_table *t, const char *host, size_t len)
{
	struct route_app *a = route_table_find(t, host, len);
	if (a != NULL)
		return a;

	const char *dot = memchr(host, '.', len);
	if (dot == NULL || dot == host)
		return NULL;
	size_t rest = len - (size_t)(dot - host);   /* ".example.com" */
	char wild[256];
	if (rest + 1 > sizeof(wild))
		return NULL;
	wild[0] = '*';
	memcpy(wild + 1, dot, rest);
	return route_table_find(t, wild, rest + 1);
}

/* ---- building -------------------------------------------------------- */

static struct table_private *table_alloc(size_t n_apps)
{
	struct table_private *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->pub.refs = 1;
	if (n_apps > 0) {
		p->pub.apps = malloc(n_apps * sizeof(*p->pub.apps));
		if (p->pub.apps == NULL) {
			free(p);
			return NULL;
		}
	}
	p->pub.n_apps = n_apps;
	return p;
}

static void table_finish_digest(struct table_private *p)
{
	static const char tag[] = "zkrouter-table-v1";
	unsigned char buf[sizeof(tag) + ROUTE_DIGEST_LEN];
	unsigned int len = 0;
	memcpy(buf, tag, sizeof(tag));
	memcpy(buf + sizeof(tag), p->acc, ROUTE_DIGEST_LEN);
	if (EVP_Digest(buf, sizeof(buf), p->pub.digest, &len, EVP_sha256(), NULL) != 1)
		log_error("table: SHA-256 failed; digest left zero");
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < ROUTE_DIGEST_LEN; i++) {
		p->pub.digest_hex[2 * i] = hex[p->pub.digest[i] >> 4];
		p->pub.digest_hex[2 * i + 1] = hex[p->pub.digest[i] & 15];
	}
	p->pub.digest_hex[ROUTE_DIGEST_HEX_LEN] = '\0';
}

struct route_table *route_table_new(void)
{
	struct table_private *p = table_alloc(0);
	if (p == NULL)
		return NULL;
	table_finish_digest(p);
	return &p->pub;
}

static void acc_xor(unsigned char *acc, const unsigned char *d)
{
	for (size_t i = 0; i < ROUTE_DIGEST_LEN; i++)
		acc[i] ^= d[i];
}

/* The next snapshot after `old`: same apps, one slot changed by the caller. */
static struct table_private *table_next(const struct route_table *old, size_t n_apps)
{
	struct table_private *p = table_alloc(n_apps);
	if (p == NULL)
		return NULL;
	p->pub.generation = old->generation + 1;
	memcpy(p->acc, table_priv(old)->acc, ROUTE_DIGEST_LEN);
	return p;
}

struct route_table *route_table_with_app(const struct route_table *old, struct route_app *app)
{
	ptrdiff_t at = table_search(old, app->domain, strlen(app->domain));
	bool replace = at >= 0;
	size_t pos = replace ? (size_t)at : (size_t)(-at - 1);
	struct table_private *p = table_next(old, old->n_apps + (replace ? 0 : 1));
	if (p == NULL)
		return NULL;

	struct route_app **dst = p->pub.apps;
	for (size_t i = 0; i < pos; i++)
		*dst++ = route_app_ref(old->apps[i]);
	*dst++ = app;
	for (size_t i = pos + (replace ? 1 : 0); i < old->n_apps; i++)
		*dst++ = route_app_ref(old->apps[i]);

	if (replace)
		acc_xor(p->acc, old->apps[pos]->digest);
	acc_xor(p->acc, app->digest);
	table_finish_digest(p);
	return &p->pub;
}

struct route_table *route_table_from_apps(struct route_app **apps, size_t n)
{
	struct table_private *p = NULL;
	for (size_t i = 1; i < n; i++) {
		if (strcmp(apps[i - 1]->domain, apps[i]->domain) >= 0) {
			log_error("table: apps out of order at %s; table not built", apps[i]->domain);
			goto fail;
		}
	}
	p = table_alloc(n);
	if (p == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		p->pub.apps[i] = apps[i];
		acc_xor(p->acc, apps[i]->digest);
	}
	table_finish_digest(p);
	return &p->pub;
fail:
	for (size_t i = 0; i < n; i++)
		route_app_unref(apps[i]);
	return NULL;
}

struct route_table *route_table_without_app(const struct route_table *old, const char *domain)
{
	ptrdiff_t at = table_search(old, domain, strlen(domain));
	struct table_private *p = table_next(old, old->n_apps - (at >= 0 ? 1 : 0));
	if (p == NULL)
		return NULL;
	struct route_app **dst = p->pub.apps;
	for (size_t i = 0; i < old->n_apps; i++)
		if ((ptrdiff_t)i != at)
			*dst++ = route_app_ref(old->apps[i]);
	if (at >= 0)
		acc_xor(p->acc, old->apps[at]->digest);
	table_finish_digest(p);
	return &p->pub;
}

static bool dup_opt(char **dst, const char *src)
{
	if (src == NULL)
		return true;
	*dst = strdup(src);
	return *dst != NULL;
}

struct route_app *route_app_new(const char *domain, const record_app_config *cfg)
{
	static const record_app_config defaults = ZKROUTER__APP_CONFIG__INIT;
	if (cfg == NULL)
		cfg = &defaults;
	struct route_app *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->refs = 1;
	struct route_app_config *c = &a->config;
	c->balance = cfg->balance;
	c->connect_timeout_ms = cfg->has_connect_timeout_ms ? cfg->connect_timeout_ms : 0;
	c->response_timeout_ms = cfg->has_response_timeout_ms ? cfg->response_timeout_ms : 0;
	c->idle_timeout_ms = cfg->has_idle_timeout_ms ? cfg->idle_timeout_ms : 0;
	c->health_interval_ms = cfg->has_health_interval_ms ? cfg->health_interval_ms : 0;
	c->redirect_https = cfg->redirect_https;
	c->max_connections = cfg->has_max_connections ? cfg->max_connections : 0;
	c->max_body_bytes = cfg->has_max_body_bytes ? cfg->max_body_bytes : 0;
	c->retries = cfg->has_retries ? (int)cfg->retries : -1;
	c->max_concurrent_requests = cfg->has_max_concurrent_requests ? cfg->max_concurrent_requests : 0;
	c->max_queued_requests = cfg->has_max_queued_requests ? cfg->max_queued_requests : 0;
	c->backend_h2c = cfg->backend_protocol == ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C;
	if (!dup_opt(&a->domain, domain) || !dup_opt(&c->hash_key, cfg->hash_key) ||
	    !dup_opt(&c->health_path, cfg->health_path) ||
	    !dup_opt(&c->sticky_cookie, cfg->sticky_cookie) || a->domain == NULL) {
		app_free(a);
		return NULL;
	}
	return a;
}

bool route_app_add_instance(struct route_app *a, const char *id, const record_instance *r)
{
	struct route_instance *grown = realloc(a->instances, (a->n_instances + 1) * sizeof(*grown));
	if (grown == NULL)
		return false;
	a->instances = grown;
	struct route_instance *in = &grown[a->n_instances];
	memset(in, 0, sizeof(*in));
	in->port = (uint16_t)r->port;
	in->weight = r->weight;
	in->draining = r->state == ZKROUTER__INSTANCE__STATE__DRAINING;
	in->registered_at_ms = r->has_registered_at_ms ? r->registered_at_ms : 0;
	if (!dup_opt(&in->id, id) || !dup_opt(&in->host, r->host) || !dup_opt(&in->zone, r->zone) ||
	    in->id == NULL) {
		free(in->id);
		free(in->host);
		free(in->zone);
		return false;
	}
	a->n_instances++;
	return true;
}

static int instance_cmp(const void *x, const void *y)
{
	return strcmp(((const struct route_instance *)x)->id, ((const struct route_instance *)y)->id);
}

/* Canonical serialization for the digest: fields in a fixed order, each
 * string length-prefixed so that no two different apps serialize alike. */
static void digest_str(EVP_MD_CTX *ctx, const char *s)
{
	uint32_t len = s ? (uint32_t)strlen(s) + 1 : 0;  /* NULL and "" differ */
	EVP_DigestUpdate(ctx, &len, sizeof(len));
	if (s != NULL)
		EVP_DigestUpdate(ctx, s, len - 1);
}

static void digest_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	EVP_DigestUpdate(ctx, b, sizeof(b));
}

void route_app_seal(struct route_app *a)
{
	if (a->n_instances > 1)   /* qsort's array may not be NULL, even for 0 */
		qsort(a->instances, a->n_instances, sizeof(*a->instances), instance_cmp);

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		log_error("table: cannot hash app %s; its digest is left zero", a->domain);
		EVP_MD_CTX_free(ctx);
		return;
	}
	const struct route_app_config *c = &a->config;
	digest_str(ctx, a->domain);
	digest_u64(ctx, (uint64_t)c->balance);
	digest_str(ctx, c->hash_key);
	digest_u64(ctx, c->connect_timeout_ms);
	digest_u64(ctx, c->response_timeout_ms);
	digest_u64(ctx, c->idle_timeout_ms);
	digest_str(ctx, c->health_path);
	digest_u64(ctx, c->health_interval_ms);
	digest_str(ctx, c->sticky_cookie);
	digest_u64(ctx, c->redirect_https);
	digest_u64(ctx, c->max_connections);
	digest_u64(ctx, c->max_body_bytes);
	digest_u64(ctx, (uint64_t)(int64_t)c->retries);
	/* Fields added later enter the digest only when set, so routers of
	 * the previous version agree on the digest of apps that do not use
	 * them. The tag keeps them from reading as an instance count. */
	if (c->max_concurrent_requests || c->max_queued_requests) {
		digest_str(ctx, "concurrency");
		digest_u64(ctx, c->max_concurrent_requests);
		digest_u64(ctx, c->max_queued_requests);
	}
	if (c->backend_h2c)
		digest_str(ctx, "h2c");
	digest_u64(ctx, a->n_instances);
	for (size_t i = 0; i < a->n_instances; i++) {
		const struct route_instance *in = &a->instances[i];
		digest_str(ctx, in->id);
		digest_str(ctx, in->host);
		digest_u64(ctx, in->port);
		digest_u64(ctx, in->weight);
		digest_str(ctx, in->zone);
		digest_u64(ctx, in->draining);
		digest_u64(ctx, in->registered_at_ms);
	}
	EVP_DigestFinal_ex(ctx, a->digest, &len);
	EVP_MD_CTX_free(ctx);
}
