/*  fuzz_check: how a harness fails. A broken property prints what broke and
    aborts, so that libFuzzer keeps the input as a crash file.
*/
#ifndef FUZZ_CHECK_H_INCLUDED
#define FUZZ_CHECK_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, what)                                                           \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, what,  \
                    #cond);                                                              \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/*  True when buf[size] holds a NUL, so that it is a C string of its own. */
static inline bool fuzz_terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

/*  True when a reason is a non-empty C string that fits its buffer. */
static inline bool fuzz_reason_ok(const char *why, size_t size)
{
    return fuzz_terminated(why, size) && why[0] != '\0';
}

#endif
