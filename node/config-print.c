/*
 * zkrouterd's configuration printed: the effective configuration
 * (--check-config) and the --help text, both loops over the option table
 * (config-options.c) like the parsers in config.c.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "node/config-int.h"
#include "node/config.h"

void config_dump(FILE *out, const struct zkr_config *c)
{
	fprintf(out, "# zkrouterd %s: effective configuration\n", PACKAGE_VERSION);
	for (size_t i = 0; i < config_n_options; i++) {
		const struct option_def *o = &config_options[i];
		const char *p = (const char *)c + o->off;
		if (o->cli_only)
			continue;
		switch (o->type) {
		case OPT_STR:
		case OPT_STR_OFF:
		case OPT_LEVEL: {
			const char *v = *(char *const *)p;
			if (o->off == F(zk_auth) && v != NULL)
				fprintf(out, "# %s = (set, not shown)\n", o->name);
			else if (v == NULL)
				fprintf(out, "%s%s = off\n", o->type == OPT_STR_OFF ? "" : "# ", o->name);
			else
				fprintf(out, strchr(v, '"') ? "%s = %s\n" : "%s = \"%s\"\n", o->name, v);
			break;
		}
		case OPT_LIST: {
			char *const *list = *(char **const *)p;
			size_t n = *(const size_t *)((const char *)c + o->count_off);
			for (size_t k = 0; k < n; k++)
				fprintf(out, "%s = \"%s\"\n", o->name, list[k]);
			break;
		}
		case OPT_BOOL:
			fprintf(out, "%s = %s\n", o->name, *(const bool *)p ? "yes" : "no");
			break;
		case OPT_UINT:
			fprintf(out, "%s = %u\n", o->name, *(const unsigned *)p);
			break;
		case OPT_INT:
			fprintf(out, "%s = %d\n", o->name, *(const int *)p);
			break;
		case OPT_SIZE:
			fprintf(out, "%s = %zu\n", o->name, *(const size_t *)p);
			break;
		}
	}
}

void config_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s --zk CONNECT [--listen ADDR:PORT]... [OPTION]...\n"
		"The zkrouter HTTP routing daemon: routes requests by Host to the app\n"
		"instances registered in ZooKeeper.\n\n"
		"Every option may also be set in the --config file as \"name = value\";\n"
		"the command line wins. [R] marks options SIGHUP reloads from the file.\n\n",
		prog);
	for (size_t i = 0; i < config_n_options; i++) {
		const struct option_def *o = &config_options[i];
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		fprintf(out, "  %-34s %s%s", left, o->reloadable ? "[R] " : "", o->help);
		if (o->def != NULL && o->type != OPT_BOOL)
			fprintf(out, " (default %s)", o->def);
		if (o->max > 0)
			fprintf(out, " [%" PRIu64 "-%" PRIu64 "]", o->min, o->max);
		fputc('\n', out);
	}
	fprintf(out, "  %-34s %s\n  %-34s %s\n\n"
		"Signals: HUP reopens the access log and reloads [R] options;\n"
		"TERM or INT drains (healthz 503, leave /routers, finish requests) and exits.\n"
		"See zkrouterd(8).\n",
		"--help", "show this help and exit", "--version", "show the version and exit");
}
