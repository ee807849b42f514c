/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_VALIDATE_H
#define JABALI_VALIDATE_H

/* The named validators behind jb_check, usable on their own.
 *
 * Each takes a byte string and its length (so an embedded NUL is seen and
 * refused) and returns true when the value is acceptable. When it is not and
 * `why` is not NULL, *why points to a static, lower-case reason
 * ("label longer than 63 bytes"). */

#include <stdbool.h>
#include <stddef.h>

#include <jabali/visibility.h>

JB_EXPORT bool jb_valid_domain(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_username(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_email_local(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_email(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_ipv4(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_ipv6(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_ip(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_path_segment(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_rel_path(const char *s, size_t len, const char **why);
JB_EXPORT bool jb_valid_token(const char *s, size_t len, const char **why);
/* UTF-8 well formed (no overlongs, no surrogates, <= U+10FFFF) and free of
 * C0 controls and DEL; what JB_CHECK_NONE demands of every string. */
JB_EXPORT bool jb_valid_text(const char *s, size_t len, const char **why);
/* A systemd unit name as the agent accepts it: [A-Za-z0-9:_.@-], 1..255
 * bytes, not starting with '-' or '.'. */
JB_EXPORT bool jb_valid_unit(const char *s, size_t len, const char **why);
/* jb_valid_text, except that tab, LF and CR are allowed (file content). */
JB_EXPORT bool jb_valid_multiline(const char *s, size_t len, const char **why);

#endif
