/* Golden files of the unit tests, in $KEEL_TEST_DATA (tests/data/). */
#ifndef KEEL_TESTS_UNIT_TESTDATA_H
#define KEEL_TESTS_UNIT_TESTDATA_H

#include <stddef.h>

/*
 * The whole of $KEEL_TEST_DATA/<dir>/<name>, NUL-terminated (caller
 * frees); *len (may be NULL) gets its length.  Asserts (check) when it
 * cannot be read.
 */
char *keel_test_data(const char *dir, const char *name, size_t *len);

#endif /* KEEL_TESTS_UNIT_TESTDATA_H */
