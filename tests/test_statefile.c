/*
 * State-file suite: a table survives the round trip through the file
 * format exactly (same digest, every resolved field), and every damaged
 * or foreign file is refused with its reason: each truncation, each single
 * bit flipped, another format version, another chroot, a record this
 * router would refuse, a digest that does not match. Then the files
 * themselves (atomic write, missing file) and the rate-limited writer.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "registry/statefile.h"
#include "registry/table.h"
#include "tests/lib/unit.h"

#define CHROOT "/zkrouter"

static void add(struct route_app *a, const char *id, const char *host, uint32_t port, uint32_t weight,
		const char *zone, bool draining, uint64_t registered_at_ms)
{
	record_instance r = ZKROUTER__INSTANCE__INIT;
	r.host = (char *)host;
	r.has_port = true;
	r.port = port;
	r.weight = weight;
	r.zone = (char *)zone;
	r.state = draining ? ZKROUTER__INSTANCE__STATE__DRAINING : ZKROUTER__INSTANCE__STATE__UP;
	r.has_registered_at_ms = registered_at_ms != 0;
	r.registered_at_ms = registered_at_ms;
	CU_ASSERT_TRUE_FATAL(route_app_add_instance(a, id, &r));
}

/* Three apps that use every field: a full config (retries 0, which differs
 * from "absent"), a wildcard with defaults and no instance, and one with
 * only some fields. `variant` changes one instance, for a second table. */
