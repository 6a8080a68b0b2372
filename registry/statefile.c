/*
 * The routing table on disk (see statefile.h for the format and the model).
 *
 * The snapshot holds the table as the router resolved it, not the bytes it
 * read from ZooKeeper: a route_app_config maps back to an AppConfig whose
 * absent fields are the router defaults, and every routed instance to an
 * Instance. Reading rebuilds each app with the same route_app_* calls the
 * watcher uses and checks the result against the recorded digest, so a
 * table from disk is exactly the one that was published, or nothing.
 *
 * Writer thread:
 *
 *   event loop --statefile_save(t)--> pending (newest only) --> thread:
 *        wait for the interval since the last write, encode, write the
 *        temporary file, fsync, rename, fsync the directory
 *
 * The thread touches only the tables handed to it (immutable, atomically
 * refcounted) and its own fields under `mu`; it logs through the shared
 * logger, which writes each line with one call.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "registry/log.h"
#include "registry/threadsig.h"
#include "registry/record.h"
#include "registry/statefile.h"

static const char statefile_magic[8] = { 'Z', 'K', 'R', 'T', 'A', 'B', 'L', 'E' };

static uint64_t clock_ms(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static bool sha256(const uint8_t *buf, size_t len, uint8_t out[STATEFILE_SUM_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) == 1 && n == STATEFILE_SUM_LEN;
}

/* ---- encoding ------------------------------------------------------------ */

/* The AppConfig whose resolution (route_app_new) gives `c` back. The
 * strings are borrowed from the table, which outlives the packing. */
static void config_record(Zkrouter__AppConfig *r, const struct route_app_config *c)
{
	zkrouter__app_config__init(r);
	r->has_balance = true;
	r->balance = c->balance;
	r->hash_key = c->hash_key;
	r->has_connect_timeout_ms = c->connect_timeout_ms != 0;
	r->connect_timeout_ms = c->connect_timeout_ms;
	r->has_response_timeout_ms = c->response_timeout_ms != 0;
	r->response_timeout_ms = c->response_timeout_ms;
	r->has_idle_timeout_ms = c->idle_timeout_ms != 0;
	r->idle_timeout_ms = c->idle_timeout_ms;
	r->health_path = c->health_path;
	r->has_health_interval_ms = c->health_interval_ms != 0;
	r->health_interval_ms = c->health_interval_ms;
	r->sticky_cookie = c->sticky_cookie;
	r->has_redirect_https = true;
	r->redirect_https = c->redirect_https;
	r->has_max_connections = c->max_connections != 0;
	r->max_connections = c->max_connections;
	r->has_max_body_bytes = c->max_body_bytes != 0;
	r->max_body_bytes = c->max_body_bytes;
	r->has_retries = c->retries >= 0;
	r->retries = c->retries >= 0 ? (uint32_t)c->retries : 0;
	r->has_max_concurrent_requests = c->max_concurrent_requests != 0;
	r->max_concurrent_requests = c->max_concurrent_requests;
	r->has_max_queued_requests = c->max_queued_requests != 0;
	r->max_queued_requests = c->max_queued_requests;
	r->has_backend_protocol = c->backend_h2c;
	r->backend_protocol = c->backend_h2c ? ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C
					     : ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1;
}

static void instance_record(Zkrouter__Instance *r, const struct route_instance *in)
{
	zkrouter__instance__init(r);
	r->host = in->host;
	r->has_port = true;
	r->port = in->port;
	r->has_weight = true;
	r->weight = in->weight;
	r->zone = in->zone;
	r->has_state = true;
	r->state = in->draining ? ZKROUTER__INSTANCE__STATE__DRAINING : ZKROUTER__INSTANCE__STATE__UP;
	r->id = in->id;
	r->has_registered_at_ms = in->registered_at_ms != 0;
	r->registered_at_ms = in->registered_at_ms;
}

