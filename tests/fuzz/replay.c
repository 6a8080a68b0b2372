/*
 * Replays fuzz inputs through a harness without libFuzzer, so that
 * `make check` runs every committed corpus with the ordinary compiler:
 * each argument is a file, or a directory whose files are replayed in
 * name order (deterministic). Exits 0 when every input ran; a broken
 * property or a sanitizer report aborts the process instead.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Inputs larger than this are not seeds; libFuzzer's default is 4096. */
#define REPLAY_MAX (1024 * 1024)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(REPLAY_MAX + 1)) == NULL) {
		fprintf(stderr, "replay: out of memory\n");
		goto failed;
	}
	len = fread(buf, 1, REPLAY_MAX + 1, f);
	if (ferror(f) || len > REPLAY_MAX) {
		fprintf(stderr, "replay: %s: %s\n", path, ferror(f) ? "read error" : "too large");
		goto failed;
	}
	/* An exact-size copy, so that ASan sees a read past the input. */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact == NULL) {
		fprintf(stderr, "replay: out of memory\n");
		goto failed;
	}
	memcpy(exact, buf, len);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	rc = 0;
failed:
	free(buf);
	fclose(f);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the regular files of a directory in name order; returns how
 * many ran, or -1 on an error. */
static long replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long done = -1;

	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **more = realloc(names, (cap ? 2 * cap : 64) * sizeof(*names));
			if (more == NULL)
				goto failed;
			names = more;
			cap = cap ? 2 * cap : 64;
		}
		if ((names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2)) == NULL)
			goto failed;
		sprintf(names[n], "%s/%s", dir, e->d_name);
		n++;
	}
	qsort(names, n, sizeof(*names), by_name);
	done = 0;
	for (size_t i = 0; i < n; i++) {
		if (replay_file(names[i]) != 0) {
			done = -1;
			break;
		}
		done++;
	}
failed:
	if (done < 0 && errno == ENOMEM)
		fprintf(stderr, "replay: out of memory\n");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return done;
}

int main(int argc, char **argv)
{
	long total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long n;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			n = replay_dir(argv[i]);
		} else {
			n = replay_file(argv[i]) == 0 ? 1 : -1;
		}
		if (n < 0)
			return 1;
		total += n;
	}
	printf("replayed %ld inputs\n", total);
	return 0;
}
