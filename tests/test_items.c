/*  test_items: the `items` array of PlaceOrder and ReserveStock (DESIGN
    section 3): 1 to 100 items, each a non-empty sku, a qty >= 1 and, where
    needed, a price >= 0 in cents.
*/
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "eda_items.h"

/*  One value of an item map, or its absence. */
typedef enum { V_ABSENT, V_STR, V_STRN, V_INT, V_UINT, V_NIL, V_FLOAT, V_ARRAY } v_type_t;

typedef struct {
    v_type_t t;
    const char *s;
    int64_t n; /* V_INT, V_UINT, V_STRN length */
} val_t;

typedef struct {
    val_t sku, qty, price;
} spec_t;

#define STR(x)  ((val_t){V_STR, (x), 0})
#define INT(x)  ((val_t){V_INT, NULL, (x)})
#define ABSENT  ((val_t){V_ABSENT, NULL, 0})
#define NIL     ((val_t){V_NIL, NULL, 0})
#define GOOD(i) ((spec_t){STR("sku-" #i), INT(i), INT(100 * (i))})

/*  The array under test, unpacked. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object obj;
} packed_t;

static void s_unpack(packed_t *p)
{
    msgpack_zone_init(&p->zone, 4096);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack(p->sb.data, p->sb.size, &off, &p->zone, &p->obj),
                 MSGPACK_UNPACK_SUCCESS);
}

static void s_free(packed_t *p)
{
    msgpack_zone_destroy(&p->zone);
    msgpack_sbuffer_destroy(&p->sb);
}

static void s_pack_val(msgpack_packer *pk, const char *key, val_t v)
{
    if (v.t == V_ABSENT)
        return;
    eda_pack_key(pk, key);
    switch (v.t) {
    case V_STR:
        eda_pack_str(pk, v.s);
        break;
    case V_STRN:
        msgpack_pack_str_with_body(pk, v.s, (size_t)v.n);
        break;
    case V_INT:
        msgpack_pack_int64(pk, v.n);
        break;
    case V_UINT:
        msgpack_pack_uint64(pk, (uint64_t)v.n);
        break;
    case V_NIL:
        msgpack_pack_nil(pk);
        break;
    case V_FLOAT:
        msgpack_pack_double(pk, 2.5);
        break;
    case V_ARRAY:
        msgpack_pack_array(pk, 0);
        break;
    case V_ABSENT:
        break;
    }
}

/*  Packs and unpacks an array of items from specs. */
static void s_build(packed_t *p, const spec_t *specs, size_t n)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const spec_t *s = &specs[i];
        uint32_t keys =
            (s->sku.t != V_ABSENT) + (s->qty.t != V_ABSENT) + (s->price.t != V_ABSENT);
        msgpack_pack_map(&pk, keys);
        s_pack_val(&pk, "sku", s->sku);
        s_pack_val(&pk, "qty", s->qty);
        s_pack_val(&pk, "price", s->price);
    }
    s_unpack(p);
}

/*  Reads an array built from specs; returns eda_items_read's result. */
static int s_read(const spec_t *specs, size_t n, bool need_price, eda_item_t *out,
                  char *why, size_t why_size)
{
    packed_t p;
    s_build(&p, specs, n);
    why[0] = '\0';
    int rc = eda_items_read(&p.obj, need_price, out, why, why_size);
    s_free(&p);
    if (rc < 0)
        cr_assert(why[0] != '\0', "a refusal gives a reason");
    return rc;
}

/*  One good item followed by `bad` as the second: the read must fail both with
    and without need_price, naming item 2. */
static void s_assert_second_refused(spec_t bad, const char *what)
{
    spec_t specs[2] = {GOOD(1), bad};
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256];
    for (int need = 0; need < 2; need++) {
        cr_assert_eq(s_read(specs, 2, need, out, why, sizeof why), -1,
                     "%s (need_price %d)", what, need);
        cr_assert_not_null(strstr(why, "item 2"), "%s: '%s' names the item", what, why);
    }
}

