/*
 * The certificate store (see tls.h): certificates from files, a directory
 * and ZooKeeper records, each parsed once into an entry with its own
 * SSL_CTX; every change publishes a new immutable snapshot with a name
 * index (a hash of exact names and one of wildcard suffixes), so that a
 * handshake finds its certificate among thousands without a scan.
 *
 * Entries are shared between snapshots and counted with atomics: a
 * snapshot, and whatever thread released it last, frees them. The store
 * itself (the source lists) belongs to the loop thread.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "node/config.h"
#include "node/tls-int.h"
#include "node/tls.h"
#include "registry/hash.h"
#include "registry/log.h"



void tls_entry_unref(struct tls_cert_entry *e)
{
	if (e == NULL || atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	SSL_CTX_free(e->ctx);
	zkr_cert_free(&e->cert);
	free(e->name);
	free(e->key_file);
	free(e);
}

struct tls_cert_entry *tls_entry_ref(struct tls_cert_entry *e)
{
	atomic_fetch_add(&e->refs, 1);
	return e;
}

const char *tls_source_name(enum tls_source s)
{
	return s == TLS_SOURCE_FILE ? "file" : s == TLS_SOURCE_DIR ? "dir" : "zookeeper";
}

static const char *key_name(enum zkr_key_type t)
{
	return t == ZKR_KEY_RSA ? "RSA" : t == ZKR_KEY_ECDSA ? "ECDSA" : "other";
}

static long days_left(const struct tls_cert_entry *e, time_t now)
{
	return (long)((e->cert.not_after - now) / TLS_DAY_S);
}

void tls_entry_warn_expiry(const struct tls_cert_entry *e, time_t now)
{
	char why[128];

	if (!zkr_cert_usable(&e->cert, now, why, sizeof(why)))
		log_warn("TLS certificate %s (%s): %s; another certificate of its names is served when there is one",
			 e->name, e->cert.names[0], why);
	else if (e->cert.not_after - now < (time_t)TLS_EXPIRY_WARN_DAYS * TLS_DAY_S)
		log_warn("TLS certificate %s (%s) expires in %ld days", e->name, e->cert.names[0],
			 days_left(e, now));
}

/*
 * An entry from PEM text: parsed, checked, given its context. The digest
 * covers both texts so that a reload recognises an unchanged source.
 */
struct tls_cert_entry *tls_entry_new(const struct tls_store *s, const char *name, enum tls_source source, const char *key_file,
					const char *chain, size_t chain_len, const char *key,
					size_t key_len, char *why, size_t whylen)
{
	struct tls_cert_entry *e = calloc(1, sizeof(*e));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int mdlen = 0;

	if (e != NULL)
		atomic_init(&e->refs, 1);
	if (e == NULL || md == NULL || (e->name = strdup(name)) == NULL ||
	    (key_file != NULL && (e->key_file = strdup(key_file)) == NULL)) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	e->source = source;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, chain, chain_len) != 1 ||
	    (key != NULL && EVP_DigestUpdate(md, key, key_len) != 1) ||
	    EVP_DigestFinal_ex(md, e->digest, &mdlen) != 1) {
		snprintf(why, whylen, "cannot hash the file");
		goto failed;
	}
	if (!zkr_cert_parse(chain, chain_len, key, key_len, &e->cert, why, whylen))
		goto failed;
	if ((e->ctx = tls_cert_ctx_new(&e->cert, s->min_version, s->ciphers, s->ciphersuites,
				       why, whylen)) == NULL)
		goto failed;
	EVP_MD_CTX_free(md);
	return e;
failed:
	EVP_MD_CTX_free(md);
	tls_entry_unref(e);
	return NULL;
}

struct tls_cert_entry *tls_entry_repolicy(const struct tls_store *s, const struct tls_cert_entry *old,
					  char *why, size_t whylen)
{
	struct tls_cert_entry *e = calloc(1, sizeof(*e));

	if (e != NULL)
		atomic_init(&e->refs, 1);
	if (e == NULL || (e->name = strdup(old->name)) == NULL ||
	    (old->key_file != NULL && (e->key_file = strdup(old->key_file)) == NULL) ||
	    !zkr_cert_copy(&e->cert, &old->cert)) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	e->source = old->source;
	memcpy(e->digest, old->digest, sizeof(e->digest));
	if ((e->ctx = tls_cert_ctx_new(&e->cert, s->min_version, s->ciphers, s->ciphersuites,
				       why, whylen)) == NULL)
		goto failed;
	return e;
failed:
	tls_entry_unref(e);
	return NULL;
}

