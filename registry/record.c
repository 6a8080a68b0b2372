/*
 * Records: protobuf-c decode/encode plus the validation rules that make a
 * record safe to route on. The rules live here, in one place, so that the
 * agent refuses to write what a router would refuse to read.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry/record.h"

static bool reject(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool reject(char *why, size_t whylen, const char *fmt, ...)
{
	if (why != NULL && whylen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool valid_label(const char *s, size_t len, bool allow_upper)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'a' && c <= 'z')
			continue;
		if (allow_upper && c >= 'A' && c <= 'Z')
			continue;
		if ((c >= '0' && c <= '9') || c == '-')
			continue;
		return false;
	}
	return true;
}

static bool valid_dns_name(const char *name, bool allow_upper)
{
	size_t len = strlen(name);
	if (len == 0 || len > RECORD_HOST_MAX)
		return false;
	const char *p = name;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (!valid_label(p, l, allow_upper))
			return false;
		if (dot == NULL)
			return true;
		p = dot + 1;
	}
}

bool record_valid_host(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	if (host == NULL || *host == '\0')
		return false;
	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
		return true;
	/* A dotted quad that inet_pton refused (e.g. 300.1.1.1) is no DNS name either. */
	if (strspn(host, "0123456789.") == strlen(host))
		return false;
	return valid_dns_name(host, true);
}

bool record_valid_domain(const char *domain)
{
	if (domain == NULL)
		return false;
	if (strncmp(domain, "*.", 2) == 0)
		domain += 2;
	if (strchr(domain, '*') != NULL)
		return false;
	return valid_dns_name(domain, false);
}

bool record_valid_znode_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > RECORD_ID_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "zookeeper") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c >= 0x7f || c == '/')
			return false;
	}
	return true;
}

bool record_valid_token(const char *name)
{
	/* RFC 9110 tchar. */
	static const char extra[] = "!#$%&'*+-.^_`|~";
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > RECORD_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && strchr(extra, c) == NULL)
			return false;
	}
	return true;
}

static bool valid_label_key(const char *k)
{
	size_t len = k ? strlen(k) : 0;
	if (len == 0 || len > RECORD_LABEL_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];
		if (!isalnum(c) && strchr("._/-", c) == NULL)
			return false;
	}
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* An address a router advertises (listen, tls_listen, admin). */
static bool address_ok(const char *s)
{
	return strlen(s) <= 300 && printable(s);
}

bool record_instance_validate(const record_instance *r, char *why, size_t whylen)
{
	if (r->host == NULL)
		return reject(why, whylen, "host missing");
	if (!record_valid_host(r->host))
		return reject(why, whylen, "host \"%.64s\" is not an IP address or DNS name", r->host);
	if (!r->has_port)
		return reject(why, whylen, "port missing");
	if (r->port < 1 || r->port > 65535)
		return reject(why, whylen, "port %u out of range 1-65535", r->port);
	if (r->weight < RECORD_WEIGHT_MIN || r->weight > RECORD_WEIGHT_MAX)
		return reject(why, whylen, "weight %u out of range %d-%d", r->weight,
			      RECORD_WEIGHT_MIN, RECORD_WEIGHT_MAX);
	if (r->zone != NULL && (strlen(r->zone) > RECORD_ZONE_MAX || !printable(r->zone)))
		return reject(why, whylen, "zone longer than %d bytes or not printable", RECORD_ZONE_MAX);
	if (r->state != ZKROUTER__INSTANCE__STATE__UP && r->state != ZKROUTER__INSTANCE__STATE__DRAINING)
		return reject(why, whylen, "state %d unknown", (int)r->state);
	if (r->id != NULL && !record_valid_znode_name(r->id))
		return reject(why, whylen, "id \"%.64s\" is not a valid znode name (1-%d printable bytes, no '/')",
			      r->id, RECORD_ID_MAX);
	if (r->n_labels > RECORD_LABELS_MAX)
		return reject(why, whylen, "%zu labels, at most %d", r->n_labels, RECORD_LABELS_MAX);
	for (size_t i = 0; i < r->n_labels; i++) {
		const Zkrouter__Label *l = r->labels[i];
		if (!valid_label_key(l->key))
			return reject(why, whylen, "label %zu: key missing or invalid", i);
		if (l->value != NULL && (strlen(l->value) > RECORD_LABEL_VALUE_MAX || !printable(l->value)))
			return reject(why, whylen, "label \"%s\": value longer than %d bytes or not printable",
				      l->key, RECORD_LABEL_VALUE_MAX);
	}
	return true;
}

