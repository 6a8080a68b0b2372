/*
 * Leveled logging to stderr or syslog. See log.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "registry/log.h"

enum zkr_log_level zkr_log_threshold = ZKR_LOG_INFO;

static const char *log_ident = "zkrouter";
static bool log_syslog;

static const char *const level_names[] = {
	[ZKR_LOG_ERROR] = "error",
	[ZKR_LOG_WARN] = "warn",
	[ZKR_LOG_INFO] = "info",
	[ZKR_LOG_DEBUG] = "debug",
};

static const int level_priority[] = {
	[ZKR_LOG_ERROR] = LOG_ERR,
	[ZKR_LOG_WARN] = LOG_WARNING,
	[ZKR_LOG_INFO] = LOG_INFO,
	[ZKR_LOG_DEBUG] = LOG_DEBUG,
};

void zkr_log_init(const char *ident, enum zkr_log_level level, bool use_syslog)
{
	if (ident != NULL)
		log_ident = ident;
	__atomic_store_n(&zkr_log_threshold, level, __ATOMIC_RELAXED);
	if (use_syslog && !log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

void zkr_log_set_level(enum zkr_log_level level)
{
	__atomic_store_n(&zkr_log_threshold, level, __ATOMIC_RELAXED);
}

bool zkr_log_parse_level(const char *name, enum zkr_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum zkr_log_level)i;
			return true;
		}
	}
	return false;
}

const char *zkr_log_level_name(enum zkr_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void zkr_set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

void zkr_log_vwrite(enum zkr_log_level level, const char *fmt, va_list ap)
{
	if (level > zkr_log_level_now())
		return;
	if (log_syslog) {
		vsyslog(level_priority[level], fmt, ap);
		return;
	}

	/* One fprintf per line keeps lines from several writers whole. */
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);

	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s\n", stamp, (long)tv.tv_usec / 1000,
		log_ident, (long)getpid(), level_names[level], msg);
}

void zkr_log_write(enum zkr_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	zkr_log_vwrite(level, fmt, ap);
	va_end(ap);
}