Test(items, good_array_with_prices)
{
    spec_t specs[3] = {GOOD(1), GOOD(2), GOOD(3)};
    specs[1].price = INT(0); /* free is allowed */
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256];
    cr_assert_eq(s_read(specs, 3, true, out, why, sizeof why), 3, "%s", why);
    cr_assert_str_eq(out[0].sku, "sku-1");
    cr_assert_eq(out[0].qty, 1);
    cr_assert_eq(out[0].price, 100);
    cr_assert_str_eq(out[1].sku, "sku-2");
    cr_assert_eq(out[1].qty, 2);
    cr_assert_eq(out[1].price, 0);
    cr_assert_str_eq(out[2].sku, "sku-3");
    cr_assert_eq(out[2].qty, 3);
    cr_assert_eq(out[2].price, 300);
}

Test(items, prices_absent_when_not_required)
{
    spec_t specs[2] = {{STR("A"), INT(2), ABSENT}, {STR("B"), INT(5), NIL}};
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256];
    cr_assert_eq(s_read(specs, 2, false, out, why, sizeof why), 2, "%s", why);
    cr_assert_eq(out[0].price, -1, "no price reads as -1");
    cr_assert_eq(out[1].price, -1, "a nil price reads as -1");
    cr_assert_eq(out[1].qty, 5);
    /* a price given where none is needed is still read and checked */
    spec_t priced[1] = {{STR("A"), INT(2), INT(250)}};
    cr_assert_eq(s_read(priced, 1, false, out, why, sizeof why), 1);
    cr_assert_eq(out[0].price, 250);
}

Test(items, price_missing_when_required)
{
    spec_t specs[1] = {{STR("A"), INT(2), ABSENT}};
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256];
    cr_assert_eq(s_read(specs, 1, true, out, why, sizeof why), -1);
    specs[0].price = NIL;
    cr_assert_eq(s_read(specs, 1, true, out, why, sizeof why), -1, "nil is no price");
}

Test(items, bad_price)
{
    s_assert_second_refused((spec_t){STR("X"), INT(1), INT(-1)}, "price -1");
    s_assert_second_refused((spec_t){STR("X"), INT(1), INT(INT64_MIN)},
                            "price INT64_MIN");
    s_assert_second_refused((spec_t){STR("X"), INT(1), STR("100")}, "price string");
    s_assert_second_refused((spec_t){STR("X"), INT(1), {V_FLOAT, NULL, 0}},
                            "price float");
    s_assert_second_refused((spec_t){STR("X"), INT(1), {V_UINT, NULL, -1}},
                            "price 2^64-1");
}

Test(items, zero_one_hundred_and_101_items)
{
    static spec_t specs[EDA_ITEMS_MAX + 1];
    for (size_t i = 0; i < EDA_ITEMS_MAX + 1; i++)
        specs[i] = GOOD(7);
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256];
    cr_assert_eq(s_read(specs, 0, true, out, why, sizeof why), -1, "0 items");
    cr_assert_eq(s_read(specs, 1, true, out, why, sizeof why), 1);
    cr_assert_eq(s_read(specs, EDA_ITEMS_MAX, true, out, why, sizeof why), EDA_ITEMS_MAX);
    cr_assert_eq(s_read(specs, EDA_ITEMS_MAX + 1, true, out, why, sizeof why), -1,
                 "101 items");
}

Test(items, not_an_array)
{
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256] = "";
    cr_assert_eq(eda_items_read(NULL, true, out, why, sizeof why), -1);
    cr_assert(why[0] != '\0');
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    cr_assert_eq(eda_items_read(&nil, false, out, why, sizeof why), -1);

    /* a single item map instead of an array of them */
    packed_t p;
    msgpack_sbuffer_init(&p.sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p.sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    eda_pack_kv_str(&pk, "sku", "A");
    eda_pack_kv_i64(&pk, "qty", 1);
    s_unpack(&p);
    cr_assert_eq(eda_items_read(&p.obj, false, out, why, sizeof why), -1);
    s_free(&p);
}

Test(items, item_not_a_map)
{
    packed_t p;
    msgpack_sbuffer_init(&p.sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p.sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 2);
    eda_pack_kv_str(&pk, "sku", "A");
    eda_pack_kv_i64(&pk, "qty", 1);
    eda_pack_str(&pk, "B");
    s_unpack(&p);
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256] = "";
    cr_assert_eq(eda_items_read(&p.obj, false, out, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "item 2"), "%s", why);
    s_free(&p);
}

