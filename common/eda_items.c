/*  eda_items: the items array codec, shared by order and inventory. */
#include "eda_items.h"

#include <stdio.h>

int eda_items_read(const msgpack_object *array, bool need_price, eda_item_t *out,
                   char *why, size_t why_size)
{
    if (!array || array->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(why, why_size, "items must be an array");
        return -1;
    }
    uint32_t n = array->via.array.size;
    if (n < 1 || n > EDA_ITEMS_MAX) {
        snprintf(why, why_size, "an order has 1 to %d items, not %u", EDA_ITEMS_MAX, n);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *item = &array->via.array.ptr[i];
        eda_item_t *it = &out[i];
        it->price = -1;
        if (item->type != MSGPACK_OBJECT_MAP) {
            snprintf(why, why_size, "item %u is not a map", i + 1);
            return -1;
        }
        if (eda_get_str(item, "sku", it->sku, sizeof it->sku) != 0 || !it->sku[0]) {
            snprintf(why, why_size, "item %u: sku must be a string of 1 to %d bytes",
                     i + 1, EDA_NAME_MAX);
            return -1;
        }
        if (eda_get_i64(item, "qty", &it->qty) != 0 || it->qty < 1) {
            snprintf(why, why_size, "item %u: qty must be an integer >= 1", i + 1);
            return -1;
        }
        int rc = eda_get_i64(item, "price", &it->price);
        if (rc < 0 || (rc == 0 && it->price < 0) || (rc == 1 && need_price)) {
            snprintf(why, why_size, "item %u: price must be an integer >= 0 (cents)",
                     i + 1);
            return -1;
        }
        if (rc == 1)
            it->price = -1;
    }
    return (int)n;
}

void eda_items_pack(msgpack_packer *pk, const eda_item_t *items, size_t n,
                    bool with_price)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, with_price ? 3 : 2);
        eda_pack_kv_str(pk, "sku", items[i].sku);
        eda_pack_kv_i64(pk, "qty", items[i].qty);
        if (with_price)
            eda_pack_kv_i64(pk, "price", items[i].price);
    }
}

int eda_items_total(const eda_item_t *items, size_t n, int64_t *total, char *why,
                    size_t why_size)
{
    int64_t sum = 0, qty = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t line;
        if (__builtin_mul_overflow(items[i].qty, items[i].price, &line) ||
            __builtin_add_overflow(sum, line, &sum)) {
            snprintf(why, why_size, "the order total does not fit in 63 bits");
            return -1;
        }
        /* Stock sums the quantities of one SKU: they must fit as well. */
        if (__builtin_add_overflow(qty, items[i].qty, &qty)) {
            snprintf(why, why_size, "the order's quantities do not fit in 63 bits");
            return -1;
        }
    }
    *total = sum;
    return 0;
}

int eda_items_read_order(const msgpack_object *array, int64_t expected, eda_item_t *out,
                         char *why, size_t why_size)
{
    int64_t total;
    int n = eda_items_read(array, true, out, why, why_size);
    if (n < 0 || eda_items_total(out, (size_t)n, &total, why, why_size))
        return -1;
    if (expected >= 0 && total != expected) {
        snprintf(why, why_size, "total %lld is not the items' %lld", (long long)expected,
                 (long long)total);
        return -1;
    }
    return n;
}