uint8_t *statefile_encode(const struct route_table *t, const char *chroot, const char *node_id,
			  uint64_t now_ms, size_t *len, char *why, size_t whylen)
{
	Zkrouter__TableSnapshot snap = ZKROUTER__TABLE_SNAPSHOT__INIT;
	Zkrouter__TableSnapshot__App *apps = NULL, **app_ptrs = NULL;
	Zkrouter__AppConfig *configs = NULL;
	Zkrouter__Instance *insts = NULL, **inst_ptrs = NULL;
	uint8_t *buf = NULL;
	size_t n_inst = 0, k = 0;

	for (size_t i = 0; i < t->n_apps; i++)
		n_inst += t->apps[i]->n_instances;
	/* One allocation per kind, whatever the table's size; +1 keeps malloc(0) out. */
	apps = calloc(t->n_apps + 1, sizeof(*apps));
	app_ptrs = calloc(t->n_apps + 1, sizeof(*app_ptrs));
	configs = calloc(t->n_apps + 1, sizeof(*configs));
	insts = calloc(n_inst + 1, sizeof(*insts));
	inst_ptrs = calloc(n_inst + 1, sizeof(*inst_ptrs));
	if (apps == NULL || app_ptrs == NULL || configs == NULL || insts == NULL || inst_ptrs == NULL) {
		zkr_set_why(why, whylen, "out of memory encoding %zu apps", t->n_apps);
		goto done;
	}
	for (size_t i = 0; i < t->n_apps; i++) {
		const struct route_app *a = t->apps[i];
		char rwhy[RECORD_WHY_MAX];
		zkrouter__table_snapshot__app__init(&apps[i]);
		apps[i].domain = a->domain;
		config_record(&configs[i], &a->config);
		if (!record_app_config_validate(&configs[i], rwhy, sizeof(rwhy))) {
			zkr_set_why(why, whylen, "app %s: config: %s", a->domain, rwhy);
			goto done;
		}
		apps[i].config = &configs[i];
		apps[i].n_instances = a->n_instances;
		apps[i].instances = &inst_ptrs[k];
		for (size_t j = 0; j < a->n_instances; j++, k++) {
			instance_record(&insts[k], &a->instances[j]);
			if (!record_instance_validate(&insts[k], rwhy, sizeof(rwhy))) {
				zkr_set_why(why, whylen, "app %s: instance %s: %s", a->domain, a->instances[j].id, rwhy);
				goto done;
			}
			inst_ptrs[k] = &insts[k];
		}
		app_ptrs[i] = &apps[i];
	}
	snap.node_id = (char *)node_id;
	snap.chroot = (char *)chroot;
	snap.has_written_at_ms = true;
	snap.written_at_ms = now_ms;
	snap.has_generation = true;
	snap.generation = t->generation;
	snap.digest = (char *)t->digest_hex;
	snap.n_apps = t->n_apps;
	snap.apps = app_ptrs;

	size_t plen = zkrouter__table_snapshot__get_packed_size(&snap);
	if (plen > STATEFILE_MAX_PAYLOAD) {
		zkr_set_why(why, whylen, "table packs to %zu bytes, more than the %u-byte limit", plen,
			STATEFILE_MAX_PAYLOAD);
		goto done;
	}
	if ((buf = malloc(STATEFILE_HEADER_LEN + plen + STATEFILE_SUM_LEN)) == NULL) {
		zkr_set_why(why, whylen, "out of memory for %zu bytes", plen);
		goto done;
	}
	memcpy(buf, statefile_magic, sizeof(statefile_magic));
	put_be(buf + 8, STATEFILE_VERSION, 4);
	put_be(buf + 12, plen, 8);
	zkrouter__table_snapshot__pack(&snap, buf + STATEFILE_HEADER_LEN);
	if (!sha256(buf, STATEFILE_HEADER_LEN + plen, buf + STATEFILE_HEADER_LEN + plen)) {
		zkr_set_why(why, whylen, "SHA-256 failed");
		free(buf);
		buf = NULL;
		goto done;
	}
	*len = STATEFILE_HEADER_LEN + plen + STATEFILE_SUM_LEN;
done:
	free(apps);
	free(app_ptrs);
	free(configs);
	free(insts);
	free(inst_ptrs);
	return buf;
}

/* ---- decoding ------------------------------------------------------------ */

