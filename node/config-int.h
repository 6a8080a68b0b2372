/*
 * The option table's shape, shared by config.c (the loops that parse,
 * check, reload and print options) and config-options.c (the table).
 * Not for the rest of the daemon, which uses config.h.
 */
#ifndef ZKR_CONFIG_INT_H
#define ZKR_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opt_type {
	OPT_STR,       /* char *; "" stays "" */
	OPT_STR_OFF,   /* char *; "off" or "" means NULL */
	OPT_LIST,      /* char **, repeatable; count at count_off */
	OPT_UINT,      /* unsigned */
	OPT_INT,       /* int */
	OPT_SIZE,      /* size_t; accepts k/m suffixes (x1024) */
	OPT_BOOL,      /* bool; a flag on the command line */
	OPT_LEVEL,     /* char *, one of the log levels */
};

struct option_def {
	const char *name;
	enum opt_type type;
	size_t off;
	size_t count_off;          /* OPT_LIST only */
	const char *def;           /* NULL: unset */
	uint64_t min, max;         /* numbers only */
	bool reloadable;
	bool cli_only;             /* not allowed in the file */
	const char *metavar;
	const char *help;
};

/* The place of a field of struct zkr_config, for `off` and `count_off`. */
#define F(field) offsetof(struct zkr_config, field)
#define NOBOUND 0, 0

/* More than the table holds (checked where it is defined), so per-option
 * flags can be plain arrays. */
#define CONFIG_OPTIONS_MAX 128

extern const struct option_def config_options[];
extern const size_t config_n_options;

#endif
