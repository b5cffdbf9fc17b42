/*  eda_items: the `items` array of orders and reservations on the wire,
    [{sku, qty, price}, ...], read strictly into plain structs and packed back.
*/
#ifndef EDA_ITEMS_H_INCLUDED
#define EDA_ITEMS_H_INCLUDED

#include "eda_envelope.h"

#define EDA_ITEMS_MAX 100

typedef struct {
    char sku[EDA_NAME_MAX + 1];
    int64_t qty;   /* >= 1 */
    int64_t price; /* cents, >= 0; -1 when the array carries no prices */
} eda_item_t;

/*  Reads `array` into out[EDA_ITEMS_MAX]. Each item must be a map with a
    non-empty `sku` string of at most 64 bytes and an integer `qty` >= 1;
    when `need_price` an integer `price` >= 0 too (otherwise a price, when
    present, is still checked). Returns the number of items (1 to 100), or -1
    with a one-line reason in `why`. */
int eda_items_read(const msgpack_object *array, bool need_price, eda_item_t *out,
                   char *why, size_t why_size);

/*  The order rule, in one place for every service that reads an order's
    items (PlaceOrder, OrderCreated): the total of qty x price and the sum
    of all quantities fit in 63 bits. Writes the total in *total. Returns 0,
    or -1 with a reason. */
int eda_items_total(const eda_item_t *items, size_t n, int64_t *total, char *why,
                    size_t why_size);

/*  Reads an order's `items` (with prices, eda_items_read) into out[] and
    applies the order rule; when `expected` >= 0 the items' total must be
    that (an OrderCreated's `total`). Returns the number of items, or -1
    with a reason. */
int eda_items_read_order(const msgpack_object *array, int64_t expected, eda_item_t *out,
                         char *why, size_t why_size);

/*  Packs items as an array of maps, with prices when `with_price`. */
void eda_items_pack(msgpack_packer *pk, const eda_item_t *items, size_t n,
                    bool with_price);

#endif