/* One app of the snapshot as a sealed route_app, or NULL with a reason. */
static struct route_app *app_from_record(const Zkrouter__TableSnapshot__App *r, char *why,
					 size_t whylen)
{
	char rwhy[RECORD_WHY_MAX];
	struct route_app *a;

	if (r->config != NULL && !record_app_config_validate(r->config, rwhy, sizeof(rwhy))) {
		zkr_set_why(why, whylen, "app %s: config: %s", r->domain, rwhy);
		return NULL;
	}
	if ((a = route_app_new(r->domain, r->config)) == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		return NULL;
	}
	for (size_t j = 0; j < r->n_instances; j++) {
		const Zkrouter__Instance *in = r->instances[j];
		if (in->id == NULL) {
			zkr_set_why(why, whylen, "app %s: instance %zu has no id", r->domain, j);
			goto failed;
		}
		if (!record_instance_validate(in, rwhy, sizeof(rwhy))) {
			zkr_set_why(why, whylen, "app %s: instance %.64s: %s", r->domain, in->id, rwhy);
			goto failed;
		}
		if (!route_app_add_instance(a, in->id, in)) {
			zkr_set_why(why, whylen, "out of memory");
			goto failed;
		}
	}
	route_app_seal(a);
	for (size_t j = 1; j < a->n_instances; j++) {
		if (strcmp(a->instances[j - 1].id, a->instances[j].id) == 0) {
			zkr_set_why(why, whylen, "app %s: instance %s twice", r->domain, a->instances[j].id);
			goto failed;
		}
	}
	return a;
failed:
	route_app_unref(a);
	return NULL;
}

static struct route_table *table_from_record(const Zkrouter__TableSnapshot *snap, char *why,
					     size_t whylen)
{
	struct route_app **apps = calloc(snap->n_apps + 1, sizeof(*apps));
	size_t n = 0;

	if (apps == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		return NULL;
	}
	for (; n < snap->n_apps; n++) {
		const Zkrouter__TableSnapshot__App *r = snap->apps[n];
		if (r->domain == NULL || !record_valid_domain(r->domain)) {
			zkr_set_why(why, whylen, "app %zu: domain \"%.64s\" missing or invalid", n,
				r->domain ? r->domain : "");
			goto failed;
		}
		if (n > 0 && strcmp(snap->apps[n - 1]->domain, r->domain) >= 0) {
			zkr_set_why(why, whylen, "apps out of order or twice at %s", r->domain);
			goto failed;
		}
		if ((apps[n] = app_from_record(r, why, whylen)) == NULL)
			goto failed;
	}
	struct route_table *t = route_table_from_apps(apps, n);   /* takes the references */
	free(apps);
	if (t == NULL)
		zkr_set_why(why, whylen, "out of memory");
	return t;
failed:
	for (size_t i = 0; i < n; i++)
		route_app_unref(apps[i]);
	free(apps);
	return NULL;
}

struct route_table *statefile_decode(const uint8_t *buf, size_t len, const char *chroot,
				     struct statefile_meta *meta, char *why, size_t whylen)
{
	uint8_t sum[STATEFILE_SUM_LEN];
	Zkrouter__TableSnapshot *snap = NULL;
	struct route_table *t = NULL;