static struct route_table *sample(int variant)
{
	record_app_config c = ZKROUTER__APP_CONFIG__INIT;
	c.balance = ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER;
	c.hash_key = "X-User";
	c.has_connect_timeout_ms = true;
	c.connect_timeout_ms = 1500;
	c.has_response_timeout_ms = true;
	c.response_timeout_ms = 30000;
	c.has_idle_timeout_ms = true;
	c.idle_timeout_ms = 9000;
	c.health_path = "/healthz?deep=1";
	c.has_health_interval_ms = true;
	c.health_interval_ms = 700;
	c.sticky_cookie = "srv";
	c.redirect_https = true;
	c.has_max_connections = true;
	c.max_connections = 50;
	c.has_max_body_bytes = true;
	c.max_body_bytes = 1u << 30;
	c.has_retries = true;
	c.retries = 0;
	c.has_max_concurrent_requests = true;
	c.max_concurrent_requests = 40;
	c.has_max_queued_requests = true;
	c.max_queued_requests = 50;
	c.has_backend_protocol = true;
	c.backend_protocol = ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C;
	struct route_app *a = route_app_new("api.example.com", &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	add(a, "web-2", "10.0.0.2", 8080, 7, "zone-b", true, 1700000000123ULL);
	add(a, "web-1", "app1.internal.example", 8443 + variant, 100, NULL, false, 0);
	add(a, "web-3", "::1", 1, 10000, "", false, 0);
	route_app_seal(a);

	struct route_app *w = route_app_new("*.wild.test", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	route_app_seal(w);

	record_app_config c2 = ZKROUTER__APP_CONFIG__INIT;
	c2.balance = ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN;
	c2.has_retries = true;
	c2.retries = 10;
	struct route_app *b = route_app_new("b.test", &c2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	add(b, "b1", "127.0.0.1", 9000, 1, NULL, false, 0);
	route_app_seal(b);

	struct route_app *apps[] = { w, a, b };   /* "*" < "a" < "b" */
	struct route_table *t = route_table_from_apps(apps, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	t->generation = 42;
	return t;
}

static uint8_t *encode(const struct route_table *t, size_t *len)
{
	char why[STATEFILE_WHY_MAX] = "";
	uint8_t *buf = statefile_encode(t, CHROOT, "r1", 1234567, len, why, sizeof(why));
	if (buf == NULL)
		fprintf(stderr, "encode: %s\n", why);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	return buf;
}

/* Decodes a file image that must be refused; returns the reason. */
static const char *refused(const uint8_t *buf, size_t len, const char *chroot)
{
	static char why[STATEFILE_WHY_MAX];
	why[0] = '\0';
	struct route_table *t = statefile_decode(buf, len, chroot, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NULL(t);
	route_table_unref(t);
	CU_ASSERT(why[0] != '\0');
	return why;
}

static void assert_same(const struct route_table *x, const struct route_table *y)
{
	CU_ASSERT_STRING_EQUAL(x->digest_hex, y->digest_hex);
	CU_ASSERT_EQUAL_FATAL(x->n_apps, y->n_apps);
	for (size_t i = 0; i < x->n_apps; i++) {
		const struct route_app *a = x->apps[i], *b = y->apps[i];
		CU_ASSERT_STRING_EQUAL(a->domain, b->domain);
		CU_ASSERT_EQUAL(memcmp(a->digest, b->digest, ROUTE_DIGEST_LEN), 0);
		CU_ASSERT_EQUAL(a->config.retries, b->config.retries);
		CU_ASSERT_EQUAL(a->config.max_concurrent_requests, b->config.max_concurrent_requests);
		CU_ASSERT_EQUAL(a->config.max_queued_requests, b->config.max_queued_requests);
		CU_ASSERT_EQUAL(a->config.backend_h2c, b->config.backend_h2c);
		CU_ASSERT_EQUAL_FATAL(a->n_instances, b->n_instances);
		for (size_t j = 0; j < a->n_instances; j++) {
			CU_ASSERT_STRING_EQUAL(a->instances[j].id, b->instances[j].id);
			CU_ASSERT_EQUAL(a->instances[j].draining, b->instances[j].draining);
			CU_ASSERT_EQUAL(a->instances[j].registered_at_ms, b->instances[j].registered_at_ms);
		}
	}
}

static void test_round_trip(void)
{
	struct route_table *t = sample(0);
	size_t len = 0;
	uint8_t *buf = encode(t, &len);
	struct statefile_meta meta;
	char why[STATEFILE_WHY_MAX] = "";
	struct route_table *back = statefile_decode(buf, len, CHROOT, &meta, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(t, back);
	CU_ASSERT_EQUAL(back->generation, 0);   /* the reader's own count starts over */
	CU_ASSERT_EQUAL(meta.generation, 42);
	CU_ASSERT_EQUAL(meta.written_at_ms, 1234567);
	CU_ASSERT_STRING_EQUAL(meta.node_id, "r1");

	/* Spot checks of the resolved config beyond the digest. */
	const struct route_app *a = route_table_find(back, "api.example.com", 15);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(a->config.retries, 0);
	CU_ASSERT_EQUAL(a->config.health_interval_ms, 700);
	CU_ASSERT_STRING_EQUAL(a->config.hash_key, "X-User");
	CU_ASSERT_STRING_EQUAL(a->instances[1].zone, "zone-b");
	CU_ASSERT_PTR_NULL(a->instances[0].zone);
	CU_ASSERT_STRING_EQUAL(a->instances[2].zone, "");   /* "" and NULL differ */
	const struct route_app *w = route_table_match(back, "x.wild.test", 11);
	CU_ASSERT_PTR_NOT_NULL(w);
	CU_ASSERT_EQUAL(w ? w->config.retries : 0, -1);
	route_table_unref(back);
	free(buf);

	/* An empty table is a table too. */
	struct route_table *e = route_table_new();
	buf = encode(e, &len);
	back = statefile_decode(buf, len, CHROOT, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_EQUAL(back->n_apps, 0);
	CU_ASSERT_STRING_EQUAL(back->digest_hex, e->digest_hex);
	route_table_unref(back);
	route_table_unref(e);
	free(buf);
	route_table_unref(t);
}

static void test_truncated(void)
{
	struct route_table *t = sample(0);
	size_t len = 0;
	uint8_t *buf = encode(t, &len);
	for (size_t n = 0; n < len; n++)
		CU_ASSERT_PTR_NOT_NULL(strstr(refused(buf, n, CHROOT), "truncated"));
	/* And a byte too many. */
	uint8_t *more = malloc(len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(more);
	memcpy(more, buf, len);
	more[len] = 0;
	CU_ASSERT_PTR_NOT_NULL(strstr(refused(more, len + 1, CHROOT), "corrupt"));
	free(more);
	free(buf);
	route_table_unref(t);
}

static void test_bit_flipped(void)
{
	struct route_table *t = sample(0);
	size_t len = 0;
	uint8_t *buf = encode(t, &len);
	size_t payload_seen = 0, header_seen = 0;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			const char *why = refused(buf, len, CHROOT);
			if (i >= STATEFILE_HEADER_LEN)
				payload_seen += strstr(why, "checksum") != NULL;
			else
				header_seen++;
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Every flip past the header is caught by the checksum. */
	CU_ASSERT_EQUAL(payload_seen, (len - STATEFILE_HEADER_LEN) * 8);
	CU_ASSERT_EQUAL(header_seen, STATEFILE_HEADER_LEN * 8);
	CU_ASSERT_PTR_NOT_NULL(strstr(refused((const uint8_t *)"not a table file at all", 23, CHROOT),
				      "bad magic"));
	free(buf);
	route_table_unref(t);
}

/* Header and checksum around `payload`, the way the format is documented
 * (statefile.h), written here independently of the encoder. */
static uint8_t *wrap(uint32_t version, const uint8_t *payload, size_t plen, size_t *len)
{
	uint8_t *buf = malloc(STATEFILE_HEADER_LEN + plen + STATEFILE_SUM_LEN);
	unsigned int n = 0;
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memcpy(buf, "ZKRTABLE", 8);
	for (int i = 0; i < 4; i++)
		buf[8 + i] = (uint8_t)(version >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		buf[12 + i] = (uint8_t)((uint64_t)plen >> (56 - 8 * i));
	memcpy(buf + STATEFILE_HEADER_LEN, payload, plen);
	CU_ASSERT_EQUAL(EVP_Digest(buf, STATEFILE_HEADER_LEN + plen, buf + STATEFILE_HEADER_LEN + plen, &n,
				   EVP_sha256(), NULL), 1);
	*len = STATEFILE_HEADER_LEN + plen + STATEFILE_SUM_LEN;
	return buf;
}

static void test_wrong_version(void)
{
	struct route_table *t = sample(0);
	size_t len = 0, wlen = 0;
	uint8_t *buf = encode(t, &len);
	const uint8_t *payload = buf + STATEFILE_HEADER_LEN;
	size_t plen = len - STATEFILE_HEADER_LEN - STATEFILE_SUM_LEN;

	/* The encoder writes exactly the documented layout. */
	uint8_t *same = wrap(STATEFILE_VERSION, payload, plen, &wlen);
	CU_ASSERT_EQUAL(wlen, len);
	CU_ASSERT_EQUAL(memcmp(same, buf, len), 0);
	free(same);

	uint32_t versions[] = { 0, STATEFILE_VERSION + 1, 0xffffffffu };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		uint8_t *other = wrap(versions[i], payload, plen, &wlen);
		CU_ASSERT_PTR_NOT_NULL(strstr(refused(other, wlen, CHROOT), "format version"));
		free(other);
	}
	free(buf);
	route_table_unref(t);
}

static void test_other_chroot(void)
{
	struct route_table *t = sample(0);
	size_t len = 0;
	uint8_t *buf = encode(t, &len);
	CU_ASSERT_PTR_NOT_NULL(strstr(refused(buf, len, "/other"), "chroot"));
	CU_ASSERT_PTR_NOT_NULL(strstr(refused(buf, len, "/"), "chroot"));
	free(buf);
	route_table_unref(t);
}

/* A well-framed file whose content this router refuses: the whole file. */
static const char *refused_snapshot(const Zkrouter__TableSnapshot *s)
{
	size_t plen = zkrouter__table_snapshot__get_packed_size(s), len = 0;
	uint8_t *payload = malloc(plen + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
	zkrouter__table_snapshot__pack(s, payload);
	uint8_t *buf = wrap(STATEFILE_VERSION, payload, plen, &len);
	const char *why = refused(buf, len, CHROOT);
	free(buf);
	free(payload);
	return why;
}

static void test_bad_content(void)
{
	Zkrouter__Instance in = ZKROUTER__INSTANCE__INIT, *ins[] = { &in };
	Zkrouter__TableSnapshot__App app = ZKROUTER__TABLE_SNAPSHOT__APP__INIT, app2 = app;
	Zkrouter__TableSnapshot__App *apps[] = { &app, &app2 };
	Zkrouter__TableSnapshot s = ZKROUTER__TABLE_SNAPSHOT__INIT;
	Zkrouter__AppConfig cfg = ZKROUTER__APP_CONFIG__INIT;
	struct route_table *e = route_table_new();

	s.chroot = CHROOT;
	s.digest = e->digest_hex;
	/* The control: this hand-made empty table is accepted. */
	size_t plen = zkrouter__table_snapshot__get_packed_size(&s), len = 0;
	uint8_t payload[256], *buf;
	CU_ASSERT_FATAL(plen <= sizeof(payload));
	zkrouter__table_snapshot__pack(&s, payload);
	buf = wrap(STATEFILE_VERSION, payload, plen, &len);
	struct route_table *ok = statefile_decode(buf, len, CHROOT, NULL, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(ok);
	route_table_unref(ok);
	free(buf);

	in.host = "127.0.0.1";
	in.has_port = true;
	in.port = 0;
	in.id = "i1";
	app.domain = "a.test";
	app.n_instances = 1;
	app.instances = ins;
	s.n_apps = 1;
	s.apps = apps;
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "port 0"));
	in.port = 80;
	in.id = NULL;
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "no id"));
	in.id = "i1";
	app.domain = "Not_A_Domain";
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "domain"));
	app.domain = "a.test";
	cfg.has_retries = true;
	cfg.retries = 99;
	app.config = &cfg;
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "retries"));
	app.config = NULL;
	/* Well-formed, but not the table its digest names. */
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "digest"));
	/* Two apps out of order, and one domain twice. */
	app2 = app;
	app2.domain = "0.test";
	s.n_apps = 2;
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "out of order"));
	app2.domain = "a.test";
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "out of order"));
	/* One instance twice in an app. */
	Zkrouter__Instance *twice[] = { &in, &in };
	app.instances = twice;
	app.n_instances = 2;
	s.n_apps = 1;
	CU_ASSERT_PTR_NOT_NULL(strstr(refused_snapshot(&s), "twice"));
	/* Not a TableSnapshot at all, behind a valid header and checksum. */
	uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff };
	buf = wrap(STATEFILE_VERSION, junk, sizeof(junk), &len);
	CU_ASSERT_PTR_NOT_NULL(strstr(refused(buf, len, CHROOT), "not a TableSnapshot"));
	free(buf);
	route_table_unref(e);
}

