/*  test_mpread: eda_mpread, the msgpack reader every message goes through.
    eda_mp_unpack must read exactly what msgpack-c reads, value for value,
    and refuse exactly what eda_msgpack_check refuses; it must never
    allocate by what a count claims.
*/
#include "eda_envelope.h"
#include "eda_mpread.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

TestSuite(mpread, .timeout = 60);

/*  True when a and b are the same value, as msgpack-c represents it. */
static bool s_same(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof a->via.f64) == 0;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        return a->via.str.size == b->via.str.size &&
               (a->via.str.size == 0 || /* an empty one may point nowhere */
                memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               (a->via.ext.size == 0 ||
                memcmp(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size) == 0);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!s_same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!s_same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !s_same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return false;
        return true;
    }
    return false;
}

/*  Reads buf[len] both ways and checks they agree: refused by both, or
    read by both into the same value. Returns whether it was read. */
static bool s_agree(const unsigned char *buf, size_t len)
{
    msgpack_zone ours, theirs;
    msgpack_zone_init(&ours, 1024);
    msgpack_zone_init(&theirs, 1024);
    msgpack_object a, b;
    bool read = eda_mp_unpack(buf, len, &ours, &a);
    bool valid = eda_msgpack_check(buf, len) == 0;
    cr_assert_eq(read, valid, "eda_mp_unpack %s what eda_msgpack_check %s (%zu bytes)",
                 read ? "read" : "refused", valid ? "passes" : "refuses", len);
    if (read) {
        size_t off = 0;
        cr_assert_eq(msgpack_unpack((const char *)buf, len, &off, &theirs, &b),
                     MSGPACK_UNPACK_SUCCESS, "msgpack-c cannot read what we read");
        cr_assert(s_same(&a, &b), "a value read otherwise than msgpack-c reads it");
    }
    msgpack_zone_destroy(&ours);
    msgpack_zone_destroy(&theirs);
    return read;
}

Test(mpread, random_bytes_are_read_as_msgpack_c_reads_them_or_refused_as_the_check_does)
{
    /* Bytes drawn mostly from the format's type bytes, so that many are
       valid msgpack with every type in it. Seeded: a failure repeats. */
    static const unsigned char pick[] = {
        0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x8f, 0x90, 0x91, 0x92, 0x9f, 0xa0, 0xa1,
        0xa3, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
        0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
        0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    srand(20261126);
    unsigned char buf[48];
    long read = 0;
    for (long run = 0; run < 400000; run++) {
        size_t len = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = rand() % 3 ? pick[rand() % (int)sizeof pick] : (unsigned char)rand();
        read += s_agree(buf, len);
    }
    cr_assert_gt(read, 5000, "only %ld of the random inputs were msgpack", read);
}

Test(mpread, every_type_packed_by_msgpack_c_reads_back_the_same)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 16);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_int8(&pk, 5); /* a signed encoding of a value that is not negative */
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, -0.25);
    msgpack_pack_str_with_body(&pk, "Zoë", 4);
    msgpack_pack_bin_with_body(&pk, "\0\1", 2);
    msgpack_pack_ext_with_body(&pk, "abcd", 4, 7); /* fixext 4 */
    msgpack_pack_ext_with_body(&pk, "abc", 3, -2); /* ext 8 */
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 0);
    char big[300];
    memset(big, 'x', sizeof big);
    msgpack_pack_str_with_body(&pk, big, sizeof big); /* str 16 */
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint16(&pk, 300);
    msgpack_pack_int32(&pk, -70000);
    cr_assert(s_agree((const unsigned char *)sb.data, sb.size));
    msgpack_sbuffer_destroy(&sb);
}

Test(mpread, trailing_bytes_and_deep_nesting_are_refused)
{
    const unsigned char two[] = {0x01, 0x02};
    cr_assert_not(s_agree(two, sizeof two), "two values are not one message");
    unsigned char deep[40];
    memset(deep, 0x91, sizeof deep); /* arrays of one array... */
    deep[sizeof deep - 1] = 0x00;
    cr_assert_not(s_agree(deep, sizeof deep), "39 nested arrays were read");
    cr_assert_not(s_agree(deep + sizeof deep - 33, 33), "32 nested arrays were read");
    cr_assert(s_agree(deep + sizeof deep - 32, 32), "31 nested arrays were refused");
}

Test(mpread, a_count_claiming_billions_allocates_nothing)
{
    /* An array of 2^32-1 elements, a map of as many pairs, a string of
       4 GiB: refused at their head, before the zone grows. */
    const unsigned char claims[][5] = {{0xdd, 0xff, 0xff, 0xff, 0xff},
                                       {0xdf, 0xff, 0xff, 0xff, 0xff},
                                       {0xdb, 0xff, 0xff, 0xff, 0xff}};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        msgpack_zone zone;
        msgpack_zone_init(&zone, 64);
        msgpack_object o;
        size_t free_before = zone.chunk_list.free;
        cr_assert_not(eda_mp_unpack(claims[i], sizeof claims[i], &zone, &o));
        cr_assert_eq(zone.chunk_list.free, free_before, "the zone grew for claim %zu", i);
        msgpack_zone_destroy(&zone);
    }
}
