/*
 * Where the store's certificates come from (see tls.h): tls-cert/tls-key
 * files and tls-cert-dir, read at start (any error stops it) and again on
 * SIGHUP (an error keeps that file's previous certificate), and ZooKeeper
 * records added and removed one at a time. Also the policy's base
 * context, rebuilt when SIGHUP changes it.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "node/config.h"
#include "node/tls-int.h"
#include "node/tls.h"
#include "registry/log.h"

#define TLS_FILE_MAX (1024 * 1024)   /* a certificate file is a few KB */
#define TLS_DAY_S 86400
#define CHANGES_MAX 2048              /* the reload line; longer lists end in "..." */

/* Reads a whole file (at most TLS_FILE_MAX); the reason names the file. */
static char *read_file(const char *path, size_t *len, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(TLS_FILE_MAX + 1)) == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		goto done;
	}
	n = fread(buf, 1, TLS_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else if (n > TLS_FILE_MAX) {
		snprintf(why, whylen, "%s: larger than %d bytes", path, TLS_FILE_MAX);
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
done:
	fclose(f);
	return buf;
}

/* Reads a file source; NULL with "FILE: reason" in `why`. `digest_only`
 * set: the bytes match `old`, which the caller keeps (nothing returned). */
static struct tls_cert_entry *load_file(const struct tls_store *s, const char *path, const char *key_path, enum tls_source source,
					const struct tls_cert_entry *old, bool *unchanged,
					char *why, size_t whylen)
{
	char reason[512];
	char *chain = NULL, *key = NULL;
	size_t chain_len = 0, key_len = 0;
	struct tls_cert_entry *e = NULL;

	*unchanged = false;
	if ((chain = read_file(path, &chain_len, why, whylen)) == NULL)
		return NULL;
	if (key_path != NULL && (key = read_file(key_path, &key_len, why, whylen)) == NULL)
		goto done;
	if (old != NULL) {
		unsigned char d[32];
		unsigned int dl = 0;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		bool same = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
			    EVP_DigestUpdate(md, chain, chain_len) == 1 &&
			    (key == NULL || EVP_DigestUpdate(md, key, key_len) == 1) &&
			    EVP_DigestFinal_ex(md, d, &dl) == 1 && memcmp(d, old->digest, 32) == 0;
		EVP_MD_CTX_free(md);
		if (same) {
			*unchanged = true;
			goto done;
		}
	}
	e = tls_entry_new(s, path, source, key_path, chain, chain_len, key, key_len, reason, sizeof(reason));
	if (e == NULL) {
		if (key_path != NULL)
			snprintf(why, whylen, "%s (key %s): %s", path, key_path, reason);
		else
			snprintf(why, whylen, "%s: %s", path, reason);
	}
done:
	free(chain);
	free(key);
	return e;
}

/* A file source wanted by the configuration. */
struct want {
	char *path;
	const char *key;            /* points into the configuration */
	enum tls_source source;
};

static void wants_free(struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i].path);
	free(w);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the *.pem files of `dir`, sorted by name (the first is the
 * default when there is no tls-cert). */
static bool wants_dir(const char *dir, struct want **w, size_t *n, char *why, size_t whylen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0;
	bool ok = false;

	if (d == NULL) {
		snprintf(why, whylen, "tls-cert-dir %s: %s", dir, strerror(errno));
		return false;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char **grown;
		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".pem") != 0)
			continue;
		if ((grown = realloc(names, (nn + 1) * sizeof(*names))) == NULL)
			goto nomem;
		names = grown;
		if ((names[nn] = strdup(de->d_name)) == NULL)
			goto nomem;
		nn++;
	}
	qsort(names, nn, sizeof(*names), name_cmp);
	for (size_t i = 0; i < nn; i++) {
		struct want *grown = realloc(*w, (*n + 1) * sizeof(**w));
		if (grown == NULL)
			goto nomem;
		*w = grown;
		if (asprintf(&(*w)[*n].path, "%s/%s", dir, names[i]) < 0)
			goto nomem;
		(*w)[*n].key = NULL;
		(*w)[*n].source = TLS_SOURCE_DIR;
		(*n)++;
	}
	ok = true;
	goto done;
