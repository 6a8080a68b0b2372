/*
 * Encoding, decoding and validation of the records kept in ZooKeeper
 * (proto/zkrouter.proto). Every reader goes through the decode functions,
 * which validate as well: a record they return is safe to route on.
 *
 * On rejection the functions return NULL or false and write a short,
 * human-readable reason into `why` (e.g. "port 0 out of range 1-65535").
 */
#ifndef ZKR_RECORD_H
#define ZKR_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zkrouter.pb-c.h"

#define RECORD_WHY_MAX 160

#define RECORD_HOST_MAX 253
#define RECORD_ID_MAX 128
#define RECORD_ZONE_MAX 63
#define RECORD_LABELS_MAX 32
#define RECORD_LABEL_KEY_MAX 63
#define RECORD_LABEL_VALUE_MAX 255
#define RECORD_WEIGHT_MIN 1
#define RECORD_WEIGHT_MAX 10000
#define RECORD_PATH_MAX 1024
#define RECORD_TOKEN_MAX 128
#define RECORD_RETRIES_MAX 10
#define RECORD_APP_CONCURRENCY_MAX 1000000   /* max_concurrent_requests, max_queued_requests */
/* A certificate record stays far below ZooKeeper's 1 MB jute.maxbuffer. */
#define RECORD_CERT_CHAIN_MAX (256 * 1024)
#define RECORD_CERT_KEY_MAX (64 * 1024)
#define RECORD_CERT_NAME_MAX 100   /* /certs/<name>.<10-digit sequence> */

typedef Zkrouter__Instance record_instance;
typedef Zkrouter__AppConfig record_app_config;
typedef Zkrouter__RouterNode record_router_node;
typedef Zkrouter__TlsCertificate record_tls_certificate;

/* Decode + validate. The result is freed with the matching _free. */
record_instance *record_instance_decode(const uint8_t *buf, size_t len, char *why, size_t whylen);
record_app_config *record_app_config_decode(const uint8_t *buf, size_t len, char *why, size_t whylen);
record_router_node *record_router_node_decode(const uint8_t *buf, size_t len, char *why, size_t whylen);
record_tls_certificate *record_tls_certificate_decode(const uint8_t *buf, size_t len, char *why,
						      size_t whylen);

void record_instance_free(record_instance *r);
void record_app_config_free(record_app_config *r);
void record_router_node_free(record_router_node *r);
void record_tls_certificate_free(record_tls_certificate *r);

bool record_instance_validate(const record_instance *r, char *why, size_t whylen);
bool record_app_config_validate(const record_app_config *r, char *why, size_t whylen);
bool record_router_node_validate(const record_router_node *r, char *why, size_t whylen);
bool record_tls_certificate_validate(const record_tls_certificate *r, char *why, size_t whylen);

/*
 * Validate + encode into a malloc'd buffer; *len receives its size. Returns
 * NULL (with a reason) for a record that would not pass decode on the other
 * side, so nothing invalid is ever written to ZooKeeper.
 */
uint8_t *record_instance_encode(const record_instance *r, size_t *len, char *why, size_t whylen);
uint8_t *record_app_config_encode(const record_app_config *r, size_t *len, char *why, size_t whylen);
uint8_t *record_router_node_encode(const record_router_node *r, size_t *len, char *why, size_t whylen);
uint8_t *record_tls_certificate_encode(const record_tls_certificate *r, size_t *len, char *why,
				       size_t whylen);

/* Field rules, shared with the command-line tools. */
bool record_valid_host(const char *host);          /* IP literal or DNS name */
bool record_valid_domain(const char *domain);      /* app domain, lower case, optional "*." */
bool record_valid_znode_name(const char *name);    /* a single path component */
bool record_valid_token(const char *name);         /* HTTP header / cookie name */
bool record_valid_cert_name(const char *name);     /* /certs/<name>: a-z 0-9 - _ . */

const char *record_balance_name(Zkrouter__AppConfig__Balance b);
bool record_balance_parse(const char *name, Zkrouter__AppConfig__Balance *out);
/* "http1" or "h2c", exactly (the names zkrouterctl and the manual use). */
const char *record_backend_protocol_name(Zkrouter__AppConfig__BackendProtocol b);
bool record_backend_protocol_parse(const char *name, Zkrouter__AppConfig__BackendProtocol *out);

#endif