/* ---- snapshots and the name index ---- */

static uint64_t name_hash(const char *s)
{
	return hash_fnv1a_str(s);
}

struct pair {
	const char *key;
	uint32_t id;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : (x->id > y->id) - (x->id < y->id);
}

/* Sorts `pairs`, writes their ids at ids[base..] and one slot per distinct key. */
static bool index_build(struct pair *pairs, size_t n, uint32_t *ids, uint32_t base,
			struct tls_slot **slots, size_t *mask)
{
	size_t cap = 8;

	qsort(pairs, n, sizeof(*pairs), pair_cmp);
	while (cap < 2 * n)
		cap *= 2;
	if ((*slots = calloc(cap, sizeof(**slots))) == NULL)
		return false;
	*mask = cap - 1;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		size_t at = (size_t)name_hash(pairs[i].key) & *mask;

		while (j < n && strcmp(pairs[j].key, pairs[i].key) == 0) {
			ids[base + j] = pairs[j].id;
			j++;
		}
		while ((*slots)[at].key != NULL)
			at = (at + 1) & *mask;
		(*slots)[at] = (struct tls_slot){ pairs[i].key, base + (uint32_t)i, (uint32_t)(j - i) };
		i = j;
	}
	return true;
}

static const struct tls_slot *index_find(const struct tls_slot *slots, size_t mask, const char *key)
{
	size_t at = (size_t)name_hash(key) & mask;

	for (; slots[at].key != NULL; at = (at + 1) & mask)
		if (strcmp(slots[at].key, key) == 0)
			return &slots[at];
	return NULL;
}

static void snapshot_free(struct tls_snapshot *snap)
{
	for (size_t i = 0; i < snap->n; i++)
		tls_entry_unref(snap->entries[i]);
	free(snap->entries);
	free(snap->exact);
	free(snap->wild);
	free(snap->ids);
	free(snap);
}

void tls_snapshot_release(struct tls_snapshot *snap)
{
	if (snap != NULL && atomic_fetch_sub(&snap->refs, 1) == 1)
		snapshot_free(snap);
}

struct tls_snapshot *tls_store_acquire(struct tls_store *s)
{
	struct tls_snapshot *snap;

	pthread_mutex_lock(&s->lock);
	snap = s->snap;
	atomic_fetch_add(&snap->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return snap;
}

bool tls_store_strict_sni(struct tls_store *s)
{
	return atomic_load(&s->strict_sni);
}

static struct tls_snapshot *snapshot_build(struct tls_store *s)
{
	struct tls_snapshot *snap = calloc(1, sizeof(*snap));
	struct pair *exact = NULL, *wild = NULL;
	size_t n_names = 0, ne = 0, nw = 0;