static char tmpdir[64];

static int files_init(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zkr-statefile.XXXXXX");
	return mkdtemp(tmpdir) == NULL;
}

static int files_clean(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) != 0;
}

static void test_files(void)
{
	char path[128], tmp[160], why[STATEFILE_WHY_MAX] = "";
	struct statefile_meta meta;
	struct route_table *t = sample(0), *t2 = sample(1), *back;

	snprintf(path, sizeof(path), "%s/table-x", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	/* Missing file: no table, errno ENOENT, no error to speak of. */
	back = statefile_read(path, CHROOT, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NULL(back);
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no such file"));

	/* A FIFO at the path is refused at once (opening it must not wait
	 * for a writer that never comes). */
	CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
	back = statefile_read(path, CHROOT, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NULL(back);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "regular"));
	CU_ASSERT_EQUAL(unlink(path), 0);

	CU_ASSERT_TRUE_FATAL(statefile_write(path, t, CHROOT, "r1", why, sizeof(why)));
	CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);   /* renamed away */
	back = statefile_read(path, CHROOT, &meta, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(t, back);
	CU_ASSERT(meta.written_at_ms > 1600000000000ULL);   /* wall clock, in ms */
	route_table_unref(back);

	/* Replaced whole. */
	CU_ASSERT_TRUE_FATAL(statefile_write(path, t2, CHROOT, "r1", why, sizeof(why)));
	back = statefile_read(path, CHROOT, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(t2, back);
	route_table_unref(back);

	/* A directory in its place is no table, and says so. */
	back = statefile_read(tmpdir, CHROOT, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NULL(back);
	CU_ASSERT_NOT_EQUAL(errno, ENOENT);

	/* Truncated on disk. */
	CU_ASSERT_EQUAL(truncate(path, 100), 0);
	back = statefile_read(path, CHROOT, NULL, why, sizeof(why));
	CU_ASSERT_PTR_NULL(back);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "truncated"));
	route_table_unref(t);
	route_table_unref(t2);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls the writer until it has written generation `gen` (10 s at most). */
static bool wait_written(struct statefile *sf, uint64_t gen)
{
	struct statefile_stats st;
	for (int i = 0; i < 1000; i++) {
		statefile_get_stats(sf, &st);
		if (st.written_generation == gen)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_writer(void)
{
	char dir[128], why[STATEFILE_WHY_MAX] = "";
	struct statefile_stats st;
	struct statefile_meta meta;
	struct route_table *t1 = sample(0), *t2 = sample(1), *t3 = sample(2), *back;

	t1->generation = 1;
	t2->generation = 2;
	t3->generation = 3;
	snprintf(dir, sizeof(dir), "%s/state", tmpdir);   /* created by open */

	/* Rate limit: a change right after a write waits for the interval. */
	struct statefile *sf = statefile_open(dir, "n1", CHROOT, 300, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
	CU_ASSERT_PTR_NOT_NULL(strstr(statefile_path(sf), "/state/table-n1"));
	statefile_save(sf, t1);
	CU_ASSERT_TRUE_FATAL(wait_written(sf, 1));
	uint64_t first = mono_ms();
	statefile_save(sf, t2);
	statefile_save(sf, t3);   /* replaces t2, which is never written */
	CU_ASSERT_TRUE_FATAL(wait_written(sf, 3));
	CU_ASSERT(mono_ms() - first >= 250);
	statefile_get_stats(sf, &st);
	CU_ASSERT_EQUAL(st.writes, 2);
	CU_ASSERT_EQUAL(st.write_errors, 0);
	statefile_close(sf);

	/* Close writes what is queued at once, whatever the interval. */
	sf = statefile_open(dir, "n1", CHROOT, 600000, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
	back = statefile_load(sf, &meta, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(t3, back);
	CU_ASSERT_EQUAL(meta.generation, 3);
	route_table_unref(back);
	statefile_save(sf, t1);
	CU_ASSERT_TRUE_FATAL(wait_written(sf, 1));
	statefile_save(sf, t2);
	uint64_t before = mono_ms();
	statefile_close(sf);
	CU_ASSERT(mono_ms() - before < 5000);
	char path[160];
	snprintf(path, sizeof(path), "%s/table-n1", dir);
	back = statefile_read(path, CHROOT, &meta, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(t2, back);
	route_table_unref(back);

	/* A failed write (here: a directory where the temporary file goes) is
	 * counted, and the same table is written once the cause is gone. */
	sf = statefile_open(dir, "n2", CHROOT, 100, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
	char blocker[192];
	snprintf(blocker, sizeof(blocker), "%s/table-n2.tmp", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(blocker, 0700), 0);
	statefile_save(sf, t3);
	for (int i = 0; i < 1000; i++) {
		statefile_get_stats(sf, &st);
		if (st.write_errors > 0)
			break;
		usleep(10000);
	}
	CU_ASSERT(st.write_errors > 0);
	CU_ASSERT_EQUAL(st.writes, 0);
	CU_ASSERT_EQUAL_FATAL(rmdir(blocker), 0);
	CU_ASSERT_TRUE(wait_written(sf, 3));
	statefile_close(sf);

	/* A directory that cannot be made, or a file in its place. */
	CU_ASSERT_PTR_NULL(statefile_open("/proc/no/such/dir", "n1", CHROOT, 1000, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "/proc/no/such/dir"));
	CU_ASSERT_PTR_NULL(statefile_open(path, "n1", CHROOT, 1000, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a directory"));

	route_table_unref(t1);
	route_table_unref(t2);
	route_table_unref(t3);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("statefile format", NULL, NULL);
	UNIT_TEST(s, test_round_trip);
	UNIT_TEST(s, test_truncated);
	UNIT_TEST(s, test_bit_flipped);
	UNIT_TEST(s, test_wrong_version);
	UNIT_TEST(s, test_other_chroot);
	UNIT_TEST(s, test_bad_content);
	CU_pSuite f = unit_suite("statefile files", files_init, files_clean);
	UNIT_TEST(f, test_files);
	UNIT_TEST(f, test_writer);
}
