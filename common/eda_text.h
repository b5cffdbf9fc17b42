/*  eda_text: text that came from the wire, made safe to print. Every string
    a peer or a client sent (a name, a type, a reason, a map key) goes
    through eda_escape (log lines, the terminal) or eda_escape_json (JSON
    lines, --json) before it is written anywhere a person or a log reader
    sees it: a newline cannot forge a line, an escape sequence cannot drive
    the terminal.

    What is escaped, in all three forms: the C0 controls 0x00-0x1f, DEL 0x7f,
    the C1 controls U+0080..U+009F written in UTF-8 (U+009B is a CSI to many
    terminals), and every byte that is not part of valid UTF-8. Printable
    ASCII and valid UTF-8 otherwise pass, so a name like "Zoë" stays
    readable. A backslash is escaped too, so that the escaping can be undone.
*/
#ifndef EDA_TEXT_H_INCLUDED
#define EDA_TEXT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msgpack_object;

/*  Escapes in[len] (any bytes) into out[size] for a text line: each escaped
    byte becomes \xNN (lower-case hex; a C1 control in UTF-8 is its two
    bytes, \xc2\x9b), a backslash becomes \\. out is NUL-terminated when
    size > 0, and cut before an escape or a UTF-8 character that does not fit
    whole. Returns the length the whole escaped text needs, NUL not counted:
    when it is `size` or more, out holds a cut prefix (snprintf's
    convention). Can't fail. */
size_t eda_escape(char *out, size_t size, const char *in, size_t len);

/*  The same between double quotes, with a quote written \": for a value
    with spaces or quotes among key=value pairs. When the text is cut the
    closing quote is still written; with size < 3, out is "". Returns the
    length the whole quoted text needs. Can't fail. */
size_t eda_escape_quoted(char *out, size_t size, const char *in, size_t len);

/*  Writes in[len] as one JSON string literal, quotes included: " and \ as
    \" and \\, every escaped character as \u00NN (a C1 control as its code
    point, \u009b; a byte that is not UTF-8 as \u00NN of its value, so the
    output is always valid UTF-8 and valid JSON). When the text is cut the
    closing quote is still written, so out is always a whole literal; with
    size < 3, out is "". Returns the length the whole literal needs. Can't
    fail. */
size_t eda_escape_json(char *out, size_t size, const char *in, size_t len);

/*  True when in[len] is valid UTF-8 holding no control character (C0, DEL
    or C1): what an id may hold. A backslash is printable. Can't fail. */
bool eda_printable(const char *in, size_t len);

/*  Renders `obj` as JSON into out[size], every string and map key through
    eda_escape_json's rules (a key that is not a string is rendered and then
    quoted; a float that is not finite is null; a binary value is
    {"bin":N}). out is NUL-terminated when size > 0 and never ends inside an
    escape. Returns the length the whole rendering needs: when it is `size`
    or more, out holds a cut prefix that is not valid JSON. Can't fail. */
size_t eda_json(const struct msgpack_object *obj, char *out, size_t size);

/* --- on the hot path, in place of snprintf --------------------------------- */

/*  Copies the string `in` (NULL: "") into out[size], cut to fit; out is
    NUL-terminated when size > 0. Returns the bytes copied. */
size_t eda_copy(char *out, size_t size, const char *in);

/*  Writes the decimal digits of v at out (20 bytes at most, no NUL).
    Returns how many. */
size_t eda_u64_text(char *out, uint64_t v);

/*  Writes "PREFIX-N" into out[size], cut to fit, NUL-terminated when
    size > 0: the shape of the ids the services make (an event's
    "EPOCH-SEQ", a message's "PROCESS-COUNTER", an order's "o-RUN-NUMBER").
    Returns the bytes written. */
size_t eda_id_join(char *out, size_t size, const char *prefix, uint64_t n);

#endif
