/*  testutil: what several test files share: private temp folders and
    endpoints, and (for end-to-end tests) starting and stopping binaries. */
#ifndef EDA_TESTUTIL_H_INCLUDED
#define EDA_TESTUTIL_H_INCLUDED

#include <stddef.h>

/*  Creates a fresh private folder under $TMPDIR (or /tmp) and writes its path
    into out[size]. Returns 0 or -1. */
int tu_tempdir(char *out, size_t size);

/*  Removes a folder and everything below it. */
void tu_rmtree(const char *path);

#endif