	if (len < STATEFILE_HEADER_LEN) {
		zkr_set_why(why, whylen, "truncated: %zu bytes, shorter than the %d-byte header", len,
			STATEFILE_HEADER_LEN);
		return NULL;
	}
	if (memcmp(buf, statefile_magic, sizeof(statefile_magic)) != 0) {
		zkr_set_why(why, whylen, "not a zkrouter table file (bad magic)");
		return NULL;
	}
	uint64_t version = get_be(buf + 8, 4);
	if (version != STATEFILE_VERSION) {
		zkr_set_why(why, whylen, "format version %llu, this zkrouterd reads version %d",
			(unsigned long long)version, STATEFILE_VERSION);
		return NULL;
	}
	uint64_t plen = get_be(buf + 12, 8);
	if (plen > STATEFILE_MAX_PAYLOAD) {
		zkr_set_why(why, whylen, "corrupt: payload length %llu above the %u-byte limit",
			(unsigned long long)plen, STATEFILE_MAX_PAYLOAD);
		return NULL;
	}
	uint64_t want = STATEFILE_HEADER_LEN + plen + STATEFILE_SUM_LEN;
	if (len < want) {
		zkr_set_why(why, whylen, "truncated: %zu of %llu bytes", len, (unsigned long long)want);
		return NULL;
	}
	if (len > want) {
		zkr_set_why(why, whylen, "corrupt: %zu bytes, the header announces %llu", len,
			(unsigned long long)want);
		return NULL;
	}
	if (!sha256(buf, STATEFILE_HEADER_LEN + plen, sum)) {
		zkr_set_why(why, whylen, "SHA-256 failed");
		return NULL;
	}
	if (memcmp(sum, buf + STATEFILE_HEADER_LEN + plen, STATEFILE_SUM_LEN) != 0) {
		zkr_set_why(why, whylen, "corrupt: SHA-256 checksum mismatch");
		return NULL;
	}
	snap = zkrouter__table_snapshot__unpack(NULL, (size_t)plen, buf + STATEFILE_HEADER_LEN);
	if (snap == NULL) {
		zkr_set_why(why, whylen, "payload is not a TableSnapshot record");
		return NULL;
	}
	if (snap->chroot == NULL || strcmp(snap->chroot, chroot) != 0) {
		zkr_set_why(why, whylen, "written for ZooKeeper chroot %.200s, this router uses %.200s",
			snap->chroot ? snap->chroot : "(none)", chroot);
		goto done;
	}
	if ((t = table_from_record(snap, why, whylen)) == NULL)
		goto done;
	if (snap->digest == NULL || strcmp(snap->digest, t->digest_hex) != 0) {
		zkr_set_why(why, whylen, "the rebuilt table does not match the recorded digest %.64s",
			snap->digest ? snap->digest : "(none)");
		route_table_unref(t);
		t = NULL;
		goto done;
	}
	if (meta != NULL) {
		memset(meta, 0, sizeof(*meta));
		meta->written_at_ms = snap->has_written_at_ms ? snap->written_at_ms : 0;
		meta->generation = snap->has_generation ? snap->generation : 0;
		if (snap->node_id != NULL)
			snprintf(meta->node_id, sizeof(meta->node_id), "%s", snap->node_id);
	}
done:
	zkrouter__table_snapshot__free_unpacked(snap, NULL);
	return t;
}

/* ---- files --------------------------------------------------------------- */

static bool write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* The directory part of `path` ("." if none), malloc'd. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * Temporary file, fsync, rename over the old file, fsync of the directory:
 * after a crash at any point the path holds either the old file or the
 * new one, both whole, and once this returns true the new one survives a
 * power loss.
 */
