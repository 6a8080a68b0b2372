/*
 * Admin suite: the JSON string escaping /routes relies on. Every string
 * in the output goes through admin_json_string, so a value with quotes,
 * backslashes, control bytes or non-UTF-8 bytes must still give one valid
 * JSON string with the same meaning.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "node/admin.h"
#include "tests/lib/unit.h"

static void test_json_string(void)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "", "\"\"" },
		{ "plain.example.com", "\"plain.example.com\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "back\\slash", "\"back\\\\slash\"" },
		{ "line\nfeed\r\ttab", "\"line\\nfeed\\r\\ttab\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "</script>", "\"</script>\"" },
		{ "\xff\xc3", "\"\\u00ff\\u00c3\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct evbuffer *b = evbuffer_new();
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		admin_json_string(b, cases[i].in);
		size_t len = evbuffer_get_length(b);
		char *got = calloc(1, len + 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		evbuffer_remove(b, got, len);
		if (strcmp(got, cases[i].out) != 0)
			fprintf(stderr, "case %zu: got %s want %s\n", i, got, cases[i].out);
		CU_ASSERT_STRING_EQUAL(got, cases[i].out);
		free(got);
		evbuffer_free(b);
	}
}

static void test_json_null_is_empty(void)
{
	struct evbuffer *b = evbuffer_new();
	char got[8] = "";
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	admin_json_string(b, NULL);
	evbuffer_remove(b, got, sizeof(got) - 1);
	CU_ASSERT_STRING_EQUAL(got, "\"\"");
	evbuffer_free(b);
}

void unit_register(void)
{
	CU_pSuite s = unit_suite("admin", NULL, NULL);
	UNIT_TEST(s, test_json_string);
	UNIT_TEST(s, test_json_null_is_empty);
}
