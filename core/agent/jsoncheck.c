/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The strict JSON validator (jsoncheck.h). One pass over the bytes with an
 * explicit stack of open containers; no recursion, no json-c. */

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncheck.h"
#include "utf8.h"
#include "util.h"

/* Offsets are kept in 32 bits (the high bit of a key offset says where the
 * key's bytes live), and json-c takes an int length, so documents are
 * limited to INT32_MAX bytes; a frame is at most 4 GiB anyway and the
 * configured limit is far below. */
#define DOC_MAX ((size_t) INT32_MAX)
#define KEY_IN_ARENA UINT32_C(0x80000000)

/* A significand longer than this cannot change whether a number rounds to
 * infinity (see number_is_finite()). */
#define SIG_DIGITS_MAX 400

enum { LEVEL_ARRAY, LEVEL_OBJECT };

typedef struct key_entry {
        uint32_t off;           /* into the document, or | KEY_IN_ARENA into the arena */
        uint32_t len;           /* decoded length */
        uint32_t src;           /* offset of the key's opening quote, for the message */
} key_entry;

typedef struct level {
        uint8_t kind;
        uint32_t first_key;     /* this object's keys are keys[first_key..n_keys) */
        uint32_t arena_base;
} level;

typedef struct checker {
        const uint8_t *p;
        size_t len;
        size_t pos;
        unsigned max_depth;
        unsigned max_seen;      /* deepest nesting met, sizes json-c's stack */
        jb_err *err;

        /* All three are owned here and freed by checker_done(). */
        level *levels;
        size_t n_levels, cap_levels;
        key_entry *keys;        /* keys of every open object, innermost last */
        size_t n_keys, cap_keys;
        uint8_t *arena;         /* decoded bytes of keys that contain escapes */
        size_t arena_len, arena_cap;
} checker;

static void checker_done(checker *c) {
        free(c->levels);
        free(c->keys);
        free(c->arena);
}

static int fail(checker *c, size_t at, const char *reason) {
        return jb_err_set(c->err, JB_E_INVALID_JSON, "offset %zu: %s", at, reason);
}

static int oom(checker *c) {
        return jb_err_set(c->err, JB_E_INTERNAL, "out of memory");
}

/* Grows *array to hold at least `need` elements of `size` bytes. */
static int grow(void **array, size_t *cap, size_t need, size_t size) {
        size_t n;
        void *q;

        if (need <= *cap)
                return 0;
        n = *cap < 16 ? 16 : *cap;
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return -1;
                n *= 2;
        }
        if (n > SIZE_MAX / size)
                return -1;
        q = realloc(*array, n * size);
        if (!q)
                return -1;
        *array = q;
        *cap = n;
        return 0;
}

size_t utf8_sequence_len(const uint8_t *p, size_t n) {
        return utf8_seq_len(p, n);
}

static bool is_digit(uint8_t b) {
        return b >= '0' && b <= '9';
}

static int hex_value(uint8_t b) {
        if (b >= '0' && b <= '9')
                return b - '0';
        if (b >= 'a' && b <= 'f')
                return b - 'a' + 10;
        if (b >= 'A' && b <= 'F')
                return b - 'A' + 10;
        return -1;
}

/* Reads the 4 hex digits of a \u escape starting at `at`; -1 when absent. */
static long hex4(const checker *c, size_t at) {
        long v = 0;

        if (c->len - at < 4)
                return -1;
        for (size_t i = 0; i < 4; i++) {
                int h = hex_value(c->p[at + i]);
                if (h < 0)
                        return -1;
                v = v * 16 + h;
        }
        return v;
}

static void skip_ws(checker *c) {
        while (c->pos < c->len) {
                uint8_t b = c->p[c->pos];
                if (b != ' ' && b != '\t' && b != '\n' && b != '\r')
                        return;
                c->pos++;
        }
}