	if (snap == NULL)
		return NULL;
	atomic_init(&snap->refs, 1);
	snap->entries = calloc(s->n_files + s->n_records + 1, sizeof(*snap->entries));
	if (snap->entries == NULL)
		goto failed;
	for (size_t i = 0; i < s->n_files; i++)
		snap->entries[snap->n++] = tls_entry_ref(s->files[i]);
	for (size_t i = 0; i < s->n_records; i++)
		snap->entries[snap->n++] = tls_entry_ref(s->records[i]);
	snap->def = s->n_files > 0 ? s->files[0] : NULL;
	for (size_t i = 0; i < snap->n; i++)
		n_names += snap->entries[i]->cert.n_names;
	exact = calloc(n_names + 1, sizeof(*exact));
	wild = calloc(n_names + 1, sizeof(*wild));
	snap->ids = calloc(n_names + 1, sizeof(*snap->ids));
	if (exact == NULL || wild == NULL || snap->ids == NULL)
		goto failed;
	for (size_t i = 0; i < snap->n; i++) {
		const struct zkr_cert *c = &snap->entries[i]->cert;
		for (size_t k = 0; k < c->n_names; k++) {
			const char *nm = c->names[k];
			if (nm[0] == '*' && nm[1] == '.')
				wild[nw++] = (struct pair){ nm + 1, (uint32_t)i };
			else
				exact[ne++] = (struct pair){ nm, (uint32_t)i };
		}
	}
	if (!index_build(exact, ne, snap->ids, 0, &snap->exact, &snap->exact_mask) ||
	    !index_build(wild, nw, snap->ids, (uint32_t)ne, &snap->wild, &snap->wild_mask))
		goto failed;
	free(exact);
	free(wild);
	return snap;
failed:
	free(exact);
	free(wild);
	snapshot_free(snap);
	return NULL;
}

/*
 * Ranks two candidates for one name: a valid certificate before an
 * expired (or not yet valid) one, an exact name before a wildcard, the
 * key type the client prefers (ECDSA when it can use it, else RSA), then
 * the latest not-after.
 */
static int key_score(enum zkr_key_type t, const struct tls_hello *h)
{
	if (h->ecdsa)
		return t == ZKR_KEY_ECDSA ? 2 : t == ZKR_KEY_RSA ? 1 : 0;
	return t == ZKR_KEY_RSA ? 2 : 0;
}

static bool better(const struct tls_cert_entry *a, bool a_exact, const struct tls_cert_entry *b,
		   bool b_exact, const struct tls_hello *h, time_t now)
{
	bool ua = now >= a->cert.not_before && now <= a->cert.not_after;
	bool ub = now >= b->cert.not_before && now <= b->cert.not_after;
	int ka = key_score(a->cert.key_type, h), kb = key_score(b->cert.key_type, h);

	if (ua != ub)
		return ua;
	if (a_exact != b_exact)
		return a_exact;
	if (ka != kb)
		return ka > kb;
	return a->cert.not_after > b->cert.not_after;
}

struct tls_cert_entry *tls_snapshot_select(const struct tls_snapshot *snap, const char *name,
					   const struct tls_hello *hello, bool strict, time_t now)
{
	struct tls_cert_entry *best = NULL;
	bool best_exact = false;
	const struct tls_slot *sl;
	const char *dot;

	if (name == NULL)
		return snap->def;
	if ((sl = index_find(snap->exact, snap->exact_mask, name)) != NULL) {
		for (uint32_t i = 0; i < sl->count; i++) {
			struct tls_cert_entry *e = snap->entries[snap->ids[sl->start + i]];
			if (best == NULL || better(e, true, best, best_exact, hello, now)) {
				best = e;
				best_exact = true;
			}
		}
	}
	/* One label, then the suffix a wildcard name stands for. */
	dot = strchr(name, '.');
	if (dot != NULL && dot != name && dot[1] != '\0' &&
	    (sl = index_find(snap->wild, snap->wild_mask, dot)) != NULL) {
		for (uint32_t i = 0; i < sl->count; i++) {
			struct tls_cert_entry *e = snap->entries[snap->ids[sl->start + i]];
			if (best == NULL || better(e, false, best, best_exact, hello, now)) {
				best = e;
				best_exact = false;
			}
		}
	}
	if (best != NULL)
		return best;
	return strict ? NULL : snap->def;
}

/* Publishes the sources as they are now; false (old snapshot kept) when out of memory. */
bool tls_store_publish_now(struct tls_store *s)
{
	struct tls_snapshot *snap = snapshot_build(s), *old;

	if (snap == NULL) {
		log_error("TLS: out of memory building the certificate index; serving the previous one");
		return false;
	}
	pthread_mutex_lock(&s->lock);
	old = s->snap;
	s->snap = snap;
	pthread_mutex_unlock(&s->lock);
	tls_snapshot_release(old);
	return true;
}

void tls_store_publish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tls_store_publish_now(arg);
}

/* Records arrive in bursts (every /certs child at a session start): one
 * index build per loop turn, not one per record. */
void tls_store_publish_later(struct tls_store *s)
{
	if (s->publish_ev != NULL)
		event_active(s->publish_ev, EV_TIMEOUT, 0);
	else
		tls_store_publish_now(s);
}

void tls_store_daily_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tls_store_check_expiry(arg, time(NULL));
}

/* ---- connections, the base context, output ---- */

SSL *tls_store_new_ssl(struct tls_store *s)
{
	SSL *ssl;

	pthread_mutex_lock(&s->lock);
	ssl = SSL_new(s->base_ctx);
	pthread_mutex_unlock(&s->lock);
	return ssl;
}

