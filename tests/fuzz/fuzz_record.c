/*
 * Fuzz target "record": the records a router reads from ZooKeeper,
 * where any client with write access to an app's znodes controls the
 * bytes. Byte 0 picks the decoder (0: Instance, 1: AppConfig, 2:
 * RouterNode, modulo 3); the rest is the znode's data.
 *
 * Properties: a record that decodes (and so validates) also encodes, and
 * what it encodes to decodes again; a refusal always says why.
 */
#include <string.h>

#include "registry/record.h"
#include "tests/fuzz/fuzz.h"

#define ROUND_TRIP(name, buf, len) \
	do { \
		char why[RECORD_WHY_MAX]; \
		size_t elen; \
		why[0] = '\0'; \
		record_##name *r = record_##name##_decode(buf, len, why, sizeof(why)); \
		if (r == NULL) { \
			FUZZ_CHECK(why[0] != '\0'); \
			break; \
		} \
		FUZZ_CHECK(record_##name##_validate(r, why, sizeof(why))); \
		uint8_t *enc = record_##name##_encode(r, &elen, why, sizeof(why)); \
		FUZZ_CHECK(enc != NULL); \
		record_##name *again = record_##name##_decode(enc, elen, why, sizeof(why)); \
		FUZZ_CHECK(again != NULL); \
		record_##name##_free(again); \
		free(enc); \
		record_##name##_free(r); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		ROUND_TRIP(instance, data + 1, size - 1);
		break;
	case 1:
		ROUND_TRIP(app_config, data + 1, size - 1);
		break;
	default:
		ROUND_TRIP(router_node, data + 1, size - 1);
		break;
	}
	return 0;
}
