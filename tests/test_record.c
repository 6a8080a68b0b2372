/*
 * Record suite: every message round-trips, defaults apply, malformed bytes
 * are rejected, and each validation rule rejects with its own reason.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "registry/record.h"
#include "tests/lib/unit.h"

static char why[RECORD_WHY_MAX];

static record_instance sample_instance(void)
{
	record_instance r = ZKROUTER__INSTANCE__INIT;
	r.host = "10.0.0.7";
	r.has_port = 1;
	r.port = 8080;
	return r;
}

/* Encodes r, decodes it again, and returns the decoded copy (or NULL). */
static record_instance *instance_round_trip(const record_instance *r)
{
	size_t len = 0;
	uint8_t *buf = record_instance_encode(r, &len, why, sizeof(why));
	if (buf == NULL)
		return NULL;
	record_instance *back = record_instance_decode(buf, len, why, sizeof(why));
	free(buf);
	return back;
}

/* Asserts that validation fails and that the reason mentions `word`. */
#define ASSERT_INSTANCE_REJECTED(r, word) do { \
		why[0] = '\0'; \
		CU_ASSERT_FALSE(record_instance_validate(&(r), why, sizeof(why))); \
		CU_ASSERT_PTR_NOT_NULL(strstr(why, (word))); \
	} while (0)

#define ASSERT_APP_REJECTED(r, word) do { \
		why[0] = '\0'; \
		CU_ASSERT_FALSE(record_app_config_validate(&(r), why, sizeof(why))); \
		CU_ASSERT_PTR_NOT_NULL(strstr(why, (word))); \
	} while (0)

