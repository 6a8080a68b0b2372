/*
 * The shared runner for CUnit suites. A suite file defines unit_register(),
 * which adds its suites and tests with the helpers below; libzkrtest.a
 * supplies main(), runs everything in verbose mode, prints CUnit's run
 * summary and exits 1 if anything failed (99 if the registry broke).
 */
#ifndef ZKR_TEST_UNIT_H
#define ZKR_TEST_UNIT_H

#include <CUnit/CUnit.h>

void unit_register(void);

CU_pSuite unit_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean);
void unit_test(CU_pSuite suite, const char *name, CU_TestFunc fn);

#define UNIT_TEST(suite, fn) unit_test((suite), #fn, (fn))

#endif