static bool check_range(const char *name, bool has, uint64_t v, uint64_t lo, uint64_t hi,
			char *why, size_t whylen)
{
	if (has && (v < lo || v > hi))
		return reject(why, whylen, "%s %llu out of range %llu-%llu", name,
			      (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
	return true;
}

bool record_app_config_validate(const record_app_config *r, char *why, size_t whylen)
{
	switch (r->balance) {
	case ZKROUTER__APP_CONFIG__BALANCE__LEAST_OUTSTANDING:
	case ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN:
		break;
	case ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER:
	case ZKROUTER__APP_CONFIG__BALANCE__HASH_COOKIE:
		if (r->hash_key == NULL)
			return reject(why, whylen, "balance %s needs hash_key", record_balance_name(r->balance));
		break;
	default:
		return reject(why, whylen, "balance %d unknown", (int)r->balance);
	}
	if (r->hash_key != NULL && !record_valid_token(r->hash_key))
		return reject(why, whylen, "hash_key \"%.64s\" is not a valid header or cookie name", r->hash_key);
	if (r->sticky_cookie != NULL && !record_valid_token(r->sticky_cookie))
		return reject(why, whylen, "sticky_cookie \"%.64s\" is not a valid cookie name", r->sticky_cookie);
	if (r->backend_protocol != ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1 &&
	    r->backend_protocol != ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C)
		return reject(why, whylen, "backend_protocol %d unknown (http1 or h2c)",
			      (int)r->backend_protocol);
	if (r->health_path != NULL) {
		size_t len = strlen(r->health_path);
		if (len == 0 || r->health_path[0] != '/' || len > RECORD_PATH_MAX)
			return reject(why, whylen, "health_path must start with '/' and be at most %d bytes",
				      RECORD_PATH_MAX);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)r->health_path[i];
			if (c <= 0x20 || c >= 0x7f)
				return reject(why, whylen, "health_path has a byte 0x%02x not allowed in a URL", c);
		}
	}
	return check_range("connect_timeout_ms", r->has_connect_timeout_ms, r->connect_timeout_ms, 1, 600000, why, whylen) &&
	       check_range("response_timeout_ms", r->has_response_timeout_ms, r->response_timeout_ms, 1, 3600000, why, whylen) &&
	       check_range("idle_timeout_ms", r->has_idle_timeout_ms, r->idle_timeout_ms, 1, 3600000, why, whylen) &&
	       check_range("health_interval_ms", r->has_health_interval_ms, r->health_interval_ms, 100, 3600000, why, whylen) &&
	       check_range("retries", r->has_retries, r->retries, 0, RECORD_RETRIES_MAX, why, whylen) &&
	       check_range("max_concurrent_requests", r->has_max_concurrent_requests,
			   r->max_concurrent_requests, 0, RECORD_APP_CONCURRENCY_MAX, why, whylen) &&
	       check_range("max_queued_requests", r->has_max_queued_requests,
			   r->max_queued_requests, 0, RECORD_APP_CONCURRENCY_MAX, why, whylen);
}

bool record_router_node_validate(const record_router_node *r, char *why, size_t whylen)
{
	if (r->node_id == NULL)
		return reject(why, whylen, "node_id missing");
	if (!record_valid_znode_name(r->node_id))
		return reject(why, whylen, "node_id \"%.64s\" is not a valid znode name", r->node_id);
	for (size_t i = 0; i < r->n_listen; i++)
		if (!address_ok(r->listen[i]))
			return reject(why, whylen, "listen address %zu too long or not printable", i);
	for (size_t i = 0; i < r->n_tls_listen; i++)
		if (!address_ok(r->tls_listen[i]))
			return reject(why, whylen, "tls_listen address %zu too long or not printable", i);
	if (r->admin != NULL && !address_ok(r->admin))
		return reject(why, whylen, "admin address too long or not printable");
	if (r->version != NULL && (strlen(r->version) > 64 || !printable(r->version)))
		return reject(why, whylen, "version too long or not printable");
	if (r->table_digest != NULL) {
		size_t len = strlen(r->table_digest);
		if (len != 64 || strspn(r->table_digest, "0123456789abcdef") != len)
			return reject(why, whylen, "table_digest is not 64 lower-case hex digits");
	}
	return true;
}

/*
 * A certificate record only has to carry its two PEM blobs here; whether
 * they parse, match and are in date is the TLS parser's verdict
 * (registry/tlscert.h), which both the routers and zkrouterctl apply.
 */
bool record_tls_certificate_validate(const record_tls_certificate *r, char *why, size_t whylen)
{
	if (r->chain_pem == NULL || r->chain_pem[0] == '\0')
		return reject(why, whylen, "chain_pem missing");
	if (r->key_pem == NULL || r->key_pem[0] == '\0')
		return reject(why, whylen, "key_pem missing");
	if (strlen(r->chain_pem) > RECORD_CERT_CHAIN_MAX)
		return reject(why, whylen, "chain_pem longer than %d bytes", RECORD_CERT_CHAIN_MAX);
	if (strlen(r->key_pem) > RECORD_CERT_KEY_MAX)
		return reject(why, whylen, "key_pem longer than %d bytes", RECORD_CERT_KEY_MAX);
	if (r->name != NULL && !record_valid_cert_name(r->name))
		return reject(why, whylen, "name \"%.64s\" is not a valid certificate name", r->name);
	return true;
}

