/*
 * Leveled logging shared by every zkrouter program.
 *
 * Lines go to stderr (with a UTC timestamp, the program name and the level)
 * or to syslog. The macros check the level before formatting, so a debug
 * line on a hot path costs one comparison when debug is off. Callers that
 * have context (a connection, a request id, an app) put it at the start of
 * the message; see node/ for per-connection wrappers.
 */
#ifndef ZKR_LOG_H
#define ZKR_LOG_H

#include <config.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

enum zkr_log_level {
	ZKR_LOG_ERROR = 0,
	ZKR_LOG_WARN,
	ZKR_LOG_INFO,
	ZKR_LOG_DEBUG,
};

extern enum zkr_log_level zkr_log_threshold;

/* The threshold, read atomically: a reload sets it on the event loop's
 * thread while other threads (the state file's writer) log. */
static inline enum zkr_log_level zkr_log_level_now(void)
{
	return __atomic_load_n(&zkr_log_threshold, __ATOMIC_RELAXED);
}

/* Sets the program name shown on each line and where lines go. */
void zkr_log_init(const char *ident, enum zkr_log_level level, bool use_syslog);
void zkr_log_set_level(enum zkr_log_level level);

/* Parses "error", "warn", "info" or "debug"; returns false on anything else. */
bool zkr_log_parse_level(const char *name, enum zkr_log_level *out);
const char *zkr_log_level_name(enum zkr_log_level level);

void zkr_log_write(enum zkr_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void zkr_log_vwrite(enum zkr_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* The reason a call failed, for its caller's `why` buffer (which may be
 * NULL or empty: then nothing is written). */
void zkr_set_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define zkr_log_at(lvl, ...) \
	do { \
		if ((lvl) <= zkr_log_level_now()) \
			zkr_log_write((lvl), __VA_ARGS__); \
	} while (0)

#define log_error(...) zkr_log_at(ZKR_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  zkr_log_at(ZKR_LOG_WARN, __VA_ARGS__)
#define log_info(...)  zkr_log_at(ZKR_LOG_INFO, __VA_ARGS__)
#define log_debug(...) zkr_log_at(ZKR_LOG_DEBUG, __VA_ARGS__)

/*
 * A broken invariant (a dead object in a callback, a reference count
 * going below zero): the code is wrong, not the input. Debug and sanitizer
 * builds (ZKR_DEBUG, from ./configure --enable-debug or
 * --enable-sanitizers) abort here, where a core dump or a sanitizer
 * report still shows the cause; production builds log it and the caller
 * goes on as its comment says (typically: leave the object alone, since a
 * leak is better than a use after free or a crash of every connection).
 */
#ifdef ZKR_DEBUG
#define ZKR_BUG(...) \
	do { \
		zkr_log_write(ZKR_LOG_ERROR, "BUG: " __VA_ARGS__); \
		abort(); \
	} while (0)
#else
#define ZKR_BUG(...) zkr_log_write(ZKR_LOG_ERROR, "BUG: " __VA_ARGS__)
#endif

#endif
