/*  fuzz_items: bytes that pass eda_msgpack_check are unpacked by msgpack-c
    (what the services read them with, eda_mp_unpack, is compared with
    msgpack-c in test_mpread), and read with eda_items_read with and without prices (the
    object itself, and its `items` when it is a map). What reads is packed
    with eda_items_pack and read again: the same items must come back, and
    packing them again must give the same bytes.
*/
#include "eda_items.h"
#include "fuzz_check.h"

#include <stdint.h>

/*  Checks what eda_items_read promises of `n` items it accepted. */
static void s_check_read(const eda_item_t *items, int n, bool need_price)
{
    FUZZ_CHECK(n >= 1 && n <= EDA_ITEMS_MAX, "item count out of range");
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(fuzz_terminated(items[i].sku, sizeof items[i].sku), "sku overran");
        FUZZ_CHECK(items[i].sku[0] != '\0', "empty sku accepted");
        FUZZ_CHECK(items[i].qty >= 1, "qty below 1 accepted");
        FUZZ_CHECK(items[i].price >= 0 || (items[i].price == -1 && !need_price),
                   "bad price accepted");
    }
}

static bool s_same(const eda_item_t *a, const eda_item_t *b, int n, bool prices)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].sku, b[i].sku) != 0 || a[i].qty != b[i].qty ||
            (prices && a[i].price != b[i].price))
            return false;
    return true;
}

/*  Packs items[n] into `sb`, with prices when every item has one. */
static bool s_pack(msgpack_sbuffer *sb, const eda_item_t *items, int n)
{
    bool with_price = true;
    for (int i = 0; i < n; i++)
        with_price = with_price && items[i].price >= 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    eda_items_pack(&pk, items, (size_t)n, with_price);
    return with_price;
}

/*  Packs items[n] read with `need_price`, reads them back, compares. */
static void s_round_trip(const eda_item_t *items, int n, bool need_price)
{
    msgpack_sbuffer once, twice;
    msgpack_sbuffer_init(&once);
    msgpack_sbuffer_init(&twice);
    bool with_price = s_pack(&once, items, n);
    FUZZ_CHECK(eda_msgpack_check(once.data, once.size) == 0, "packed items not msgpack");

    msgpack_zone zone;
    FUZZ_CHECK(msgpack_zone_init(&zone, 1024), "out of memory");
    msgpack_object obj;
    size_t off = 0;
    FUZZ_CHECK(msgpack_unpack(once.data, once.size, &off, &zone, &obj) ==
                   MSGPACK_UNPACK_SUCCESS,
               "packed items do not unpack");
    eda_item_t again[EDA_ITEMS_MAX];
    char why[256] = "";
    int m = eda_items_read(&obj, need_price, again, why, sizeof why);
    if (m != n)
        fprintf(stderr, "packed items read back as %d of %d: %s\n", m, n, why);
    FUZZ_CHECK(m == n, "packed items must read back");
    s_check_read(again, m, need_price);
    FUZZ_CHECK(s_same(items, again, n, with_price), "items changed in a round trip");
    for (int i = 0; !with_price && i < n; i++)
        FUZZ_CHECK(again[i].price == -1, "a price appeared from nowhere");

    s_pack(&twice, again, m);
    FUZZ_CHECK(once.size == twice.size && memcmp(once.data, twice.data, once.size) == 0,
               "packing read items is not stable");
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&once);
    msgpack_sbuffer_destroy(&twice);
}

static void s_check_items(const msgpack_object *array)
{
    eda_item_t priced[EDA_ITEMS_MAX], plain[EDA_ITEMS_MAX];
    char why[256] = "";
    int n = eda_items_read(array, true, priced, why, sizeof why);
    if (n < 0)
        FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
    why[0] = '\0';
    int m = eda_items_read(array, false, plain, why, sizeof why);
    if (m < 0)
        FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
    FUZZ_CHECK(n < 0 || m == n, "items with prices must read without needing them");

    if (n > 0) {
        s_check_read(priced, n, true);
        FUZZ_CHECK(s_same(priced, plain, n, true), "need_price changed what was read");
        s_round_trip(priced, n, true);
    }
    if (m > 0) {
        s_check_read(plain, m, false);
        s_round_trip(plain, m, false);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (eda_msgpack_check(data, size))
        return 0;
    msgpack_zone zone;
    FUZZ_CHECK(msgpack_zone_init(&zone, 2048), "out of memory");
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return rc =
        msgpack_unpack((const char *)data, size, &off, &zone, &obj);
    FUZZ_CHECK(rc == MSGPACK_UNPACK_SUCCESS && off == size,
               "eda_msgpack_check passed what msgpack-c cannot read");
    s_check_items(&obj);
    if (obj.type == MSGPACK_OBJECT_MAP)
        s_check_items(eda_map_get(&obj, "items"));
    msgpack_zone_destroy(&zone);
    return 0;
}