bool record_valid_cert_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > RECORD_CERT_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		      ch == '.'))
			return false;
	}
	return true;
}

/*
 * protobuf-c takes a field number 0, which protobuf forbids, when its tag
 * is spelled in more than one byte, and keeps it as an unknown field; but
 * it refuses the one-byte form it writes back. A record holding one would
 * decode, and the same record re-encoded (zkrouterctl rewriting an
 * AppConfig, say) would not: refused here, in sub-messages too.
 */
static bool unknown_fields_ok(const ProtobufCMessage *m, char *why, size_t whylen)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return reject(why, whylen, "field number 0 in a %s", d->short_name);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *subs = *(ProtobufCMessage *const *const *)(const void *)at;

			for (size_t k = 0; k < n; k++)
				if (subs[k] != NULL && !unknown_fields_ok(subs[k], why, whylen))
					return false;
		} else {
			const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(const void *)at;

			if (sub != NULL && !unknown_fields_ok(sub, why, whylen))
				return false;
		}
	}
	return true;
}

/*
 * The record types share one shape; these macros spell out the
 * decode/encode/free functions for each without repeating the body.
 */
#define RECORD_CODEC(name, type, prefix) \
	type *record_##name##_decode(const uint8_t *buf, size_t len, char *why, size_t whylen) \
	{ \
		type *r = prefix##__unpack(NULL, len, buf); \
		if (r == NULL) { \
			reject(why, whylen, "not a valid " #name " record (%zu bytes)", len); \
			return NULL; \
		} \
		if (!unknown_fields_ok(&r->base, why, whylen) || \
		    !record_##name##_validate(r, why, whylen)) { \
			prefix##__free_unpacked(r, NULL); \
			return NULL; \
		} \
		return r; \
	} \
	void record_##name##_free(type *r) \
	{ \
		if (r != NULL) \
			prefix##__free_unpacked(r, NULL); \
	} \
	uint8_t *record_##name##_encode(const type *r, size_t *len, char *why, size_t whylen) \
	{ \
		if (!record_##name##_validate(r, why, whylen)) \
			return NULL; \
		size_t n = prefix##__get_packed_size(r); \
		uint8_t *buf = malloc(n ? n : 1); \
		if (buf == NULL) { \
			reject(why, whylen, "out of memory"); \
			return NULL; \
		} \
		*len = prefix##__pack(r, buf); \
		return buf; \
	}

RECORD_CODEC(instance, record_instance, zkrouter__instance)
RECORD_CODEC(app_config, record_app_config, zkrouter__app_config)
RECORD_CODEC(router_node, record_router_node, zkrouter__router_node)
RECORD_CODEC(tls_certificate, record_tls_certificate, zkrouter__tls_certificate)

static const char *const balance_names[] = {
	[ZKROUTER__APP_CONFIG__BALANCE__LEAST_OUTSTANDING] = "least-outstanding",
	[ZKROUTER__APP_CONFIG__BALANCE__ROUND_ROBIN] = "round-robin",
	[ZKROUTER__APP_CONFIG__BALANCE__HASH_HEADER] = "hash-header",
	[ZKROUTER__APP_CONFIG__BALANCE__HASH_COOKIE] = "hash-cookie",
};

const char *record_balance_name(Zkrouter__AppConfig__Balance b)
{
	if ((unsigned)b >= sizeof(balance_names) / sizeof(balance_names[0]))
		return "unknown";
	return balance_names[b];
}

bool record_balance_parse(const char *name, Zkrouter__AppConfig__Balance *out)
{
	for (size_t i = 0; i < sizeof(balance_names) / sizeof(balance_names[0]); i++) {
		if (strcasecmp(name, balance_names[i]) == 0) {
			*out = (Zkrouter__AppConfig__Balance)i;
			return true;
		}
	}
	return false;
}

static const char *const backend_protocol_names[] = {
	[ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1] = "http1",
	[ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__H2C] = "h2c",
};

const char *record_backend_protocol_name(Zkrouter__AppConfig__BackendProtocol b)
{
	if ((unsigned)b >= sizeof(backend_protocol_names) / sizeof(backend_protocol_names[0]))
		return "unknown";
	return backend_protocol_names[b];
}

bool record_backend_protocol_parse(const char *name, Zkrouter__AppConfig__BackendProtocol *out)
{
	for (size_t i = 0; i < sizeof(backend_protocol_names) / sizeof(backend_protocol_names[0]); i++) {
		if (strcmp(name, backend_protocol_names[i]) == 0) {
			*out = (Zkrouter__AppConfig__BackendProtocol)i;
			return true;
		}
	}
	return false;
}