static bool write_atomic(const char *path, const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + sizeof(".tmp"));
	char *dir = dir_of(path);
	int fd = -1, dfd = -1;
	bool ok = false, created = false;

	if (tmp == NULL || dir == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		goto done;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", sizeof(".tmp"));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		zkr_set_why(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
		goto done;
	}
	created = true;
	if (!write_all(fd, buf, len)) {
		zkr_set_why(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (fsync(fd) != 0) {
		zkr_set_why(why, whylen, "fsync %s: %s", tmp, strerror(errno));
		goto done;
	}
	int rc = close(fd);
	fd = -1;
	if (rc != 0) {
		zkr_set_why(why, whylen, "close %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (rename(tmp, path) != 0) {
		zkr_set_why(why, whylen, "rename %s to %s: %s", tmp, path, strerror(errno));
		goto done;
	}
	created = false;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0) {
		zkr_set_why(why, whylen, "fsync of directory %s: %s", dir, strerror(errno));
		goto done;
	}
	ok = true;
done:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (created)
		unlink(tmp);
	free(tmp);
	free(dir);
	return ok;
}

bool statefile_write(const char *path, const struct route_table *t, const char *chroot,
		     const char *node_id, char *why, size_t whylen)
{
	size_t len = 0;
	uint8_t *buf = statefile_encode(t, chroot, node_id, clock_ms(CLOCK_REALTIME), &len, why, whylen);
	if (buf == NULL)
		return false;
	bool ok = write_atomic(path, buf, len, why, whylen);
	free(buf);
	return ok;
}

struct route_table *statefile_read(const char *path, const char *chroot, struct statefile_meta *meta,
				   char *why, size_t whylen)
{
	struct route_table *t = NULL;
	uint8_t *buf = NULL;
	size_t got = 0;
	struct stat st;
	int err = EINVAL;
	/* O_NONBLOCK: a FIFO put at the path must not hang the start (it is
	 * refused below, as anything but a regular file is). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		err = errno;
		zkr_set_why(why, whylen, "%s", err == ENOENT ? "no such file" : strerror(err));
		goto done;
	}
	if (fstat(fd, &st) != 0) {
		err = errno;
		zkr_set_why(why, whylen, "fstat: %s", strerror(err));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		zkr_set_why(why, whylen, "not a regular file");
		goto done;
	}
	if ((uint64_t)st.st_size > (uint64_t)STATEFILE_HEADER_LEN + STATEFILE_MAX_PAYLOAD + STATEFILE_SUM_LEN) {
		zkr_set_why(why, whylen, "corrupt: %lld bytes, more than any table file", (long long)st.st_size);
		goto done;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		err = ENOMEM;
		zkr_set_why(why, whylen, "out of memory for %lld bytes", (long long)st.st_size);
		goto done;
	}
	/* Read one byte more than fstat said: a file that grew since is
	 * reported as such by the length check, not silently cut. */
	while (got < (size_t)st.st_size + 1) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			zkr_set_why(why, whylen, "read: %s", strerror(err));
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	t = statefile_decode(buf, got, chroot, meta, why, whylen);
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	errno = t != NULL ? 0 : err;
	return t;
}

/* ---- the writer ------------------------------------------------------------ */

struct statefile {
	char *path, *node_id, *chroot;
	unsigned interval_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;         /* on CLOCK_MONOTONIC */
	pthread_t thread;
	bool mu_ok, cv_ok, thread_ok;

	/* under mu */
	struct route_table *pending;   /* newest table not written yet */
	bool stop;
	bool wrote_once;
	struct timespec last_write;    /* monotonic, end of the last attempt */
	bool failing;                  /* in a streak of failed writes (logged once) */
	struct statefile_stats stats;
};

static void ts_add_ms(struct timespec *ts, unsigned ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* One write, outside the lock; the result is recorded under it, and
 * logged after it (a slow log must not hold up statefile_save). */
static void writer_write(struct statefile *sf, struct route_table *t)
{
	char why[STATEFILE_WHY_MAX];
	uint64_t t0 = clock_ms(CLOCK_MONOTONIC);
	bool ok = statefile_write(sf->path, t, sf->chroot, sf->node_id, why, sizeof(why));
	uint64_t took = clock_ms(CLOCK_MONOTONIC) - t0;
	bool was_failing;

	pthread_mutex_lock(&sf->mu);
	clock_gettime(CLOCK_MONOTONIC, &sf->last_write);
	sf->wrote_once = true;
	was_failing = sf->failing;
	sf->failing = !ok;
	if (ok) {
		sf->stats.writes++;
		sf->stats.written_generation = t->generation;
	} else {
		sf->stats.write_errors++;
		/* Retry this table after the interval unless a newer one came
		 * (never at stop: a disk that fails must not hold up the exit). */
		if (sf->pending == NULL && !sf->stop)
			sf->pending = route_table_ref(t);
	}
	pthread_mutex_unlock(&sf->mu);

	if (ok && was_failing)
		log_info("state file %s written again", sf->path);
	if (ok)
		log_debug("state file %s: generation %llu, %zu apps written in %llu ms", sf->path,
			  (unsigned long long)t->generation, t->n_apps, (unsigned long long)took);
	else if (!was_failing)   /* once per streak of failures */
		log_warn("state file %s not written: %s; routing is unaffected, retrying", sf->path, why);
}

static void *writer_main(void *arg)
{
	struct statefile *sf = arg;

	pthread_mutex_lock(&sf->mu);
	for (;;) {
		while (sf->pending == NULL && !sf->stop)
			pthread_cond_wait(&sf->cv, &sf->mu);
		if (sf->pending == NULL)
			break;
		/* At most one write per interval: a burst of changes costs one
		 * write, of the newest table. Stop skips the wait. */
		if (sf->wrote_once) {
			struct timespec until = sf->last_write, now;
			ts_add_ms(&until, sf->interval_ms);
			for (;;) {
				clock_gettime(CLOCK_MONOTONIC, &now);
				if (sf->stop || !ts_before(&now, &until))
					break;
				pthread_cond_timedwait(&sf->cv, &sf->mu, &until);
			}
		}
		struct route_table *t = sf->pending;
		sf->pending = NULL;
		pthread_mutex_unlock(&sf->mu);
		writer_write(sf, t);
		route_table_unref(t);
		pthread_mutex_lock(&sf->mu);
	}
	pthread_mutex_unlock(&sf->mu);
	return NULL;
}

/* Creates `dir` (one level) and proves that files can be made in it. */
static bool dir_ready(const char *dir, const char *path, char *why, size_t whylen)
{
	struct stat st;
	char probe[4096];

	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		zkr_set_why(why, whylen, "cannot create %s: %s", dir, strerror(errno));
		return false;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		zkr_set_why(why, whylen, "%s is not a directory", dir);
		return false;
	}
	if ((size_t)snprintf(probe, sizeof(probe), "%s.tmp", path) >= sizeof(probe)) {
		zkr_set_why(why, whylen, "path %s too long", path);
		return false;
	}
	int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		zkr_set_why(why, whylen, "cannot write in %s: %s", dir, strerror(errno));
		return false;
	}
	close(fd);
	unlink(probe);
	return true;
}

