/*
 * zkrouterctl's shared helpers: error reporting with one prefix and the
 * exit codes of --help, strict option parsing, and the renderings of
 * records in JSON and in one-line human summaries.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/ctl/ctl.h"

void ctl_err(const char *fmt, ...)
{
	va_list ap;
	fputs("zkrouterctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage_err(const char *fmt, ...)
{
	va_list ap;
	fputs("zkrouterctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see zkrouterctl --help)\n", stderr);
	return CTL_EXIT_USAGE;
}

int ctl_zk_fail(const char *what, const char *path, int rc)
{
	ctl_err("%s %s: %s", what, path, ctl_zk_strerror(rc));
	return CTL_EXIT_FAIL;
}

bool ctl_check_domain(const char *domain)
{
	if (record_valid_domain(domain))
		return true;
	ctl_err("invalid domain \"%s\": use lower-case DNS labels (a-z, 0-9, '-'), "
		"optionally starting with \"*.\", without port or trailing dot", domain);
	return false;
}

bool ctl_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		goto bad;
	*out = v;
	return true;
bad:
	ctl_err("%s: \"%s\" is not a whole number in %" PRIu64 "-%" PRIu64 " (see zkrouterctl --help)",
		opt, s ? s : "", lo, hi);
	return false;
}

void json_str_array(FILE *f, const char *key, char *const *v, size_t n)
{
	fprintf(f, ",\"%s\":[", key);
	for (size_t k = 0; k < n; k++) {
		if (k)
			fputc(',', f);
		json_str(f, v[k]);
	}
	fputc(']', f);
}

void ctl_router_addresses(char *out, size_t outlen, char *const *listen, size_t n_listen,
			  char *const *tls_listen, size_t n_tls_listen)
{
	size_t off = 0;

	snprintf(out, outlen, "-");
	for (size_t k = 0; k < n_listen + n_tls_listen && off < outlen; k++) {
		bool tls = k >= n_listen;
		int w = snprintf(out + off, outlen - off, "%s%s%s", off ? "," : "", tls ? "tls:" : "",
				 tls ? tls_listen[k - n_listen] : listen[k]);

		if (w > 0)
			off += (size_t)w;
	}
}

void json_strn(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		switch (ch) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\u%04x", ch);
			else
				fputc(ch, f);
		}
	}
	fputc('"', f);
}

void json_str(FILE *f, const char *s)
{
	if (s == NULL)
		fputs("null", f);
	else
		json_strn(f, s, strlen(s));
}

uint64_t ctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void ctl_format_time(uint64_t ms, char *out, size_t outlen)
{
	if (ms == 0) {
		snprintf(out, outlen, "-");
		return;
	}
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(out, outlen, "%" PRIu64, ms);
		return;
	}
	char buf[32];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03uZ", buf, (unsigned)(ms % 1000));
}

void ctl_print_app_config_json(FILE *f, const record_app_config *cfg)
{
	fprintf(f, "{\"balance\":\"%s\"", record_balance_name(cfg->balance));
	if (cfg->hash_key != NULL) {
		fputs(",\"hash_key\":", f);
		json_str(f, cfg->hash_key);
	}
	if (cfg->has_connect_timeout_ms)
		fprintf(f, ",\"connect_timeout_ms\":%u", cfg->connect_timeout_ms);
	if (cfg->has_response_timeout_ms)
		fprintf(f, ",\"response_timeout_ms\":%u", cfg->response_timeout_ms);
	if (cfg->has_idle_timeout_ms)
		fprintf(f, ",\"idle_timeout_ms\":%u", cfg->idle_timeout_ms);
	if (cfg->health_path != NULL) {
		fputs(",\"health_path\":", f);
		json_str(f, cfg->health_path);
	}
	if (cfg->has_health_interval_ms)
		fprintf(f, ",\"health_interval_ms\":%u", cfg->health_interval_ms);
	if (cfg->sticky_cookie != NULL) {
		fputs(",\"sticky_cookie\":", f);
		json_str(f, cfg->sticky_cookie);
	}
	fprintf(f, ",\"redirect_https\":%s", cfg->redirect_https ? "true" : "false");
	if (cfg->has_max_connections)
		fprintf(f, ",\"max_connections\":%u", cfg->max_connections);
	if (cfg->has_max_body_bytes)
		fprintf(f, ",\"max_body_bytes\":%" PRIu64, (uint64_t)cfg->max_body_bytes);
	if (cfg->has_retries)
		fprintf(f, ",\"retries\":%u", cfg->retries);
	if (cfg->has_max_concurrent_requests)
		fprintf(f, ",\"max_concurrent_requests\":%u", cfg->max_concurrent_requests);
	if (cfg->has_max_queued_requests)
		fprintf(f, ",\"max_queued_requests\":%u", cfg->max_queued_requests);
	if (cfg->has_backend_protocol)
		fprintf(f, ",\"backend_protocol\":\"%s\"",
			record_backend_protocol_name(cfg->backend_protocol));
	fputc('}', f);
}

void ctl_print_instance_fields(FILE *f, const char *id, const record_instance *r)
{
	fputs("\"id\":", f);
	json_str(f, id);
	fputs(",\"host\":", f);
	json_str(f, r->host);
	fprintf(f, ",\"port\":%u,\"weight\":%u,\"zone\":", r->port, r->weight);
	json_str(f, r->zone);
	fprintf(f, ",\"state\":\"%s\",\"registered_at_ms\":%" PRIu64 ",\"labels\":{",
		r->state == ZKROUTER__INSTANCE__STATE__DRAINING ? "draining" : "up",
		(uint64_t)r->registered_at_ms);
	for (size_t i = 0; i < r->n_labels; i++) {
		if (i > 0)
			fputc(',', f);
		json_str(f, r->labels[i]->key);
		fputc(':', f);
		json_str(f, r->labels[i]->value != NULL ? r->labels[i]->value : "");
	}
	fputc('}', f);
}

void ctl_app_config_summary(const record_app_config *cfg, char *out, size_t outlen)
{
	size_t n = 0;
#define ADD(...) do { \
		if (n < outlen) { \
			int k = snprintf(out + n, outlen - n, __VA_ARGS__); \
			if (k > 0) \
				n += (size_t)k; \
		} \
	} while (0)
	ADD("%s", record_balance_name(cfg->balance));
	if (cfg->hash_key != NULL)
		ADD(" key=%s", cfg->hash_key);
	if (cfg->health_path != NULL)
		ADD(" health=%s", cfg->health_path);
	if (cfg->has_health_interval_ms)
		ADD("@%ums", cfg->health_interval_ms);
	if (cfg->has_connect_timeout_ms)
		ADD(" connect=%ums", cfg->connect_timeout_ms);
	if (cfg->has_response_timeout_ms)
		ADD(" response=%ums", cfg->response_timeout_ms);
	if (cfg->has_idle_timeout_ms)
		ADD(" idle=%ums", cfg->idle_timeout_ms);
	if (cfg->has_retries)
		ADD(" retries=%u", cfg->retries);
	if (cfg->sticky_cookie != NULL)
		ADD(" sticky=%s", cfg->sticky_cookie);
	if (cfg->redirect_https)
		ADD(" https-only");
	if (cfg->has_max_connections)
		ADD(" max-conn=%u", cfg->max_connections);
	if (cfg->has_max_body_bytes)
		ADD(" max-body=%" PRIu64, (uint64_t)cfg->max_body_bytes);
	if (cfg->has_max_concurrent_requests)
		ADD(" max-concurrent=%u", cfg->max_concurrent_requests);
	if (cfg->has_max_queued_requests)
		ADD(" max-queued=%u", cfg->max_queued_requests);
	if (cfg->backend_protocol != ZKROUTER__APP_CONFIG__BACKEND_PROTOCOL__HTTP1)
		ADD(" backend=%s", record_backend_protocol_name(cfg->backend_protocol));
#undef ADD
}
