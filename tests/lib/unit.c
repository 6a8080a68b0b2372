/*
 * main() for every CUnit suite binary. See unit.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "tests/lib/unit.h"

static void die(const char *what)
{
	fprintf(stderr, "CUnit: %s: %s\n", what, CU_get_error_msg());
	exit(99);
}

CU_pSuite unit_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean)
{
	CU_pSuite s = CU_add_suite(name, init, clean);
	if (s == NULL)
		die("CU_add_suite");
	return s;
}

void unit_test(CU_pSuite suite, const char *name, CU_TestFunc fn)
{
	if (CU_add_test(suite, name, fn) == NULL)
		die("CU_add_test");
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		die("CU_initialize_registry");
	unit_register();
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		die("CU_basic_run_tests");
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed()
		+ CU_get_number_of_suites_failed();
	unsigned ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	if (ran == 0) {
		fprintf(stderr, "no test ran\n");
		return 99;
	}
	return failed ? 1 : 0;
}
