/*
 * What every fuzz harness in tests/fuzz/ shares. A harness is one file,
 * tests/fuzz/fuzz_<target>.c, that defines LLVMFuzzerTestOneInput and
 * nothing else global; its seeds live in tests/fuzz/corpus/<target>/.
 * The same file links with libFuzzer (tests/fuzz/run, clang) or with
 * tests/fuzz/replay.c (make check, any compiler), which feeds it every
 * corpus file once.
 *
 * A harness calls the real code the way the daemon does and checks what
 * must hold whatever the input (FUZZ_CHECK): a broken property aborts, so
 * libFuzzer saves the input and the replay fails.
 */
#ifndef ZKR_FUZZ_H
#define ZKR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

#endif
