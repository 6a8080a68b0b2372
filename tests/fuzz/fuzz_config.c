/*
 * Fuzz target "config": zkrouterd's configuration file, read through
 * config_load exactly as `zkrouterd --config FILE` reads it (defaults,
 * the file, then the cross-option checks). The input is the file.
 *
 * Properties: a refusal always says why; an accepted configuration
 * dumps and frees cleanly (the sanitizers check the memory).
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "node/config.h"
#include "registry/log.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static FILE *devnull;
	char path[64], why[512];
	struct zkr_config c;

	if (fd < 0) {
		/* An in-memory file, so fuzzing does not wear a disk. */
		zkr_log_set_level(ZKR_LOG_ERROR);
		fd = memfd_create("zkrouterd.conf", 0);
		devnull = fopen("/dev/null", "w");
		FUZZ_CHECK(fd >= 0 && devnull != NULL);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char *argv[] = { "zkrouterd", "--config", path, NULL };

	why[0] = '\0';
	if (config_load(&c, 3, argv, devnull, why, sizeof(why)) != CONFIG_OK) {
		FUZZ_CHECK(why[0] != '\0');
		return 0;
	}
	config_dump(devnull, &c);
	config_free(&c);
	return 0;
}