struct statefile *statefile_open(const char *dir, const char *node_id, const char *chroot,
				 unsigned min_interval_ms, char *why, size_t whylen)
{
	struct statefile *sf = calloc(1, sizeof(*sf));
	pthread_condattr_t ca;
	size_t plen = strlen(dir) + sizeof("/table-") + strlen(node_id);

	if (sf == NULL || (sf->node_id = strdup(node_id)) == NULL || (sf->chroot = strdup(chroot)) == NULL ||
	    (sf->path = malloc(plen)) == NULL) {
		zkr_set_why(why, whylen, "out of memory");
		goto failed;
	}
	snprintf(sf->path, plen, "%s/table-%s", dir, node_id);
	sf->interval_ms = min_interval_ms;
	if (!dir_ready(dir, sf->path, why, whylen))
		goto failed;
	if (pthread_mutex_init(&sf->mu, NULL) != 0)
		goto no_thread;
	sf->mu_ok = true;
	if (pthread_condattr_init(&ca) != 0)
		goto no_thread;
	bool cv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		  pthread_cond_init(&sf->cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!cv)
		goto no_thread;
	sf->cv_ok = true;
	/* The daemon's signals (HUP, TERM) reach the event loop's thread
	 * only (registry/threadsig.h). */
	sigset_t old;
	threadsig_block_for_start(&old);
	sf->thread_ok = pthread_create(&sf->thread, NULL, writer_main, sf) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!sf->thread_ok)
		goto no_thread;
	return sf;
no_thread:
	zkr_set_why(why, whylen, "cannot start the writer thread");
failed:
	statefile_close(sf);
	return NULL;
}

const char *statefile_path(const struct statefile *sf)
{
	return sf->path;
}

struct route_table *statefile_load(struct statefile *sf, struct statefile_meta *meta, char *why,
				   size_t whylen)
{
	return statefile_read(sf->path, sf->chroot, meta, why, whylen);
}

void statefile_save(struct statefile *sf, struct route_table *t)
{
	pthread_mutex_lock(&sf->mu);
	struct route_table *old = sf->pending;
	sf->pending = route_table_ref(t);
	pthread_cond_signal(&sf->cv);
	pthread_mutex_unlock(&sf->mu);
	route_table_unref(old);
}

void statefile_get_stats(struct statefile *sf, struct statefile_stats *out)
{
	pthread_mutex_lock(&sf->mu);
	*out = sf->stats;
	pthread_mutex_unlock(&sf->mu);
}

void statefile_close(struct statefile *sf)
{
	if (sf == NULL)
		return;
	if (sf->thread_ok) {
		pthread_mutex_lock(&sf->mu);
		sf->stop = true;
		pthread_cond_signal(&sf->cv);
		pthread_mutex_unlock(&sf->mu);
		pthread_join(sf->thread, NULL);
	}
	if (sf->cv_ok)
		pthread_cond_destroy(&sf->cv);
	if (sf->mu_ok)
		pthread_mutex_destroy(&sf->mu);
	route_table_unref(sf->pending);
	free(sf->path);
	free(sf->node_id);
	free(sf->chroot);
	free(sf);
}
