/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_JSONCHECK_H
#define JABALI_JSONCHECK_H

/* Strict JSON: RFC 8259 as narrowed by I-JSON (RFC 7493), checked by a
 * hand-written validator that does not depend on json-c (json-c's own
 * "strict" mode lets single quotes, NaN, raw control characters, overlong
 * UTF-8, encoded surrogates, an early raw NUL, clamped big numbers and
 * duplicate keys through; docs/protocol.md §Strict JSON).
 *
 * A document passes when it is exactly one JSON value (of any type) with
 * optional surrounding whitespace (space, \t, \n, \r) that ends at buf[len],
 * and:
 *   - it is valid UTF-8: no overlong forms, no UTF-16 surrogates encoded in
 *     UTF-8, nothing above U+10FFFF; bytes >= 0x80 only inside strings;
 *   - strings hold no raw control character (< 0x20); escapes are exactly
 *     \" \\ \/ \b \f \n \r \t \uXXXX; a \u high surrogate must be followed by
 *     a \u low surrogate; lone surrogates and \u0000 are refused; so are
 *     the Unicode noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF), raw or
 *     escaped, which I-JSON bars along with surrogates;
 *   - numbers follow the RFC grammar (no leading zeros, '+', bare '.',
 *     NaN or Infinity); an integer (no fraction, no exponent) fits int64;
 *     any other number is finite when read by strtod (1e400 is refused,
 *     1e-400 is accepted as the zero it rounds to);
 *   - true, false and null are spelled exactly;
 *   - no object has two members whose keys are equal once decoded
 *     ("a" and "\u0061" are the same key);
 *   - arrays and objects nest at most max_depth deep (a top-level object or
 *     array is depth 1; scalars add no depth). max_depth 0 admits only a
 *     top-level scalar.
 *
 * The buffer need not be NUL-terminated: nothing outside [buf, buf+len) is
 * read. Work is linear in len except for duplicate-key detection, which is
 * O(n log n) in an object's member count (keys are sorted when the object
 * closes), so hostile input cannot force quadratic time. Memory used is
 * bounded by a small multiple of len. No recursion.
 *
 * Failures are INVALID_JSON with the message "offset N: reason", N being the
 * byte offset in buf where the problem was found; the reasons are short,
 * stable-ish phrases such as "duplicate key", "invalid UTF-8",
 * "control character in string", "number out of range", "trailing data",
 * "nesting too deep", "unpaired surrogate", "\u0000 not allowed",
 * "noncharacter not allowed".
 * Out of memory is INTERNAL. */

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/error.h>

/* Returns 0 when buf[0..len) is strict JSON, -1 with err set otherwise. */
int json_check_strict(const char *buf, size_t len, unsigned max_depth, jb_err *err);

/* json_check_strict(), then a json-c parse of the same bytes (strict
 * tokener, depth sized from the checked document) that must succeed and
 * consume exactly len bytes. Returns a new reference owned by the caller,
 * or NULL with err set (INVALID_JSON, or INTERNAL when out of memory).
 * A document that is just `null` is refused (INVALID_JSON "offset 0:
 * top-level null not supported"): json-c represents it as NULL. */
json_object *json_parse_strict(const char *buf, size_t len, unsigned max_depth, jb_err *err);

/* Length of the well-formed UTF-8 sequence at p (at most n bytes are
 * looked at): 1..4, or 0 when the bytes there are not valid UTF-8 (overlong,
 * surrogate, above U+10FFFF, truncated, stray continuation byte) or n == 0.
 * ASCII, control characters included, is a sequence of length 1. */
size_t utf8_sequence_len(const uint8_t *p, size_t n);

/* The same, but also 0 for a noncharacter: the length of a character that
 * strict JSON admits in a string (control characters count: serialisers
 * escape them). For sanitising text before it is serialised. */
size_t json_text_char_len(const uint8_t *p, size_t n);

#endif
