/*  eda_envelope: the message envelope and its msgpack codec.

    Every message body on the wire is one msgpack map with string keys (see
    docs/protocol.md). Decoding is strict: the buffer is read once into
    msgpack-c's objects (eda_mp_unpack), each count checked against the
    bytes left before anything is allocated; every field type is checked,
    unknown keys are ignored, and `v` is checked first.
*/
#ifndef EDA_ENVELOPE_H_INCLUDED
#define EDA_ENVELOPE_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDA_PROTOCOL_VERSION 1
#define EDA_NAME_MAX         64        /* bytes in an id, type, source or epoch */
#define EDA_MAX_MSG          (1 << 20) /* largest message body, 1 MiB */

typedef enum {
    EDA_KIND_EVENT,
    EDA_KIND_COMMAND,
    EDA_KIND_REPLY,
    EDA_KIND_HEARTBEAT
} eda_kind_t;

/*  Error codes of the wire protocol (the `error.code` of a reply). */
typedef enum {
    EDA_OK = 0,
    EDA_BAD_REQUEST,
    EDA_UNKNOWN_COMMAND,
    EDA_NOT_FOUND,
    EDA_CONFLICT,
    EDA_UNSUPPORTED_VERSION,
    EDA_INTERNAL
} eda_error_t;

/*  Returns the wire name of an error code, e.g. "BAD_REQUEST". Can't fail. */
const char *eda_error_name(eda_error_t code);

/*  Returns the wire name of a kind, e.g. "event". Can't fail. */
const char *eda_kind_name(eda_kind_t kind);

/*  A decoded envelope. Strings are copied and NUL-terminated; an absent or nil
    string is "". `data` and `error` point into the decoder's zone and are
    valid until the next decode with the same decoder. */
typedef struct {
    uint64_t v;
    eda_kind_t kind;
    char type[EDA_NAME_MAX + 1];
    char id[EDA_NAME_MAX + 1];
    char source[EDA_NAME_MAX + 1];
    char correlation_id[EDA_NAME_MAX + 1];
    char causation_id[EDA_NAME_MAX + 1];
    char epoch[EDA_NAME_MAX + 1];
    uint64_t ts;
    uint64_t seq;
    bool has_seq;
    int ok;               /* replies: 1 ok, 0 error; -1 when absent */
    msgpack_object data;  /* a map, or nil when absent */
    msgpack_object error; /* replies with ok false: {code, message} */
} eda_envelope_t;

typedef struct eda_decoder eda_decoder_t;

/*  Creates a decoder: a reusable msgpack zone, so decoding allocates nothing
    once warm. Returns NULL when out of memory. */
eda_decoder_t *eda_decoder_new(void);

/*  Destroys a decoder and nulls the pointer. Idempotent. */
void eda_decoder_destroy(eda_decoder_t **self_p);

/*  Decodes one envelope from `buf`. Returns EDA_OK, EDA_UNSUPPORTED_VERSION
    (a `v` other than 1) or EDA_BAD_REQUEST (anything else wrong), with a
    one-line reason in `why` (which may be NULL). On failure, `id` and `type`
    are still filled when they are readable strings, so that a refusal can
    name the command it answers. */
eda_error_t eda_decode(eda_decoder_t *self, const void *buf, size_t len,
                       eda_envelope_t *env, char *why, size_t why_size);

/*  The whole map of the last envelope decoded (nil when the last decode
    failed before reading a map), valid until the next decode. */
const msgpack_object *eda_decoder_root(eda_decoder_t *self);

/*  Checks that `buf` holds exactly one well-formed msgpack object, nested at
    most 32 deep, whose every container count fits in the bytes that remain.
    Returns 0 when it does, -1 otherwise. Can't allocate. */
int eda_msgpack_check(const void *buf, size_t len);

/* --- reading fields of a `data` map -------------------------------------- */

/*  True when map key `k` is the string `name` (false for a NULL name). */
bool eda_key_is(const msgpack_object *k, const char *name);

/*  Returns the value under `key` in map `map`, or NULL when `map` is not a map
    or has no such string key. */
const msgpack_object *eda_map_get(const msgpack_object *map, const char *key);

/*  The getters below return 0 and store the value when the key holds the right
    type, 1 when it is absent or nil (leaving the output untouched), and -1
    when it holds another type or does not fit. */

/*  A string of at most size-1 bytes without NUL, copied NUL-terminated. */
int eda_get_str(const msgpack_object *map, const char *key, char *out, size_t size);
/*  A non-negative integer. */
int eda_get_u64(const msgpack_object *map, const char *key, uint64_t *out);
/*  Any integer that fits in int64. */
int eda_get_i64(const msgpack_object *map, const char *key, int64_t *out);
/*  A boolean. */
int eda_get_bool(const msgpack_object *map, const char *key, bool *out);

/* --- encoding ------------------------------------------------------------ */

/*  The header of an envelope to encode. NULL strings are encoded as nil (for
    correlation_id, causation_id) or left out (epoch). */
typedef struct {
    eda_kind_t kind;
    const char *type;
    const char *id;
    const char *source;
    uint64_t ts;
    const char *correlation_id;
    const char *causation_id;
    uint64_t seq;      /* events only */
    const char *epoch; /* events and heartbeats */
    int ok;            /* replies: 1 ok, 0 error */
} eda_header_t;

/*  Packs the envelope's header keys and opens the map: the caller then packs
    exactly the last value. For an ok reply, an event, a command or a
    heartbeat that value is the `data` map, whose key this function has
    packed; for an error reply use eda_pack_error instead. Can't fail (msgpack
    sbuffer writes abort on out of memory). */
void eda_pack_header(msgpack_packer *pk, const eda_header_t *hdr);

/*  Packs the `error` value of an error reply: {code, message}. */
void eda_pack_error(msgpack_packer *pk, eda_error_t code, const char *message);

/*  Small packing helpers: a string, a key with a string, integer, or nil value. */
void eda_pack_str(msgpack_packer *pk, const char *s);
void eda_pack_kv_str(msgpack_packer *pk, const char *key, const char *value);
void eda_pack_kv_strn(msgpack_packer *pk, const char *key, const char *value, size_t len);
void eda_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t value);
void eda_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t value);
void eda_pack_kv_nil(msgpack_packer *pk, const char *key);
void eda_pack_kv_bool(msgpack_packer *pk, const char *key, bool value);
/*  Appends bytes that already hold one packed msgpack value. */
void eda_pack_raw(msgpack_packer *pk, const void *packed, size_t len);
/*  A key, its value to follow. */
void eda_pack_key(msgpack_packer *pk, const char *key);

/*  Writes `obj` rendered as JSON (eda_json of eda_text.h) into out[size],
    always NUL-terminated when size > 0; a rendering that does not fit is
    cut, never inside an escape. Binary values are shown as {"bin": N}.
    Returns the length written. Can't fail. */
size_t eda_msgpack_to_json(const msgpack_object *obj, char *out, size_t size);

/*  Microseconds since the Unix epoch. */
uint64_t eda_now_us(void);

#endif
