/*  eda_mpread: a cursor over msgpack bytes, read in place: one value's head
    at a time, as msgpack-c would unpack it, with no object tree and no
    allocation. Every count is checked against the bytes left, so hostile
    bytes end the reading (false), never overrun it. eda_decode and the
    services read whole messages and blobs with it (eda_mp_unpack), the flow
    log renders packed data with it, and eda_msgpack_check (the fuzzers'
    and tests' judge of well-formed bytes) walks them with it.
*/
#ifndef EDA_MPREAD_H_INCLUDED
#define EDA_MPREAD_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDA_MP_DEPTH_MAX    32 /* nesting eda_mp_skip follows */
#define EDA_MP_UNPACK_DEPTH 31 /* containers eda_mp_unpack nests (msgpack-c's 32) */

/*  A cursor over [p, end). */
typedef struct {
    const uint8_t *p, *end;
} eda_mp_t;

/*  Opens a cursor on data[len] (none when data is NULL). */
void eda_mp_init(eda_mp_t *r, const void *data, size_t len);

/*  Reads the value at the cursor into `o`: a scalar whole (a string's or a
    bin's bytes pointed to, not copied), an array or a map as its count, its
    elements following (an array or map of n needs n, or 2n, bytes left at
    least). False when the bytes are not msgpack or end early. */
bool eda_mp_next(eda_mp_t *r, msgpack_object *o);

/*  Moves the cursor past one value, nested ones included; `depth` is the
    value's own nesting (1 for a top-level value's elements). False past
    EDA_MP_DEPTH_MAX or on bytes that are not msgpack. */
bool eda_mp_skip(eda_mp_t *r, int depth);

/*  Reads data[len], exactly one msgpack value, into `o` as msgpack_unpack
    would: its arrays and maps allocated from `zone`, its strings, bins and
    extensions pointing into data (which must outlive o). Containers nest at
    most EDA_MP_UNPACK_DEPTH deep. Every count is checked against the bytes
    left before anything is allocated: the zone grows by at most a few
    dozen bytes per byte read, whatever the bytes claim. False when data is
    not one whole well-formed value (or the zone is out of memory). */
bool eda_mp_unpack(const void *data, size_t len, msgpack_zone *zone, msgpack_object *o);

#endif