/* I-JSON (RFC 7493 §2.1) bars the 66 noncharacters along with surrogates. */
static bool is_noncharacter(uint32_t cp) {
        return (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

/* The code point of a valid 3- or 4-byte sequence. */
static uint32_t utf8_decode(const uint8_t *p, size_t n) {
        if (n == 3)
                return (uint32_t) (p[0] & 0x0F) << 12 | (uint32_t) (p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        return (uint32_t) (p[0] & 0x07) << 18 | (uint32_t) (p[1] & 0x3F) << 12 |
                (uint32_t) (p[2] & 0x3F) << 6 | (p[3] & 0x3F);
}

size_t json_text_char_len(const uint8_t *p, size_t n) {
        size_t k = utf8_sequence_len(p, n);

        if (k >= 3 && is_noncharacter(utf8_decode(p, k)))
                return 0;
        return k;
}

/* Validates a \u escape (and its low surrogate when it is a high one) at
 * c->pos, which points at the backslash; advances past it. */
static int check_u_escape(checker *c, uint32_t *ret_cp) {
        size_t at = c->pos;
        long cp, low;

        cp = hex4(c, at + 2);
        if (cp < 0)
                return fail(c, at, "invalid \\u escape");
        if (cp == 0)
                return fail(c, at, "\\u0000 not allowed");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(c, at, "unpaired surrogate");
        c->pos += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (c->len - c->pos < 2 || c->p[c->pos] != '\\' || c->p[c->pos + 1] != 'u')
                        return fail(c, at, "unpaired surrogate");
                low = hex4(c, c->pos + 2);
                if (low < 0)
                        return fail(c, c->pos, "invalid \\u escape");
                if (low < 0xDC00 || low > 0xDFFF)
                        return fail(c, at, "unpaired surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                c->pos += 6;
        }
        if (is_noncharacter((uint32_t) cp))
                return fail(c, at, "noncharacter not allowed");
        *ret_cp = (uint32_t) cp;
        return 0;
}

/* Validates the string at c->pos (its opening quote) and advances past its
 * closing quote. *ret_escaped tells whether it held any escape. */
static int check_string(checker *c, bool *ret_escaped) {
        size_t start = c->pos;
        bool escaped = false;

        c->pos++;
        for (;;) {
                uint8_t b;
                size_t n;
                uint32_t cp;

                if (c->pos >= c->len)
                        return fail(c, start, "unterminated string");
                b = c->p[c->pos];
                if (b == '"') {
                        c->pos++;
                        break;
                }
                if (b == '\\') {
                        escaped = true;
                        if (c->len - c->pos < 2)
                                return fail(c, start, "unterminated string");
                        switch (c->p[c->pos + 1]) {
                        case '"': case '\\': case '/':
                        case 'b': case 'f': case 'n': case 'r': case 't':
                                c->pos += 2;
                                break;
                        case 'u':
                                if (check_u_escape(c, &cp) < 0)
                                        return -1;
                                break;
                        default:
                                return fail(c, c->pos, "invalid escape");
                        }
                        continue;
                }
                if (b < 0x20)
                        return fail(c, c->pos, "control character in string");
                n = json_text_char_len(c->p + c->pos, c->len - c->pos);
                if (n == 0)
                        return fail(c, c->pos, utf8_sequence_len(c->p + c->pos, c->len - c->pos) ?
                                    "noncharacter not allowed" : "invalid UTF-8");
                c->pos += n;
        }
        if (ret_escaped)
                *ret_escaped = escaped;
        return 0;
}

static size_t put_utf8(uint8_t *out, uint32_t cp) {
        if (cp < 0x80) {
                out[0] = (uint8_t) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (uint8_t) (0xC0 | (cp >> 6));
                out[1] = (uint8_t) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (uint8_t) (0xE0 | (cp >> 12));
                out[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (uint8_t) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (uint8_t) (0xF0 | (cp >> 18));
        out[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (uint8_t) (0x80 | (cp & 0x3F));
        return 4;
}

/* Decodes the already validated string body p[from..to) into the arena.
 * Decoding never lengthens a string (the longest, a 4-byte character, comes
 * from a 12-byte surrogate pair), so the raw length bounds the space. */
static int decode_into_arena(checker *c, size_t from, size_t to, uint32_t *ret_len) {
        size_t start = c->arena_len, i = from;
        uint8_t *out;

        if (grow((void **) &c->arena, &c->arena_cap, c->arena_len + (to - from), 1) < 0)
                return oom(c);
        out = c->arena + c->arena_len;
        while (i < to) {
                uint8_t b = c->p[i];
                uint32_t cp;

                if (b != '\\') {
                        *out++ = b;
                        i++;
                        continue;
                }
                switch (c->p[i + 1]) {
                case 'b': *out++ = '\b'; i += 2; break;
                case 'f': *out++ = '\f'; i += 2; break;
                case 'n': *out++ = '\n'; i += 2; break;
                case 'r': *out++ = '\r'; i += 2; break;
                case 't': *out++ = '\t'; i += 2; break;
                case 'u':
                        cp = (uint32_t) hex4(c, i + 2);
                        i += 6;
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) +
                                        ((uint32_t) hex4(c, i + 2) - 0xDC00);
                                i += 6;
                        }
                        out += put_utf8(out, cp);
                        break;
                default:        /* " \ / */
                        *out++ = c->p[i + 1];
                        i += 2;
                        break;
                }
        }
        c->arena_len = (size_t) (out - c->arena);
        *ret_len = (uint32_t) (c->arena_len - start);
        return 0;
}

static int check_key(checker *c) {
        size_t start = c->pos;
        bool escaped;
        key_entry *k;

        if (check_string(c, &escaped) < 0)
                return -1;
        if (grow((void **) &c->keys, &c->cap_keys, c->n_keys + 1, sizeof(key_entry)) < 0)
                return oom(c);
        k = &c->keys[c->n_keys];
        k->src = (uint32_t) start;
        if (escaped) {
                k->off = (uint32_t) c->arena_len | KEY_IN_ARENA;
                if (decode_into_arena(c, start + 1, c->pos - 1, &k->len) < 0)
                        return -1;
        } else {
                k->off = (uint32_t) (start + 1);
                k->len = (uint32_t) (c->pos - 1 - (start + 1));
        }
        c->n_keys++;
        return 0;
}

/* qsort() has no context argument, so the comparison reads the two bases
 * from here; thread-local, so concurrent checks do not interfere. */
static _Thread_local const uint8_t *sort_doc, *sort_arena;

static const uint8_t *key_bytes(const key_entry *k) {
        if (k->off & KEY_IN_ARENA)
                return sort_arena + (k->off & ~KEY_IN_ARENA);
        return sort_doc + k->off;
}

static int key_cmp(const void *a, const void *b) {
        const key_entry *x = a, *y = b;
        int r;

        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        r = x->len ? memcmp(key_bytes(x), key_bytes(y), x->len) : 0;
        if (r != 0)
                return r;
        return x->src < y->src ? -1 : x->src > y->src;
}

/* Called when an object closes: its keys must be distinct. Sorting keeps
 * this O(n log n) whatever keys a hostile peer picks. */
static int check_duplicates(checker *c, const level *l) {
        size_t n = c->n_keys - l->first_key, i;
        bool found = false;
        uint32_t first_dup = 0;
        key_entry *k;

        if (n < 2)
                return 0;       /* c->keys may still be NULL */
        k = c->keys + l->first_key;
        sort_doc = c->p;
        sort_arena = c->arena;
        qsort(k, n, sizeof(*k), key_cmp);
        for (i = 1; i < n; i++) {
                /* In a run of equal keys (ordered by position) the second
                 * is the first repetition; report the earliest of those. */
                if (k[i].len != k[i - 1].len ||
                    (k[i].len && memcmp(key_bytes(&k[i]), key_bytes(&k[i - 1]), k[i].len) != 0))
                        continue;
                if (i >= 2 && k[i].len == k[i - 2].len &&
                    (k[i].len == 0 || memcmp(key_bytes(&k[i]), key_bytes(&k[i - 2]), k[i].len) == 0))
                        continue;
                if (!found || k[i].src < first_dup)
                        first_dup = k[i].src;
                found = true;
        }
        sort_doc = sort_arena = NULL;
        if (found)
                return fail(c, first_dup, "duplicate key");
        return 0;
}

/* Whether a number with a fraction or an exponent stays finite as a double.
 * digits[0..n) is its significand with leading zeros stripped (n > 0, at
 * most SIG_DIGITS_MAX kept) and `mag` the decimal exponent of its first
 * digit. Below 10^308 a value is finite and from 10^309 on it is not; only
 * in between does strtod() decide. The text given to strtod() has no
 * decimal point, so the locale cannot change the answer. Cutting the
 * significand to SIG_DIGITS_MAX digits cannot either: the rounding
 * threshold 2^1024 - 2^970 is an integer of 309 digits, which the cut
 * significand still resolves exactly. */
static bool number_is_finite(const char *digits, size_t n, int64_t mag) {
        char text[SIG_DIGITS_MAX + 32];
        double v;

        if (mag < 308)
                return true;
        if (mag > 308)
                return false;
        memcpy(text, digits, n);
        (void) snprintf(text + n, sizeof(text) - n, "e%" PRId64, mag - (int64_t) (n - 1));
        v = strtod(text, NULL);
        return isfinite(v);
}

/* Checks an integer's digits p[from..to) (no sign, no leading zero) against
 * the int64 range. */
static bool integer_in_range(const uint8_t *p, size_t from, size_t to, bool negative) {
        uint64_t v = 0, limit = negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;

        if (to - from > 19)     /* 10^19 > 2^63: and 19 digits cannot overflow uint64 */
                return false;
        for (size_t i = from; i < to; i++)
                v = v * 10 + (uint64_t) (p[i] - '0');
        return v <= limit;
}

static int check_number(checker *c) {
        const uint8_t *p = c->p;
        size_t start = c->pos, int_from, int_to, frac_from = 0, frac_to = 0;
        bool negative = false, is_integer = true, exp_negative = false;
        int64_t exp = 0, mag;
        char sig[SIG_DIGITS_MAX];
        size_t n_sig = 0, lead = 0;
        bool seen_nonzero = false;

        if (p[c->pos] == '-') {
                negative = true;
                c->pos++;
        }
        if (c->pos >= c->len || !is_digit(p[c->pos]))
                return fail(c, start, "invalid number");
        int_from = c->pos;
        if (p[c->pos] == '0') {
                c->pos++;
                if (c->pos < c->len && is_digit(p[c->pos]))
                        return fail(c, start, "leading zero");
        } else
                while (c->pos < c->len && is_digit(p[c->pos]))
                        c->pos++;
        int_to = c->pos;

        if (c->pos < c->len && p[c->pos] == '.') {
                is_integer = false;
                c->pos++;
                frac_from = c->pos;
                while (c->pos < c->len && is_digit(p[c->pos]))
                        c->pos++;
                frac_to = c->pos;
                if (frac_from == frac_to)
                        return fail(c, start, "invalid number");
        }
        if (c->pos < c->len && (p[c->pos] == 'e' || p[c->pos] == 'E')) {
                size_t exp_from;

                is_integer = false;
                c->pos++;
                if (c->pos < c->len && (p[c->pos] == '+' || p[c->pos] == '-')) {
                        exp_negative = p[c->pos] == '-';
                        c->pos++;
                }
                exp_from = c->pos;
                while (c->pos < c->len && is_digit(p[c->pos])) {
                        /* Saturate: anything past 10^12 is out of reach of
                         * any document length and decides the same way. */
                        if (exp < INT64_C(1000000000000))
                                exp = exp * 10 + (p[c->pos] - '0');
                        c->pos++;
                }
                if (exp_from == c->pos)
                        return fail(c, start, "invalid number");
                if (exp_negative)
                        exp = -exp;
        }

        if (is_integer) {
                if (!integer_in_range(p, int_from, int_to, negative))
                        return fail(c, start, "number out of range");
                return 0;
        }

        /* Collect the significand's digits without leading zeros; `lead`
         * counts integer-part digits from the first significant one. */
        for (size_t i = int_from; i < int_to; i++) {
                if (!seen_nonzero && p[i] == '0')
                        continue;
                seen_nonzero = true;
                lead++;
                if (n_sig < SIG_DIGITS_MAX)
                        sig[n_sig++] = (char) p[i];
        }
        if (seen_nonzero)
                mag = (int64_t) lead - 1;
        else
                mag = 0;
        for (size_t i = frac_from; i < frac_to; i++) {
                if (!seen_nonzero) {
                        if (p[i] == '0')
                                continue;
                        seen_nonzero = true;
                        mag = -(int64_t) (i - frac_from) - 1;
                }
                if (n_sig < SIG_DIGITS_MAX)
                        sig[n_sig++] = (char) p[i];
        }
        if (!seen_nonzero)
                return 0;       /* zero, whatever the exponent */
        if (!number_is_finite(sig, n_sig, mag + exp))
                return fail(c, start, "number out of range");
        return 0;
}

static int check_literal(checker *c) {
        static const char *const words[] = { "true", "false", "null" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                size_t n = strlen(words[i]);

                if (c->p[c->pos] == (uint8_t) words[i][0]) {
                        if (c->len - c->pos < n || memcmp(c->p + c->pos, words[i], n) != 0)
                                break;
                        c->pos += n;
                        return 0;
                }
        }
        return fail(c, c->pos, "invalid literal");
}

static int push_level(checker *c, uint8_t kind) {
        level *l;

        if (c->n_levels >= c->max_depth)
                return fail(c, c->pos, "nesting too deep");
        if (grow((void **) &c->levels, &c->cap_levels, c->n_levels + 1, sizeof(level)) < 0)
                return oom(c);
        l = &c->levels[c->n_levels++];
        l->kind = kind;
        l->first_key = (uint32_t) c->n_keys;
        l->arena_base = (uint32_t) c->arena_len;
        if (c->n_levels > c->max_seen)
                c->max_seen = (unsigned) c->n_levels;
        c->pos++;
        return 0;
}

static int pop_level(checker *c) {
        level *l = &c->levels[c->n_levels - 1];

        if (l->kind == LEVEL_OBJECT) {
                if (check_duplicates(c, l) < 0)
                        return -1;
                c->n_keys = l->first_key;
                c->arena_len = l->arena_base;
        }
        c->n_levels--;
        c->pos++;
        return 0;
}

typedef enum state {
        WANT_VALUE,             /* a value (after start, '[', ',' in an array, ':') */
        WANT_KEY,               /* a key (after ',' in an object) */
        WANT_KEY_OR_CLOSE,      /* right after '{' */
        WANT_VALUE_OR_CLOSE,    /* right after '[' */
        AFTER_VALUE,            /* ',' or the closing bracket, or the end */
} state;

static int check_value_start(checker *c, state *st) {
        uint8_t b = c->p[c->pos];

        switch (b) {
        case '{':
                *st = WANT_KEY_OR_CLOSE;
                return push_level(c, LEVEL_OBJECT);
        case '[':
                *st = WANT_VALUE_OR_CLOSE;
                return push_level(c, LEVEL_ARRAY);
        case '"':
                *st = AFTER_VALUE;
                return check_string(c, NULL);
        case '-': case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
                *st = AFTER_VALUE;
                return check_number(c);
        case 't': case 'f': case 'n':
                *st = AFTER_VALUE;
                return check_literal(c);
        default:
                return fail(c, c->pos, b >= 0x80 && utf8_sequence_len(c->p + c->pos, c->len - c->pos) == 0 ?
                            "invalid UTF-8" : "unexpected character");
        }
}

static int check_after_value(checker *c, state *st) {
        uint8_t b = c->p[c->pos];
        bool object = c->levels[c->n_levels - 1].kind == LEVEL_OBJECT;

        if (b == ',') {
                c->pos++;
                *st = object ? WANT_KEY : WANT_VALUE;
                return 0;
        }
        if (b == (object ? '}' : ']'))
                return pop_level(c);
        return fail(c, c->pos, object ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int check_key_and_colon(checker *c, state *st) {
        if (c->p[c->pos] != '"')
                return fail(c, c->pos, "expected string key");
        if (check_key(c) < 0)
                return -1;
        skip_ws(c);
        if (c->pos >= c->len)
                return fail(c, c->pos, "unexpected end of input");
        if (c->p[c->pos] != ':')
                return fail(c, c->pos, "expected ':'");
        c->pos++;
        *st = WANT_VALUE;
        return 0;
}

static int run(checker *c) {
        state st = WANT_VALUE;
        int r;

        if (c->len > DOC_MAX)
                return fail(c, 0, "document too large");
        for (;;) {
                skip_ws(c);
                if (st == AFTER_VALUE && c->n_levels == 0) {
                        if (c->pos != c->len)
                                return fail(c, c->pos, "trailing data");
                        return 0;
                }
                if (c->pos >= c->len)
                        return fail(c, c->pos, c->len == 0 ? "empty document" : "unexpected end of input");

                switch (st) {
                case WANT_VALUE_OR_CLOSE:
                        if (c->p[c->pos] == ']') {
                                st = AFTER_VALUE;
                                r = pop_level(c);
                                break;
                        }
                        __attribute__((fallthrough));
                case WANT_VALUE:
                        r = check_value_start(c, &st);
                        break;
                case WANT_KEY_OR_CLOSE:
                        if (c->p[c->pos] == '}') {
                                st = AFTER_VALUE;
                                r = pop_level(c);
                                break;
                        }
                        __attribute__((fallthrough));
                case WANT_KEY:
                        r = check_key_and_colon(c, &st);
                        break;
                case AFTER_VALUE:
                default:
                        r = check_after_value(c, &st);
                        break;
                }
                if (r < 0)
                        return r;
        }
}

static int check(const char *buf, size_t len, unsigned max_depth, unsigned *ret_depth, jb_err *err) {
        checker c = {
                .p = (const uint8_t *) buf,
                .len = len,
                .max_depth = max_depth,
                .err = err,
        };
        int r;

        if (!buf && len > 0)
                return jb_err_set(err, JB_E_INTERNAL, "no document");
        if (!buf)
                c.p = (const uint8_t *) "";
        r = run(&c);
        if (ret_depth)
                *ret_depth = c.max_seen;
        checker_done(&c);
        return r;
}

int json_check_strict(const char *buf, size_t len, unsigned max_depth, jb_err *err) {
        return check(buf, len, max_depth, NULL, err);
}

json_object *json_parse_strict(const char *buf, size_t len, unsigned max_depth, jb_err *err) {
        json_tokener *tok;
        json_object *o;
        enum json_tokener_error e;
        size_t end, want_end = len;
        bool fed = false;
        unsigned depth;

        if (check(buf, len, max_depth, &depth, err) < 0)
                return NULL;

        /* json-c counts scalars as a level too. depth <= len, so no overflow. */
        tok = json_tokener_new_ex((int) depth + 1);
        if (!tok) {
                (void) jb_err_set(err, JB_E_INTERNAL, "out of memory");
                return NULL;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, buf, (int) len);
        e = json_tokener_get_error(tok);
        if (!o && e == json_tokener_continue) {
                /* A top-level number or literal only ends at a delimiter. */
                o = json_tokener_parse_ex(tok, " ", 1);
                e = json_tokener_get_error(tok);
                want_end = 1;
                fed = true;
        }
        end = json_tokener_get_parse_end(tok);
        if (!o && e == json_tokener_success)
                /* json-c's JSON null is the NULL pointer: indistinguishable
                 * from a failure for our callers, so refused outright. */
                (void) jb_err_set(err, JB_E_INVALID_JSON, "offset 0: top-level null not supported");
        else if (!o || e != json_tokener_success || end != want_end) {
                (void) jb_err_set(err, JB_E_INVALID_JSON, "offset %zu: %s",
                                  fed ? len : end,
                                  e != json_tokener_success ? json_tokener_error_desc(e) : "trailing data");
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}