nomem:
	snprintf(why, whylen, "tls-cert-dir %s: out of memory", dir);
done:
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return ok;
}

static bool wants_cfg(const struct zkr_config *cfg, struct want **w, size_t *n, bool *dir_failed,
		      char *why, size_t whylen)
{
	*w = calloc(cfg->n_tls_cert + 1, sizeof(**w));
	*n = 0;
	*dir_failed = false;
	if (*w == NULL) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	for (size_t i = 0; i < cfg->n_tls_cert; i++) {
		if (((*w)[i].path = strdup(cfg->tls_cert[i])) == NULL) {
			snprintf(why, whylen, "out of memory");
			return false;
		}
		(*w)[i].key = i < cfg->n_tls_key ? cfg->tls_key[i] : NULL;
		(*w)[i].source = TLS_SOURCE_FILE;
		(*n)++;
	}
	if (cfg->tls_cert_dir != NULL && !wants_dir(cfg->tls_cert_dir, w, n, why, whylen)) {
		*dir_failed = true;
		return false;
	}
	return true;
}

static bool same_key(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void changes_add(char *buf, size_t *used, const char *what, const char *name)
{
	int n;

	if (*used >= CHANGES_MAX - 4)
		return;
	n = snprintf(buf + *used, CHANGES_MAX - *used, "%s%s %s", *used ? ", " : "", what, name);
	if (n < 0 || (size_t)n >= CHANGES_MAX - *used)
		strcpy(buf + CHANGES_MAX - 4, "...");
	*used = strlen(buf);
}

/*
 * Reads the file sources of `cfg` into a new list. At start (`first`) any
 * error fails with the file and the reason in `why`. On a reload a file
 * that cannot be used keeps its previous entry and is logged; `changes`
 * gets what was added, replaced and removed.
 */
static bool load_files(struct tls_store *s, const struct zkr_config *cfg, bool first, char *changes,
		       bool *refused, char *why, size_t whylen)
{
	struct tls_cert_entry **list = NULL;
	struct want *w = NULL;
	size_t nw = 0, n = 0, used = 0;
	bool dir_failed, ok = false;
	char reason[1024];
	time_t now = time(NULL);

	changes[0] = '\0';
	*refused = false;
	if (!wants_cfg(cfg, &w, &nw, &dir_failed, why, whylen)) {
		if (first || !dir_failed)
			goto done;
		log_error("TLS: %s; the certificates read from it before stay in service", why);
		*refused = true;
	}
	if ((list = calloc(nw + s->n_files + 1, sizeof(*list))) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nw; i++) {
		struct tls_cert_entry *old = NULL, *e;
		bool unchanged;

		for (size_t k = 0; k < s->n_files && old == NULL; k++)
			if (strcmp(s->files[k]->name, w[i].path) == 0)
				old = s->files[k];
		e = load_file(s, w[i].path, w[i].key, w[i].source,
			      old != NULL && same_key(old->key_file, w[i].key) ? old : NULL, &unchanged,
			      reason, sizeof(reason));
		if (unchanged) {
			list[n++] = tls_entry_ref(old);
		} else if (e != NULL) {
			list[n++] = e;
			if (!first)
				changes_add(changes, &used, old ? "replaced" : "added", e->name);
			tls_entry_warn_expiry(e, now);
		} else if (first) {
			snprintf(why, whylen, "%s", reason);
			goto done;
		} else {
			*refused = true;
			log_error("TLS certificate %s: %s; %s", w[i].path, reason,
				  old ? "the previous certificate stays in service" : "not served");
			if (old != NULL)
				list[n++] = tls_entry_ref(old);
		}
	}
	/* A directory that could not be listed keeps what came from it. */
	for (size_t k = 0; dir_failed && k < s->n_files; k++)
		if (s->files[k]->source == TLS_SOURCE_DIR)
			list[n++] = tls_entry_ref(s->files[k]);
	for (size_t k = 0; k < s->n_files; k++) {
		bool kept = false;
		for (size_t i = 0; i < n && !kept; i++)
			kept = strcmp(list[i]->name, s->files[k]->name) == 0;
		if (!kept)
			changes_add(changes, &used, "removed", s->files[k]->name);
	}
	for (size_t k = 0; k < s->n_files; k++)
		tls_entry_unref(s->files[k]);
	free(s->files);
	s->files = list;
	s->n_files = n;
	list = NULL;
	ok = true;
done:
	for (size_t i = 0; list != NULL && i < n; i++)
		tls_entry_unref(list[i]);
	free(list);
	wants_free(w, nw);
	return ok;
}

static bool str_eq(const char *a, const char *b)
{
	return same_key(a, b);
}

/* Every certificate's context again under the new policy (the old ones
 * stay with the connections and snapshots that hold them). */
static void repolicy(struct tls_store *s, struct tls_cert_entry **list, size_t n)
{
	char why[512];

	for (size_t i = 0; i < n; i++) {
		struct tls_cert_entry *e = tls_entry_repolicy(s, list[i], why, sizeof(why));
		if (e == NULL) {
			log_error("TLS certificate %s keeps the previous policy: %s", list[i]->name, why);
			continue;
		}
		tls_entry_unref(list[i]);
		list[i] = e;
	}
}

/* A new base context when the policy changed; false (old kept) on an error. */
static bool apply_policy(struct tls_store *s, const struct zkr_config *cfg, bool *changed,
			 char *why, size_t whylen)
{
	SSL_CTX *ctx, *old;
	char *mv = NULL, *ci = NULL, *cs = NULL;

	atomic_store(&s->strict_sni, cfg->tls_strict_sni);
	*changed = false;
	if (s->base_ctx != NULL && str_eq(s->min_version, cfg->tls_min_version) &&
	    str_eq(s->ciphers, cfg->tls_ciphers) && str_eq(s->ciphersuites, cfg->tls_ciphersuites))
		return true;
	ctx = tls_base_ctx_new(s, cfg->tls_min_version, cfg->tls_ciphers, cfg->tls_ciphersuites, why, whylen);
	if (ctx == NULL)
		return false;
	if ((mv = strdup(cfg->tls_min_version)) == NULL || (ci = strdup(cfg->tls_ciphers)) == NULL ||
	    (cs = strdup(cfg->tls_ciphersuites)) == NULL) {
		free(mv);
		free(ci);
		free(cs);
		SSL_CTX_free(ctx);
		snprintf(why, whylen, "out of memory");
		return false;
	}
	free(s->min_version);
	free(s->ciphers);
	free(s->ciphersuites);
	s->min_version = mv;
	s->ciphers = ci;
	s->ciphersuites = cs;
	pthread_mutex_lock(&s->lock);
	old = s->base_ctx;
	s->base_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
	/* Connections made from the old context keep it alive. */
	SSL_CTX_free(old);
	if (s->base_cb != NULL)
		s->base_cb(ctx, s->base_cb_arg);
	*changed = old != NULL;
	if (*changed) {
		repolicy(s, s->files, s->n_files);
		repolicy(s, s->records, s->n_records);
		tls_store_publish_now(s);
	}
	return true;
}

struct tls_store *tls_store_new(struct event_base *base, const struct zkr_config *cfg,
				char *why, size_t whylen)
{
	struct tls_store *s = calloc(1, sizeof(*s));
	char changes[CHANGES_MAX];
	bool changed, refused;
	struct timeval day = { TLS_DAY_S, 0 };

	if (s == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->strict_sni, false);
	if (!apply_policy(s, cfg, &changed, why, whylen))
		goto failed;
	if (!load_files(s, cfg, true, changes, &refused, why, whylen))
		goto failed;
	if (!tls_store_publish_now(s)) {
		snprintf(why, whylen, "out of memory");
		goto failed;
	}
	if (base != NULL) {
		s->publish_ev = event_new(base, -1, 0, tls_store_publish_cb, s);
		s->daily_ev = event_new(base, -1, EV_PERSIST, tls_store_daily_cb, s);
		if (s->publish_ev == NULL || s->daily_ev == NULL || event_add(s->daily_ev, &day) != 0) {
			snprintf(why, whylen, "cannot create the TLS timers");
			goto failed;
		}
	}
	for (size_t i = 0; i < s->n_files; i++)
		log_info("TLS certificate %s%s: %s%s (%s, not after %lld)", s->files[i]->name,
			 i == 0 ? " (default)" : "", s->files[i]->cert.names[0],
			 s->files[i]->cert.n_names > 1 ? " and more" : "",
			 s->files[i]->cert.key_type == ZKR_KEY_ECDSA ? "ECDSA" :
			 s->files[i]->cert.key_type == ZKR_KEY_RSA ? "RSA" : "other key",
			 (long long)s->files[i]->cert.not_after);
	return s;
failed:
	tls_store_free(s);
	return NULL;
}

bool tls_store_reload(struct tls_store *s, const struct zkr_config *cfg)
{
	char why[1024], changes[CHANGES_MAX];
	bool changed, refused, ok = true;

	if (!apply_policy(s, cfg, &changed, why, sizeof(why))) {
		log_error("TLS policy not changed: %s", why);
		ok = false;
	} else if (changed) {
		log_info("TLS policy changed (min %s): new connections use it; the session-ID cache starts empty",
			 s->min_version);
	}
	if (!load_files(s, cfg, false, changes, &refused, why, sizeof(why))) {
		log_error("TLS certificates not reloaded: %s", why);
		return false;
	}
	if (refused)
		ok = false;
	if (changes[0] != '\0') {
		tls_store_publish_now(s);
		log_info("TLS certificates reloaded: %s", changes);
	} else {
		log_info("TLS certificates reloaded: none changed");
	}
	return ok;
}

bool tls_store_add_record(struct tls_store *s, const char *path, const char *chain_pem,
			  size_t chain_len, const char *key_pem, size_t key_len)
{
	char why[512];
	struct tls_cert_entry *e, **grown;
	bool replaced;
	size_t i;

	e = tls_entry_new(s, path, TLS_SOURCE_RECORD, NULL, chain_pem, chain_len, key_pem, key_len,
			  why, sizeof(why));
	if (e == NULL) {
		log_warn("TLS certificate record %s skipped: %s", path, why);
		return false;
	}
	if (!zkr_cert_usable(&e->cert, time(NULL), why, sizeof(why))) {
		log_warn("TLS certificate record %s skipped: %s", path, why);
		tls_entry_unref(e);
		return false;
	}
	for (i = 0; i < s->n_records; i++)
		if (strcmp(s->records[i]->name, path) == 0)
			break;
	replaced = i < s->n_records;
	if (!replaced) {
		if ((grown = realloc(s->records, (s->n_records + 1) * sizeof(*grown))) == NULL) {
			log_error("TLS certificate record %s skipped: out of memory", path);
			tls_entry_unref(e);
			return false;
		}
		s->records = grown;
		s->n_records++;
	} else {
		tls_entry_unref(s->records[i]);
	}
	s->records[i] = e;
	log_info("TLS certificate record %s %s: %s%s", path, replaced ? "replaced" : "added",
		 e->cert.names[0], e->cert.n_names > 1 ? " and more" : "");
	tls_entry_warn_expiry(e, time(NULL));
	tls_store_publish_later(s);
	return true;
}

void tls_store_remove_record(struct tls_store *s, const char *path)
{
	for (size_t i = 0; i < s->n_records; i++) {
		if (strcmp(s->records[i]->name, path) != 0)
			continue;
		tls_entry_unref(s->records[i]);
		memmove(s->records + i, s->records + i + 1, (s->n_records - i - 1) * sizeof(*s->records));
		s->n_records--;
		log_info("TLS certificate record %s removed", path);
		tls_store_publish_later(s);
		return;
	}
}