SSL_CTX *tls_store_base_ctx(struct tls_store *s)
{
	return s->base_ctx;
}

void tls_store_on_base_ctx(struct tls_store *s, tls_base_ctx_cb cb, void *arg)
{
	s->base_cb = cb;
	s->base_cb_arg = arg;
	if (cb != NULL && s->base_ctx != NULL)
		cb(s->base_ctx, arg);
}

size_t tls_store_count(const struct tls_store *s)
{
	return s->n_files + s->n_records;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_value(struct evbuffer *out, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			evbuffer_add_printf(out, "\\%c", *p);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, p, 1);
	}
}

void tls_store_write_metrics(struct tls_store *s, struct evbuffer *out)
{
	struct tls_snapshot *snap = tls_store_acquire(s);

	evbuffer_add_printf(out, "# HELP zkrouter_tls_certificates Certificates in service (files and ZooKeeper records).\n"
			    "# TYPE zkrouter_tls_certificates gauge\nzkrouter_tls_certificates %zu\n", snap->n);
	evbuffer_add_printf(out, "# HELP zkrouter_tls_certificate_expiry_timestamp_seconds Not-after of each certificate "
			    "in service, by file path or ZooKeeper record path.\n"
			    "# TYPE zkrouter_tls_certificate_expiry_timestamp_seconds gauge\n");
	for (size_t i = 0; i < snap->n; i++) {
		evbuffer_add_printf(out, "zkrouter_tls_certificate_expiry_timestamp_seconds{name=\"");
		label_value(out, snap->entries[i]->name);
		evbuffer_add_printf(out, "\"} %lld\n", (long long)snap->entries[i]->cert.not_after);
	}
	tls_snapshot_release(snap);
}

void tls_store_write_json(struct tls_store *s, struct evbuffer *out,
			  void (*json_string)(struct evbuffer *out, const char *s))
{
	struct tls_snapshot *snap = tls_store_acquire(s);
	time_t now = time(NULL);

	evbuffer_add(out, "[", 1);
	for (size_t i = 0; i < snap->n; i++) {
		const struct tls_cert_entry *e = snap->entries[i];
		char when[32];
		struct tm tm;

		gmtime_r(&e->cert.not_after, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		evbuffer_add_printf(out, "%s\n{\"name\":", i ? "," : "");
		json_string(out, e->name);
		evbuffer_add_printf(out, ",\"source\":\"%s\",\"names\":[", tls_source_name(e->source));
		for (size_t k = 0; k < e->cert.n_names; k++) {
			if (k)
				evbuffer_add(out, ",", 1);
			json_string(out, e->cert.names[k]);
		}
		evbuffer_add_printf(out, "],\"subject\":");
		json_string(out, e->cert.subject);
		evbuffer_add_printf(out, ",\"issuer\":");
		json_string(out, e->cert.issuer);
		evbuffer_add_printf(out, ",\"not_after\":\"%s\",\"days_left\":%ld,\"key_type\":\"%s\",\"default\":%s}",
				    when, days_left(e, now), key_name(e->cert.key_type),
				    e == snap->def ? "true" : "false");
	}
	evbuffer_add(out, "\n]\n", 3);
	tls_snapshot_release(snap);
}

void tls_store_check_expiry(struct tls_store *s, time_t now)
{
	struct tls_snapshot *snap = tls_store_acquire(s);

	for (size_t i = 0; i < snap->n; i++)
		tls_entry_warn_expiry(snap->entries[i], now);
	tls_snapshot_release(snap);
}

void tls_store_free(struct tls_store *s)
{
	if (s == NULL)
		return;
	if (s->publish_ev != NULL)
		event_free(s->publish_ev);
	if (s->daily_ev != NULL)
		event_free(s->daily_ev);
	for (size_t i = 0; i < s->n_files; i++)
		tls_entry_unref(s->files[i]);
	for (size_t i = 0; i < s->n_records; i++)
		tls_entry_unref(s->records[i]);
	free(s->files);
	free(s->records);
	tls_snapshot_release(s->snap);
	/* Live SSLs hold their own references to the contexts. */
	SSL_CTX_free(s->base_ctx);
	free(s->min_version);
	free(s->ciphers);
	free(s->ciphersuites);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