Test(items, bad_sku)
{
    char s65[66];
    memset(s65, 's', 65);
    s65[65] = '\0';
    s_assert_second_refused((spec_t){ABSENT, INT(1), INT(1)}, "missing sku");
    s_assert_second_refused((spec_t){STR(""), INT(1), INT(1)}, "empty sku");
    s_assert_second_refused((spec_t){NIL, INT(1), INT(1)}, "nil sku");
    s_assert_second_refused((spec_t){STR(s65), INT(1), INT(1)}, "65-byte sku");
    s_assert_second_refused((spec_t){INT(12), INT(1), INT(1)}, "integer sku");
    s_assert_second_refused((spec_t){{V_STRN, "A\0B", 3}, INT(1), INT(1)}, "NUL in sku");
    s_assert_second_refused((spec_t){{V_ARRAY, NULL, 0}, INT(1), INT(1)}, "array sku");
}

Test(items, sku_of_64_bytes_fits)
{
    char s64[65];
    memset(s64, 's', 64);
    s64[64] = '\0';
    spec_t specs[1] = {{STR(s64), INT(1), INT(1)}};
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256];
    cr_assert_eq(s_read(specs, 1, true, out, why, sizeof why), 1, "%s", why);
    cr_assert_str_eq(out[0].sku, s64);
}

Test(items, bad_qty)
{
    s_assert_second_refused((spec_t){STR("X"), INT(0), INT(1)}, "qty 0");
    s_assert_second_refused((spec_t){STR("X"), INT(-1), INT(1)}, "qty -1");
    s_assert_second_refused((spec_t){STR("X"), STR("2"), INT(1)}, "qty string");
    s_assert_second_refused((spec_t){STR("X"), ABSENT, INT(1)}, "qty missing");
    s_assert_second_refused((spec_t){STR("X"), NIL, INT(1)}, "qty nil");
    s_assert_second_refused((spec_t){STR("X"), {V_FLOAT, NULL, 0}, INT(1)}, "qty float");
    s_assert_second_refused((spec_t){STR("X"), {V_UINT, NULL, -1}, INT(1)}, "qty 2^64-1");
}

Test(items, large_qty_and_unknown_keys)
{
    packed_t p;
    msgpack_sbuffer_init(&p.sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p.sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    eda_pack_kv_str(&pk, "note", "gift wrap");
    eda_pack_kv_str(&pk, "sku", "A");
    eda_pack_kv_u64(&pk, "qty", INT64_MAX);
    eda_pack_kv_i64(&pk, "price", 1);
    s_unpack(&p);
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256] = "";
    cr_assert_eq(eda_items_read(&p.obj, true, out, why, sizeof why), 1, "%s", why);
    cr_assert_eq(out[0].qty, INT64_MAX);
    s_free(&p);
}

Test(items, pack_then_read_round_trip)
{
    eda_item_t items[3] = {
        {"sku-a", 1, 0},
        {"sku-b", 12, 1999},
        {"a-sku-with-a-name-of-exactly-sixty-four-bytes-abcdefghijklmnopqr", 1000000,
         INT64_MAX},
    };
    cr_assert_eq(strlen(items[2].sku), 64);
    packed_t p;
    msgpack_sbuffer_init(&p.sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p.sb, msgpack_sbuffer_write);
    eda_items_pack(&pk, items, 3, true);
    s_unpack(&p);
    eda_item_t out[EDA_ITEMS_MAX];
    char why[256] = "";
    cr_assert_eq(eda_items_read(&p.obj, true, out, why, sizeof why), 3, "%s", why);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(out[i].sku, items[i].sku);
        cr_assert_eq(out[i].qty, items[i].qty);
        cr_assert_eq(out[i].price, items[i].price);
    }
    s_free(&p);

    /* packed without prices: readable where prices are not needed, only */
    msgpack_sbuffer_init(&p.sb);
    msgpack_packer_init(&pk, &p.sb, msgpack_sbuffer_write);
    eda_items_pack(&pk, items, 3, false);
    s_unpack(&p);
    cr_assert_eq(eda_items_read(&p.obj, false, out, why, sizeof why), 3, "%s", why);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(out[i].sku, items[i].sku);
        cr_assert_eq(out[i].qty, items[i].qty);
        cr_assert_eq(out[i].price, -1);
    }
    cr_assert_eq(eda_items_read(&p.obj, true, out, why, sizeof why), -1);
    s_free(&p);
}