static void test_instance_round_trip(void)
{
	Zkrouter__Label l1 = ZKROUTER__LABEL__INIT, l2 = ZKROUTER__LABEL__INIT;
	Zkrouter__Label *labels[] = { &l1, &l2 };
	l1.key = "version";
	l1.value = "1.2.3";
	l2.key = "canary";
	record_instance r = sample_instance();
	r.has_weight = 1;
	r.weight = 250;
	r.zone = "eu-west-1a";
	r.has_state = 1;
	r.state = ZKROUTER__INSTANCE__STATE__DRAINING;
	r.id = "10.0.0.7:8080";
	r.has_registered_at_ms = 1;
	r.registered_at_ms = 1790000000123ULL;
	r.n_labels = 2;
	r.labels = labels;

	record_instance *b = instance_round_trip(&r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_STRING_EQUAL(b->host, "10.0.0.7");
	CU_ASSERT_EQUAL(b->port, 8080);
	CU_ASSERT_EQUAL(b->weight, 250);
	CU_ASSERT_STRING_EQUAL(b->zone, "eu-west-1a");
	CU_ASSERT_EQUAL(b->state, ZKROUTER__INSTANCE__STATE__DRAINING);
	CU_ASSERT_STRING_EQUAL(b->id, "10.0.0.7:8080");
	CU_ASSERT_EQUAL(b->registered_at_ms, 1790000000123ULL);
	CU_ASSERT_EQUAL_FATAL(b->n_labels, 2);
	CU_ASSERT_STRING_EQUAL(b->labels[0]->key, "version");
	CU_ASSERT_STRING_EQUAL(b->labels[0]->value, "1.2.3");
	CU_ASSERT_PTR_NULL(b->labels[1]->value);
	record_instance_free(b);
}

static void test_instance_defaults(void)
{
	record_instance r = sample_instance();
	record_instance *b = instance_round_trip(&r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->weight, 100);
	CU_ASSERT_EQUAL(b->state, ZKROUTER__INSTANCE__STATE__UP);
	CU_ASSERT_PTR_NULL(b->zone);
	CU_ASSERT_PTR_NULL(b->id);
	CU_ASSERT_FALSE(b->has_registered_at_ms);
	record_instance_free(b);
}

static void test_app_config_round_trip_and_defaults(void)
{
	record_app_config r = ZKROUTER__APP_CONFIG__INIT;
	r.has_balance = 1;
	r.balance = ZKROUTER__APP_CONFIG__BALANCE__HASH_COOKIE;
	r.hash_key = "session";
	r.has_connect_timeout_ms = 1;
	r.connect_timeout_ms = 250;
	r.health_path = "/health?deep=1";
	r.has_health_interval_ms = 1;
	r.health_interval_ms = 2000;
	r.has_redirect_https = 1;
	r.redirect_https = 1;
	r.has_max_body_bytes = 1;
	r.max_body_bytes = 1ULL << 33;
	r.has_retries = 1;
	r.retries = 2;

	size_t len;
	uint8_t *buf = record_app_config_encode(&r, &len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	record_app_config *b = record_app_config_decode(buf, len, why, sizeof(why));
	free(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->balance, ZKROUTER__APP_CONFIG__BALANCE__HASH_COOKIE);
	CU_ASSERT_STRING_EQUAL(b->hash_key, "session");
	CU_ASSERT_EQUAL(b->connect_timeout_ms, 250);
	CU_ASSERT_STRING_EQUAL(b->health_path, "/health?deep=1");
	CU_ASSERT_TRUE(b->redirect_https);
	CU_ASSERT_EQUAL(b->max_body_bytes, 1ULL << 33);
	CU_ASSERT_EQUAL(b->retries, 2);
	CU_ASSERT_FALSE(b->has_response_timeout_ms);
	record_app_config_free(b);

	/* Empty znode data is a valid AppConfig with every default. */
	b = record_app_config_decode((const uint8_t *)"", 0, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->balance, ZKROUTER__APP_CONFIG__BALANCE__LEAST_OUTSTANDING);
	CU_ASSERT_FALSE(b->redirect_https);
	CU_ASSERT_PTR_NULL(b->hash_key);
	record_app_config_free(b);
}

static void test_router_node_round_trip(void)
{
	char *listen[] = { "127.0.0.1:8080", "[::1]:8443" };
	char *tls_listen[] = { "127.0.0.1:8443" };
	record_router_node r = ZKROUTER__ROUTER_NODE__INIT;
	r.node_id = "router-1";
	r.n_listen = 2;
	r.listen = listen;
	r.n_tls_listen = 1;
	r.tls_listen = tls_listen;
	r.admin = "127.0.0.1:9080";
	r.version = "0.1.0";
	r.has_table_generation = 1;
	r.table_generation = 42;
	r.table_digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	size_t len;
	uint8_t *buf = record_router_node_encode(&r, &len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	record_router_node *b = record_router_node_decode(buf, len, why, sizeof(why));
	free(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_STRING_EQUAL(b->node_id, "router-1");
	CU_ASSERT_EQUAL_FATAL(b->n_listen, 2);
	CU_ASSERT_STRING_EQUAL(b->listen[1], "[::1]:8443");
	CU_ASSERT_EQUAL_FATAL(b->n_tls_listen, 1);
	CU_ASSERT_STRING_EQUAL(b->tls_listen[0], "127.0.0.1:8443");
	CU_ASSERT_STRING_EQUAL(b->admin, "127.0.0.1:9080");
	CU_ASSERT_EQUAL(b->table_generation, 42);
	CU_ASSERT_STRING_EQUAL(b->table_digest, r.table_digest);
	record_router_node_free(b);

	r.table_digest = "XYZ";
	CU_ASSERT_PTR_NULL(record_router_node_encode(&r, &len, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "table_digest"));
	r.table_digest = NULL;
	tls_listen[0] = "127.0.0.1:8443\n";
	CU_ASSERT_PTR_NULL(record_router_node_encode(&r, &len, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "tls_listen address 0"));
	tls_listen[0] = "127.0.0.1:8443";
	r.node_id = NULL;
	CU_ASSERT_PTR_NULL(record_router_node_encode(&r, &len, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "node_id missing"));
}

static void test_truncated_and_random_bytes(void)
{
	record_instance r = sample_instance();
	r.zone = "a-zone-with-some-length";
	r.id = "some-instance-id";
	size_t len;
	uint8_t *buf = record_instance_encode(&r, &len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);

	/* Every proper prefix either fails to decode or fails validation:
	 * none may come back as a routable record with a different host. */
	for (size_t cut = 0; cut < len; cut++) {
		record_instance *b = record_instance_decode(buf, cut, why, sizeof(why));
		if (b != NULL) {
			CU_ASSERT_STRING_EQUAL(b->host, "10.0.0.7");
			CU_ASSERT_EQUAL(b->port, 8080);
			record_instance_free(b);
		}
	}
	/* Cutting inside the first field (host) must always be rejected. */
	CU_ASSERT_PTR_NULL(record_instance_decode(buf, 3, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a valid instance record"));
	free(buf);

	/* Random bytes: never crash, and anything accepted must validate. */
	srand(12345);
	unsigned accepted = 0;
	for (int i = 0; i < 20000; i++) {
		uint8_t junk[64];
		size_t n = (size_t)(rand() % (int)sizeof(junk));
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)rand();
		record_instance *b = record_instance_decode(junk, n, why, sizeof(why));
		if (b != NULL) {
			accepted++;
			CU_ASSERT_TRUE(record_instance_validate(b, NULL, 0));
			record_instance_free(b);
		}
		record_app_config *a = record_app_config_decode(junk, n, why, sizeof(why));
		if (a != NULL) {
			CU_ASSERT_TRUE(record_app_config_validate(a, NULL, 0));
			record_app_config_free(a);
		}
	}
	CU_ASSERT(accepted < 200);

	const char *text = "GET / HTTP/1.1\r\n";
	CU_ASSERT_PTR_NULL(record_instance_decode((const uint8_t *)text, strlen(text), why, sizeof(why)));
}

static void test_instance_rules(void)
{
	record_instance r = sample_instance();
	CU_ASSERT_TRUE(record_instance_validate(&r, why, sizeof(why)));

	r.host = NULL;
	ASSERT_INSTANCE_REJECTED(r, "host missing");
	const char *bad_hosts[] = { "", "300.1.1.1", "-bad.example", "a..b", "host name", "a_b.com",
				    "x.example.com:80", "http://x" };
	for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		r.host = (char *)bad_hosts[i];
		ASSERT_INSTANCE_REJECTED(r, "not an IP address or DNS name");
	}
	const char *good_hosts[] = { "127.0.0.1", "::1", "fe80::1", "app-1.internal", "Backend.Example.COM" };
	for (size_t i = 0; i < sizeof(good_hosts) / sizeof(good_hosts[0]); i++) {
		r.host = (char *)good_hosts[i];
		CU_ASSERT_TRUE(record_instance_validate(&r, why, sizeof(why)));
	}

	r = sample_instance();
	r.has_port = 0;
	ASSERT_INSTANCE_REJECTED(r, "port missing");
	r.has_port = 1;
	r.port = 0;
	ASSERT_INSTANCE_REJECTED(r, "port 0 out of range");
	r.port = 65536;
	ASSERT_INSTANCE_REJECTED(r, "port 65536 out of range");
	r.port = 65535;
	CU_ASSERT_TRUE(record_instance_validate(&r, why, sizeof(why)));

	r.weight = 0;
	ASSERT_INSTANCE_REJECTED(r, "weight 0 out of range");
	r.weight = RECORD_WEIGHT_MAX + 1;
	ASSERT_INSTANCE_REJECTED(r, "weight");
	r.weight = RECORD_WEIGHT_MAX;
	CU_ASSERT_TRUE(record_instance_validate(&r, why, sizeof(why)));

	char long_zone[RECORD_ZONE_MAX + 2];
	memset(long_zone, 'z', sizeof(long_zone) - 1);
	long_zone[sizeof(long_zone) - 1] = '\0';
	r.zone = long_zone;
	ASSERT_INSTANCE_REJECTED(r, "zone");
	r.zone = NULL;

	r.state = (Zkrouter__Instance__State)7;
	ASSERT_INSTANCE_REJECTED(r, "state 7 unknown");
	r.state = ZKROUTER__INSTANCE__STATE__UP;

	r.id = "a/b";
	ASSERT_INSTANCE_REJECTED(r, "not a valid znode name");
	r.id = "..";
	ASSERT_INSTANCE_REJECTED(r, "not a valid znode name");
	r.id = "10.0.0.7:8080";
	CU_ASSERT_TRUE(record_instance_validate(&r, why, sizeof(why)));

	Zkrouter__Label l = ZKROUTER__LABEL__INIT;
	Zkrouter__Label *labels[RECORD_LABELS_MAX + 1];
	for (size_t i = 0; i <= RECORD_LABELS_MAX; i++)
		labels[i] = &l;
	l.key = "ok";
	r.labels = labels;
	r.n_labels = RECORD_LABELS_MAX + 1;
	ASSERT_INSTANCE_REJECTED(r, "labels, at most");
	r.n_labels = 1;
	l.key = "bad key";
	ASSERT_INSTANCE_REJECTED(r, "key missing or invalid");
	l.key = "ok";
	l.value = "line\nbreak";
	ASSERT_INSTANCE_REJECTED(r, "value");
}

static void test_app_config_rules(void)
{
	record_app_config r = ZKROUTER__APP_CONFIG__INIT;
	CU_ASSERT_TRUE(record_app_config_validate(&r, why, sizeof(why)));

	r.balance = ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER;
	ASSERT_APP_REJECTED(r, "needs hash_key");
	r.hash_key = "X-User Id";
	ASSERT_APP_REJECTED(r, "hash_key");
	r.hash_key = "X-User-Id";
	CU_ASSERT_TRUE(record_app_config_validate(&r, why, sizeof(why)));
	r.balance = (Zkrouter__AppConfig__Balance)9;
	ASSERT_APP_REJECTED(r, "balance 9 unknown");
	r.balance = ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN;

	r.sticky_cookie = "a=b";
	ASSERT_APP_REJECTED(r, "sticky_cookie");
	r.sticky_cookie = NULL;

	r.health_path = "health";
	ASSERT_APP_REJECTED(r, "health_path must start with '/'");
	r.health_path = "/a b";
	ASSERT_APP_REJECTED(r, "health_path has a byte 0x20");
	r.health_path = "/ok";

	r.has_connect_timeout_ms = 1;
	r.connect_timeout_ms = 0;
	ASSERT_APP_REJECTED(r, "connect_timeout_ms 0 out of range");
	r.connect_timeout_ms = 100;
	r.has_response_timeout_ms = 1;
	r.response_timeout_ms = 3600001;
	ASSERT_APP_REJECTED(r, "response_timeout_ms");
	r.response_timeout_ms = 5000;
	r.has_idle_timeout_ms = 1;
	ASSERT_APP_REJECTED(r, "idle_timeout_ms 0 out of range");
	r.idle_timeout_ms = 1000;
	r.has_health_interval_ms = 1;
	r.health_interval_ms = 10;
	ASSERT_APP_REJECTED(r, "health_interval_ms 10 out of range");
	r.health_interval_ms = 1000;
	r.has_retries = 1;
	r.retries = 11;
	ASSERT_APP_REJECTED(r, "retries 11 out of range");
	r.retries = 3;
	CU_ASSERT_TRUE(record_app_config_validate(&r, why, sizeof(why)));
	r.has_max_concurrent_requests = 1;
	r.max_concurrent_requests = 1000001;
	ASSERT_APP_REJECTED(r, "max_concurrent_requests 1000001 out of range");
	r.max_concurrent_requests = 50;
	r.has_max_queued_requests = 1;
	r.max_queued_requests = 4000000000u;
	ASSERT_APP_REJECTED(r, "max_queued_requests 4000000000 out of range");
	r.max_queued_requests = 1000000;
	CU_ASSERT_TRUE(record_app_config_validate(&r, why, sizeof(why)));
	r.has_backend_protocol = 1;
	r.backend_protocol = (Zkrouter__AppConfig__BackendProtocol)7;
	ASSERT_APP_REJECTED(r, "backend_protocol 7 unknown (http1 or h2c)");
	r.backend_protocol = ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C;
	CU_ASSERT_TRUE(record_app_config_validate(&r, why, sizeof(why)));

	/* encode refuses what decode would refuse */
	size_t len;
	r.retries = 99;
	CU_ASSERT_PTR_NULL(record_app_config_encode(&r, &len, why, sizeof(why)));
}

static void test_domain_and_token_rules(void)
{
	const char *good[] = { "example.com", "hello.localhost", "*.apps.example.com", "a", "x-1.y" };
	const char *bad[] = { "", "Example.com", "example.com.", "example.com:80", "*example.com",
			      "a.*.b", "**.a", "a..b", "-a.b", "a b" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_TRUE(record_valid_domain(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(record_valid_domain(bad[i]));
	CU_ASSERT_TRUE(record_valid_token("X-Request-Id"));
	CU_ASSERT_FALSE(record_valid_token("X:Y"));
	CU_ASSERT_FALSE(record_valid_token(""));

	Zkrouter__AppConfig__Balance b;
	CU_ASSERT_TRUE(record_balance_parse("round-robin", &b));
	CU_ASSERT_EQUAL(b, ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN);
	CU_ASSERT_FALSE(record_balance_parse("random", &b));
	CU_ASSERT_STRING_EQUAL(record_balance_name(ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER), "hash-header");

	Zkrouter__AppConfig__BackendProtocol bp;
	CU_ASSERT_TRUE(record_backend_protocol_parse("h2c", &bp));
	CU_ASSERT_EQUAL(bp, ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C);
	CU_ASSERT_TRUE(record_backend_protocol_parse("http1", &bp));
	CU_ASSERT_EQUAL(bp, ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1);
	CU_ASSERT_FALSE(record_backend_protocol_parse("h2", &bp));
	CU_ASSERT_FALSE(record_backend_protocol_parse("H2C", &bp));
	CU_ASSERT_FALSE(record_backend_protocol_parse("", &bp));
	CU_ASSERT_STRING_EQUAL(record_backend_protocol_name(ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C), "h2c");
	CU_ASSERT_STRING_EQUAL(record_backend_protocol_name((Zkrouter__AppConfig__BackendProtocol)9), "unknown");
}

/*
 * backend_protocol on the wire: a record written before the field existed
 * (no field 15) reads as HTTP/1.1, h2c survives encode and decode, and an
 * unknown value (a newer writer's, or garbage) is refused with its reason.
 */
static void test_app_config_backend_protocol_wire(void)
{
	record_app_config r = ZKROUTER__APP_CONFIG__INIT;
	size_t len;
	/* retries = 2 alone, as an older zkrouterctl wrote it. */
	static const uint8_t old_record[] = { 0x60, 0x02 };
	record_app_config *d = record_app_config_decode(old_record, sizeof(old_record), why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_FALSE(d->has_backend_protocol);
	CU_ASSERT_EQUAL(d->backend_protocol, ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1);
	record_app_config_free(d);

	r.has_backend_protocol = 1;
	r.backend_protocol = ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C;
	uint8_t *buf = record_app_config_encode(&r, &len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* Field 15, varint 1: what readers in any language see. */
	CU_ASSERT_EQUAL(len, 2);
	CU_ASSERT_EQUAL(buf[0], 0x78);
	CU_ASSERT_EQUAL(buf[1], 0x01);
	d = record_app_config_decode(buf, len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->backend_protocol, ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C);
	record_app_config_free(d);
	free(buf);

	static const uint8_t unknown[] = { 0x78, 0x07 };
	CU_ASSERT_PTR_NULL(record_app_config_decode(unknown, sizeof(unknown), why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(why, "backend_protocol 7 unknown (http1 or h2c)");
}

/* A certificate record needs both PEM blobs; the names follow one rule. */
static void test_tls_certificate_rules(void)
{
	record_tls_certificate r = ZKROUTER__TLS_CERTIFICATE__INIT;
	size_t len;
	r.chain_pem = "-----BEGIN CERTIFICATE-----\n";
	CU_ASSERT_PTR_NULL(record_tls_certificate_encode(&r, &len, why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(why, "key_pem missing");
	r.key_pem = "";
	CU_ASSERT_PTR_NULL(record_tls_certificate_encode(&r, &len, why, sizeof(why)));
	r.key_pem = "-----BEGIN PRIVATE KEY-----\n";
	r.name = "Shop/Test";
	CU_ASSERT_PTR_NULL(record_tls_certificate_encode(&r, &len, why, sizeof(why)));
	r.name = "_wildcard.shop.test";
	uint8_t *buf = record_tls_certificate_encode(&r, &len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	record_tls_certificate *d = record_tls_certificate_decode(buf, len, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_STRING_EQUAL(d->name, "_wildcard.shop.test");
	CU_ASSERT_STRING_EQUAL(d->key_pem, r.key_pem);
	record_tls_certificate_free(d);
	free(buf);
	/* An Instance is no certificate: chain and key are missing. */
	CU_ASSERT_PTR_NULL(record_tls_certificate_decode((const uint8_t *)"\x0a\x01x", 3, why, sizeof(why)));

	CU_ASSERT_TRUE(record_valid_cert_name("shop.test"));
	CU_ASSERT_TRUE(record_valid_cert_name("a-b_c.9"));
	CU_ASSERT_FALSE(record_valid_cert_name(""));
	CU_ASSERT_FALSE(record_valid_cert_name(".hidden"));
	CU_ASSERT_FALSE(record_valid_cert_name("-x"));
	CU_ASSERT_FALSE(record_valid_cert_name("UPPER"));
	CU_ASSERT_FALSE(record_valid_cert_name("a/b"));
	CU_ASSERT_FALSE(record_valid_cert_name("*.shop.test"));
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("records", NULL, NULL);
	UNIT_TEST(s, test_instance_round_trip);
	UNIT_TEST(s, test_instance_defaults);
	UNIT_TEST(s, test_app_config_round_trip_and_defaults);
	UNIT_TEST(s, test_router_node_round_trip);
	UNIT_TEST(s, test_truncated_and_random_bytes);
	UNIT_TEST(s, test_instance_rules);
	UNIT_TEST(s, test_app_config_rules);
	UNIT_TEST(s, test_domain_and_token_rules);
	UNIT_TEST(s, test_app_config_backend_protocol_wire);
	UNIT_TEST(s, test_tls_certificate_rules);
}
