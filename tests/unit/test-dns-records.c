/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for the pure half of the dns module: names (dns-record.c), record
 * content per type, TXT quoting and splitting, the desired zone built from
 * a request (dns-desired.c), and the diff against what pdns holds with the
 * PATCH it produces (dns-rrset.c). Hostile inputs included. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "dns-internal.h"

#define ZONE "example.com."

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got '%s' (%s)", code, err->code, err->msg);
}

/* ---- names ---- */

static void owner_ok(const char *in, const char *want) {
        char out[DNS_NAME_MAX];
        jb_err err = JB_ERR_INIT;

        if (dns_owner_name(ZONE, in, out, &err) < 0)
                fail_msg("owner '%s' refused: %s", in, err.msg);
        assert_string_equal(out, want);
}

static void owner_bad(const char *in, const char *why) {
        char out[DNS_NAME_MAX];
        jb_err err = JB_ERR_INIT;

        if (dns_owner_name(ZONE, in, out, &err) == 0)
                fail_msg("owner '%s' accepted as '%s'", in, out);
        assert_code(&err, "INVALID_PARAMS");
        if (why && !strstr(err.msg, why))
                fail_msg("owner '%s': message '%s' lacks '%s'", in, err.msg, why);
}

static void test_owner_names(void **state) {
        char label63[64], label64[65], longname[300], full[320];

        (void) state;
        owner_ok("@", "example.com.");
        owner_ok("www", "www.example.com.");
        owner_ok("WwW", "www.example.com.");
        owner_ok("a.b.c", "a.b.c.example.com.");
        owner_ok("www.example.com", "www.example.com.");       /* ends in the zone: absolute */
        owner_ok("example.com", "example.com.");
        owner_ok("www.example.com.", "www.example.com.");
        owner_ok("EXAMPLE.COM.", "example.com.");
        owner_ok("*", "*.example.com.");
        owner_ok("*.sub", "*.sub.example.com.");
        owner_ok("_dmarc", "_dmarc.example.com.");
        owner_ok("_sip._tcp", "_sip._tcp.example.com.");
        owner_ok("xn--bcher-kva", "xn--bcher-kva.example.com.");
        owner_ok("www.example.co", "www.example.co.example.com.");    /* relative */
        owner_ok("notexample.com", "notexample.com.example.com.");

        owner_bad("www.other.com.", "outside the zone");
        owner_bad("com.", "outside the zone");
        owner_bad("notexample.com.", "outside the zone");
        owner_bad("a.*", "'*'");
        owner_bad("*a", "'*'");
        owner_bad("**", "'*'");
        owner_bad("a..b", "empty label");
        owner_bad(".", "empty");
        owner_bad("..", "empty label");
        owner_bad(".www", "empty label");
        owner_bad("-www", "'-'");
        owner_bad("www-", "'-'");
        owner_bad("ab--cd", "xn--");
        owner_bad("xn--", "'-'");
        owner_bad("b\xc3\xbc" "cher", "A-label");
        owner_bad("a b", "character");
        owner_bad("a/b", "character");
        owner_bad("a@b", "character");
        owner_bad("a\\046b", "character");
        owner_bad("", "empty");

        memset(label63, 'a', 63);
        label63[63] = '\0';
        memset(label64, 'a', 64);
        label64[64] = '\0';
        snprintf(longname, sizeof longname, "%s." ZONE, label63);
        owner_ok(label63, longname);
        owner_bad(label64, "63");
        /* 4 labels of 63 = 255 bytes: too long on its own and within the zone. */
        snprintf(longname, sizeof longname, "%s.%s.%s.%s", label63, label63, label63, label63);
        owner_bad(longname, "253");
        snprintf(longname, sizeof longname, "%s.%s.%s.%.50s", label63, label63, label63, label63);
        owner_bad(longname, "253");        /* 242 bytes + ".example.com" = 254 */
        snprintf(longname, sizeof longname, "%s.%s.%s.%.49s", label63, label63, label63, label63);
        snprintf(full, sizeof full, "%s." ZONE, longname);
        owner_ok(longname, full);       /* 253 bytes exactly */
}

static void test_target_names(void **state) {
        char out[DNS_NAME_MAX];
        jb_err err = JB_ERR_INIT;

        (void) state;
        assert_int_equal(dns_target_name(ZONE, "mail.example.net", false, out, &err), 0);
        assert_string_equal(out, "mail.example.net.");
        assert_int_equal(dns_target_name(ZONE, "Mail.Example.NET.", false, out, &err), 0);
        assert_string_equal(out, "mail.example.net.");
        assert_int_equal(dns_target_name(ZONE, "@", false, out, &err), 0);
        assert_string_equal(out, ZONE);
        assert_int_equal(dns_target_name(ZONE, ".", true, out, &err), 0);
        assert_string_equal(out, ".");
        assert_int_equal(dns_target_name(ZONE, ".", false, out, &err), -1);
        assert_int_equal(dns_target_name(ZONE, "mail", false, out, &err), -1);
        assert_non_null(strstr(err.msg, "fully-qualified"));
        assert_int_equal(dns_target_name(ZONE, "*.example.net", false, out, &err), -1);
        assert_int_equal(dns_target_name(ZONE, "a..b", false, out, &err), -1);
        assert_int_equal(dns_target_name(ZONE, "mail.example.net..", false, out, &err), -1);
        assert_int_equal(dns_target_name(ZONE, "", false, out, &err), -1);
}

/* ---- content ---- */

static void content_ok(const char *type, const char *in, int64_t prio, const char *want) {
        jb_err err = JB_ERR_INIT;
        char *out = NULL;

        if (dns_record_content(ZONE, type, in, prio, &out, &err) < 0)
                fail_msg("%s '%s' refused: %s", type, in, err.msg);
        if (strcmp(out, want) != 0)
                fail_msg("%s '%s': got '%s', want '%s'", type, in, out, want);
        free(out);
}

static void content_bad(const char *type, const char *in, int64_t prio) {
        jb_err err = JB_ERR_INIT;
        char *out = NULL;

        if (dns_record_content(ZONE, type, in, prio, &out, &err) == 0)
                fail_msg("%s '%s' accepted as '%s'", type, in, out);
        assert_null(out);
        assert_code(&err, "INVALID_PARAMS");
        assert_true(err.msg[0] != '\0');
}

static void test_content_addresses(void **state) {
        (void) state;
        content_ok("A", "192.0.2.1", -1, "192.0.2.1");
        content_ok("A", "0.0.0.0", -1, "0.0.0.0");
        content_bad("A", "192.0.2.01", -1);
        content_bad("A", "192.0.2", -1);
        content_bad("A", "256.0.2.1", -1);
        content_bad("A", " 192.0.2.1", -1);
        content_bad("A", "192.0.2.1 ", -1);
        content_bad("A", "2001:db8::1", -1);
        content_bad("A", "192.0.2.1", 10);              /* priority on A */
        content_ok("AAAA", "2001:DB8:0:0::1", -1, "2001:db8::1");
        content_ok("AAAA", "2001:0db8:0000:0000:0000:0000:0000:0001", -1, "2001:db8::1");
        content_ok("AAAA", "::", -1, "::");
        content_bad("AAAA", "192.0.2.1", -1);
        content_bad("AAAA", "fe80::1%eth0", -1);
        content_bad("AAAA", "2001:db8:::1", -1);
        content_bad("AAAA", "g::1", -1);
}

static void test_content_names(void **state) {
        (void) state;
        content_ok("CNAME", "target.example.net", -1, "target.example.net.");
        content_ok("CNAME", "@", -1, ZONE);
        content_ok("NS", "ns1.example.net.", -1, "ns1.example.net.");
        content_ok("PTR", "host.example.com", -1, "host.example.com.");
        content_bad("CNAME", "target", -1);
        content_bad("CNAME", "a b.example.net", -1);
        content_bad("NS", ".", -1);
        content_ok("MX", "mail.example.com", 10, "10 mail.example.com.");
        content_ok("MX", "Mail.Example.com.", 0, "0 mail.example.com.");
        content_ok("MX", ".", 0, "0 .");
        content_bad("MX", ".", 10);
        content_bad("MX", "mail.example.com", -1);     /* priority needed */
        content_bad("MX", "mail.example.com", 65536);
        content_bad("MX", "10 mail.example.com", 10);
        content_ok("SRV", "5 5060 sip.example.com", 10, "10 5 5060 sip.example.com.");
        content_ok("SRV", "0 0 .", 0, "0 0 0 .");
        content_bad("SRV", "5 5060", 10);
        content_bad("SRV", "5 65536 sip.example.com", 10);
        content_bad("SRV", "-1 5060 sip.example.com", 10);
        content_bad("SRV", "05 5060 sip.example.com", 10);
        content_bad("SRV", "5  5060 sip.example.com", 10);
        content_bad("SRV", "5 5060 sip.example.com ", 10);
        content_bad("SRV", "5 5060 sip.example.com extra", 10);
        content_bad("SRV", "5 5060 sip.example.com", -1);
}

static void test_content_txt(void **state) {
        char in[600], *out = NULL;
        jb_err err = JB_ERR_INIT;

        (void) state;
        content_ok("TXT", "v=spf1 -all", -1, "\"v=spf1 -all\"");
        content_ok("TXT", "say \"hi\"", -1, "\"say \\\"hi\\\"\"");
        content_ok("TXT", "back\\slash", -1, "\"back\\\\slash\"");
        content_ok("TXT", "caf\xc3\xa9", -1, "\"caf\\195\\169\"");
        content_ok("TXT", "\"already quoted\"", -1, "\"\\\"already quoted\\\"\"");
        content_bad("TXT", "line\nbreak", -1);
        content_bad("TXT", "tab\there", -1);
        content_bad("TXT", "del\x7f", -1);
        content_bad("TXT", "bad\xc3(", -1);             /* invalid UTF-8 */
        content_bad("TXT", "x", 1);

        /* 300 bytes: one full character-string and the rest. */
        memset(in, 'a', 300);
        in[300] = '\0';
        assert_int_equal(dns_txt_encode(in, 300, &out, &err), 0);
        assert_int_equal(strlen(out), 255 + 2 + 1 + 45 + 2);
        assert_true(out[0] == '"' && out[256] == '"' && out[257] == ' ' && out[258] == '"');
        free(out);
        /* Exactly 255: one string. 510: two, no empty third one. */
        assert_int_equal(dns_txt_encode(in, 255, &out, &err), 0);
        assert_int_equal(strlen(out), 257);
        free(out);
        memset(in, 'b', 510);
        assert_int_equal(dns_txt_encode(in, 510, &out, &err), 0);
        assert_int_equal(strlen(out), 2 * 257 + 1);
        free(out);
        /* A two-byte character at the boundary moves to the next string. */
        memset(in, 'a', 254);
        memcpy(in + 254, "\xc3\xa9z", 3);
        assert_int_equal(dns_txt_encode(in, 257, &out, &err), 0);
        assert_string_equal(out + 255, "\" \"\\195\\169z\"");
        free(out);
        /* Escapes do not count toward the 255 bytes of a string. */
        memset(in, '"', 255);
        assert_int_equal(dns_txt_encode(in, 255, &out, &err), 0);
        assert_int_equal(strlen(out), 2 + 2 * 255);
        free(out);
}

static void test_content_caa_tlsa_ds(void **state) {
        char hex64[65], hex96[97], hex128[129], in[300], want[300];

        (void) state;
        content_ok("CAA", "0 issue letsencrypt.org", -1, "0 issue \"letsencrypt.org\"");
        content_ok("CAA", "0 issue \"letsencrypt.org\"", -1, "0 issue \"letsencrypt.org\"");
        content_ok("CAA", "128 ISSUEWILD \";\"", -1, "128 issuewild \";\"");
        content_ok("CAA", "0 iodef mailto:sec@example.com", -1, "0 iodef \"mailto:sec@example.com\"");
        content_bad("CAA", "0 issue", -1);
        content_bad("CAA", "256 issue ca.example", -1);
        content_bad("CAA", "0 iss-ue ca.example", -1);
        content_bad("CAA", "0 issue ca\"example", -1);
        content_bad("CAA", "0 issue ca\\example", -1);
        content_bad("CAA", "0 issue caf\xc3\xa9", -1);
        content_bad("CAA", "0 abcdefghijklmnop ca.example", -1);

        memset(hex64, 'A', 64);
        hex64[64] = '\0';
        memset(hex96, 'b', 96);
        hex96[96] = '\0';
        memset(hex128, 'c', 128);
        hex128[128] = '\0';
        snprintf(in, sizeof in, "3 1 1 %s", hex64);
        memset(hex64, 'a', 64);
        snprintf(want, sizeof want, "3 1 1 %s", hex64);
        content_ok("TLSA", in, -1, want);
        snprintf(in, sizeof in, "3 1 2 %s", hex128);
        content_ok("TLSA", in, -1, in);
        content_ok("TLSA", "3 0 0 abcd", -1, "3 0 0 abcd");
        snprintf(in, sizeof in, "3 1 2 %s", hex64);
        content_bad("TLSA", in, -1);                    /* SHA-512 needs 128 digits */
        content_bad("TLSA", "4 1 1 abcd", -1);
        content_bad("TLSA", "3 2 0 abcd", -1);
        content_bad("TLSA", "3 1 0 abc", -1);
        content_bad("TLSA", "3 1 0 xyz0", -1);
        content_bad("TLSA", "3 1 0", -1);

        snprintf(in, sizeof in, "12345 13 2 %s", hex64);
        content_ok("DS", in, -1, in);
        snprintf(in, sizeof in, "12345 13 4 %s", hex96);
        content_ok("DS", in, -1, in);
        content_ok("DS", "0 8 1 0123456789abcdef0123456789abcdef01234567", -1,
                   "0 8 1 0123456789abcdef0123456789abcdef01234567");
        snprintf(in, sizeof in, "12345 13 3 %s", hex64);
        content_bad("DS", in, -1);
        snprintf(in, sizeof in, "12345 13 2 %s", hex96);
        content_bad("DS", in, -1);
        snprintf(in, sizeof in, "65536 13 2 %s", hex64);
        content_bad("DS", in, -1);
        content_bad("HINFO", "x y", -1);
}

/* ---- the desired zone ---- */

static json_object *rec(const char *name, const char *type, const char *content) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "type", json_object_new_string(type));
        json_object_object_add(o, "content", json_object_new_string(content));
        return o;
}

static json_object *with_int(json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
        return o;
}

static json_object *params(json_object *records) {
        json_object *p = json_object_new_object(), *ns = json_object_new_array();

        json_object_array_add(ns, json_object_new_string("ns1.example.com"));
        json_object_array_add(ns, json_object_new_string("ns2.example.net."));
        json_object_object_add(p, "zone", json_object_new_string("example.com"));
        json_object_object_add(p, "records", records ? records : json_object_new_array());
        json_object_object_add(p, "nameservers", ns);
        return p;
}

static int desired(json_object *p, dns_set *out, jb_err *err) {
        dns_limits lim;
        int r;

        dns_limits_default(&lim);
        lim.max_records = 8;
        r = dns_desired_from_params("example.com", p, &lim, out, err);
        json_object_put(p);
        return r;
}

static void desired_bad(json_object *records, const char *lead) {
        dns_set s;
        jb_err err = JB_ERR_INIT;

        if (desired(params(records), &s, &err) == 0) {
                dns_set_free(&s);
                fail_msg("accepted; expected an error led by '%s'", lead);
        }
        assert_code(&err, "INVALID_PARAMS");
        if (strncmp(err.msg, lead, strlen(lead)) != 0)
                fail_msg("message '%s' is not led by '%s'", err.msg, lead);
}

static json_object *arr(json_object *a, ...) {
        json_object *out = json_object_new_array();
        va_list ap;

        va_start(ap, a);
        for (json_object *o = a; o; o = va_arg(ap, json_object *))
                json_object_array_add(out, o);
        va_end(ap);
        return out;
}

static void test_desired_zone(void **state) {
        dns_set s;
        jb_err err = JB_ERR_INIT;
        const dns_rrset *r;

        (void) state;
        assert_int_equal(desired(params(arr(rec("www", "A", "192.0.2.2"), rec("www", "A", "192.0.2.1"),
                                            with_int(rec("@", "MX", "mail.example.com"), "priority", 10),
                                            with_int(rec("x", "TXT", "hi"), "ttl", 300), NULL)),
                                 &s, &err),
                         0);
        assert_int_equal(s.n, 5);       /* A, MX, TXT, apex NS, SOA */
        r = dns_set_find(&s, "www.example.com.", "A");
        assert_non_null(r);
        assert_int_equal(r->n, 2);
        assert_string_equal(r->recs[0].content, "192.0.2.1");   /* sorted */
        assert_int_equal(r->ttl, 3600);
        r = dns_set_find(&s, "example.com.", "NS");
        assert_non_null(r);
        assert_string_equal(r->recs[0].content, "ns1.example.com.");
        assert_string_equal(r->recs[1].content, "ns2.example.net.");
        r = dns_set_find(&s, "example.com.", "SOA");
        assert_non_null(r);
        assert_string_equal(r->recs[0].content, "ns1.example.com. hostmaster.example.com. 0 10800 3600 604800 3600");
        r = dns_set_find(&s, "x.example.com.", "TXT");
        assert_non_null(r);
        assert_int_equal(r->ttl, 300);
        for (size_t i = 1; i < s.n; i++)
                assert_true(strcmp(s.v[i - 1].name, s.v[i].name) < 0 ||
                            (strcmp(s.v[i - 1].name, s.v[i].name) == 0 && strcmp(s.v[i - 1].type, s.v[i].type) < 0));
        dns_set_free(&s);
}

static void test_desired_rules(void **state) {
        char many[64];

        (void) state;
        desired_bad(arr(rec("www", "A", "192.0.2.1"), rec("www", "CNAME", "x.example.net"), NULL), "records[");
        desired_bad(arr(rec("www", "CNAME", "x.example.net"), rec("www", "TXT", "t"), NULL), "records[0].name");
        desired_bad(arr(rec("www", "CNAME", "x.example.net"), rec("www", "CNAME", "y.example.net"), NULL),
                    "records[0].name");
        desired_bad(arr(rec("@", "CNAME", "x.example.net"), NULL), "records[0].type");
        desired_bad(arr(rec("@", "NS", "ns3.example.net"), NULL), "records[0].type");
        desired_bad(arr(rec("example.com.", "DS", "1 13 1 0123456789abcdef0123456789abcdef01234567"), NULL),
                    "records[0].type");
        desired_bad(arr(rec("sub", "DS", "1 13 1 0123456789abcdef0123456789abcdef01234567"), NULL), "records[0].name");
        desired_bad(arr(rec("a", "A", "192.0.2.1"), rec("a", "A", "192.0.2.1"), NULL), "records[1].content");
        desired_bad(arr(rec("a", "A", "192.0.2.1"), with_int(rec("a", "A", "192.0.2.2"), "ttl", 300), NULL),
                    "records[1].ttl");
        desired_bad(arr(rec("a", "A", "192.0.2.1"), with_int(rec("b", "A", "192.0.2.2"), "ttl", 59), NULL),
                    "records[1].ttl");
        desired_bad(arr(with_int(rec("b", "A", "192.0.2.2"), "ttl", 604801), NULL), "records[0].ttl");
        desired_bad(arr(rec("a", "A", "192.0.2.1"), rec("b", "A", "192.0.2.300"), NULL), "records[1].content");
        desired_bad(arr(rec("a", "A", "192.0.2.1"), rec("b.other.org.", "A", "192.0.2.3"), NULL), "records[1].name");
        desired_bad(arr(with_int(rec("a", "A", "192.0.2.1"), "priority", 1), NULL), "records[0].priority");
        desired_bad(arr(rec("a", "MX", "mx.example.com"), NULL), "records[0].priority");
        desired_bad(arr(rec("a", "TXT", "x\ny"), NULL), "records[0].content");
        desired_bad(arr(rec("a\x01", "TXT", "x"), NULL), "records[0].name");

        /* The cap: 8 in these tests. */
        {
                json_object *a = json_object_new_array();
                for (int i = 0; i < 9; i++) {
                        snprintf(many, sizeof many, "h%d", i);
                        json_object_array_add(a, rec(many, "A", "192.0.2.1"));
                }
                desired_bad(a, "records:");
        }
        /* A DS beside its delegation is fine; so is a CNAME alone. */
        {
                dns_set s;
                jb_err err = JB_ERR_INIT;
                assert_int_equal(desired(params(arr(rec("sub", "NS", "ns.sub.example.com"),
                                                    rec("sub", "DS", "1 13 1 0123456789abcdef0123456789abcdef01234567"),
                                                    rec("ns.sub", "A", "192.0.2.5"),
                                                    rec("www", "CNAME", "@"), NULL)),
                                         &s, &err),
                                 0);
                dns_set_free(&s);
        }
}

static void test_desired_soa_and_ns(void **state) {
        json_object *p, *soa;
        dns_set s;
        jb_err err = JB_ERR_INIT;

        (void) state;
        p = params(NULL);
        soa = json_object_new_object();
        json_object_object_add(soa, "rname", json_object_new_string("admin.example.org"));
        json_object_object_add(soa, "refresh", json_object_new_int(7200));
        json_object_object_add(soa, "ttl", json_object_new_int(600));
        json_object_object_add(p, "soa", soa);
        assert_int_equal(desired(p, &s, &err), 0);
        assert_string_equal(dns_set_find(&s, "example.com.", "SOA")->recs[0].content,
                            "ns1.example.com. admin.example.org. 0 7200 3600 604800 3600");
        assert_int_equal(dns_set_find(&s, "example.com.", "SOA")->ttl, 600);
        dns_set_free(&s);

        p = params(NULL);
        json_object_object_add(p, "nameservers", json_object_new_array());
        assert_int_equal(desired(p, &s, &err), -1);
        assert_non_null(strstr(err.msg, "nameservers"));
        p = params(NULL);
        json_object_array_add(json_object_object_get(p, "nameservers"), json_object_new_string("ns1.example.com."));
        assert_int_equal(desired(p, &s, &err), -1);
        assert_non_null(strstr(err.msg, "twice"));
        p = params(NULL);
        json_object_array_put_idx(json_object_object_get(p, "nameservers"), 0, json_object_new_string("ns1"));
        assert_int_equal(desired(p, &s, &err), -1);
        assert_non_null(strstr(err.msg, "nameservers[0]"));
}

/* ---- diff ---- */

static json_object *api_rrset(const char *name, const char *type, int ttl, const char *c1, const char *c2) {
        json_object *o = json_object_new_object(), *recs = json_object_new_array();
        const char *cs[2] = { c1, c2 };

        for (int i = 0; i < 2; i++) {
                json_object *r;
                if (!cs[i])
                        continue;
                r = json_object_new_object();
                json_object_object_add(r, "content", json_object_new_string(cs[i]));
                json_object_object_add(r, "disabled", json_object_new_boolean(false));
                json_object_array_add(recs, r);
        }
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "type", json_object_new_string(type));
        json_object_object_add(o, "ttl", json_object_new_int(ttl));
        json_object_object_add(o, "records", recs);
        json_object_object_add(o, "comments", json_object_new_array());
        return o;
}

static json_object *api_zone(json_object *extra) {
        json_object *z = json_object_new_object();
        json_object *rr = arr(api_rrset("example.com.", "SOA", 3600,
                                        "ns1.example.com. hostmaster.example.com. 2024010105 10800 3600 604800 3600", NULL),
                              api_rrset("example.com.", "NS", 3600, "ns2.example.net.", "ns1.example.com."),
                              api_rrset("www.example.com.", "A", 3600, "192.0.2.2", "192.0.2.1"), NULL);

        if (extra)
                json_object_array_add(rr, extra);
        json_object_object_add(z, "rrsets", rr);
        return z;
}

static void want_www(dns_set *s, const char *second, int ttl) {
        jb_err err = JB_ERR_INIT;
        json_object *r2 = rec("www", "A", second);

        if (ttl)
                with_int(r2, "ttl", ttl);
        assert_int_equal(desired(params(arr(rec("www", "A", "192.0.2.1"), r2, NULL)), s, &err), 0);
}

static int diff_of(const dns_set *want, json_object *zone, json_object **patch, json_object **report) {
        dns_set have;
        jb_err err = JB_ERR_INIT;
        int n;

        assert_int_equal(dns_set_from_api(zone, &have, &err), 0);
        json_object_put(zone);
        n = dns_diff(want, &have, patch, report, &err);
        dns_set_free(&have);
        return n;
}

static void test_diff(void **state) {
        dns_set want;
        json_object *patch = NULL, *report = NULL, *e;

        (void) state;
        /* Equal (order, serial differ): nothing to do. */
        want_www(&want, "192.0.2.2", 0);
        assert_int_equal(diff_of(&want, api_zone(NULL), &patch, &report), 0);
        assert_int_equal(json_object_array_length(patch), 0);
        json_object_put(patch);
        json_object_put(report);

        /* An rrset pdns has and the request does not: DELETE. */
        assert_int_equal(diff_of(&want, api_zone(api_rrset("old.example.com.", "TXT", 60, "\"x\"", NULL)), &patch,
                                 &report),
                         1);
        e = json_object_array_get_idx(patch, 0);
        assert_string_equal(json_object_get_string(json_object_object_get(e, "changetype")), "DELETE");
        assert_string_equal(json_object_get_string(json_object_object_get(e, "name")), "old.example.com.");
        assert_null(json_object_object_get(e, "records"));
        assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(report, 0), "action")),
                            "delete");
        json_object_put(patch);
        json_object_put(report);
        dns_set_free(&want);

        /* One content differs: one REPLACE with the whole rrset. */
        want_www(&want, "192.0.2.3", 0);
        assert_int_equal(diff_of(&want, api_zone(NULL), &patch, &report), 1);
        e = json_object_array_get_idx(patch, 0);
        assert_string_equal(json_object_get_string(json_object_object_get(e, "changetype")), "REPLACE");
        assert_int_equal(json_object_array_length(json_object_object_get(e, "records")), 2);
        assert_int_equal(json_object_get_int(json_object_object_get(e, "ttl")), 3600);
        json_object_put(patch);
        json_object_put(report);
        dns_set_free(&want);

        /* An explicit TTL equal to the one pdns has: still nothing. */
        want_www(&want, "192.0.2.2", 3600);
        assert_int_equal(diff_of(&want, api_zone(NULL), NULL, NULL), 0);
        dns_set_free(&want);
}

static void test_diff_soa(void **state) {
        json_object *p = params(NULL), *soa = json_object_new_object(), *patch = NULL;
        dns_set want, have;
        jb_err err = JB_ERR_INIT;
        json_object *z;

        (void) state;
        json_object_object_add(soa, "refresh", json_object_new_int(7200));
        json_object_object_add(p, "soa", soa);
        assert_int_equal(desired(p, &want, &err), 0);
        z = api_zone(NULL);
        /* Drop www so that only the SOA differs. */
        json_object_array_del_idx(json_object_object_get(z, "rrsets"), 2, 1);
        assert_int_equal(dns_set_from_api(z, &have, &err), 0);
        json_object_put(z);
        assert_int_equal(dns_diff(&want, &have, &patch, NULL, &err), 1);
        /* Sent with the serial pdns holds: pdns moves it. */
        assert_string_equal(json_object_get_string(json_object_object_get(
                                    json_object_array_get_idx(json_object_object_get(json_object_array_get_idx(patch, 0),
                                                                                     "records"),
                                                              0),
                                    "content")),
                            "ns1.example.com. hostmaster.example.com. 2024010105 7200 3600 604800 3600");
        json_object_put(patch);
        dns_set_free(&want);
        dns_set_free(&have);
}

static void test_api_set_hostile(void **state) {
        dns_set s;
        jb_err err = JB_ERR_INIT;
        json_object *z = json_tokener_parse("{\"rrsets\":[{\"name\":\"a.\",\"type\":\"A\"}]}");

        (void) state;
        assert_int_equal(dns_set_from_api(z, &s, &err), -1);
        assert_code(&err, "SERVICE_FAILED");
        json_object_put(z);
        z = json_tokener_parse("{\"rrsets\":[{\"name\":\"a.\",\"type\":\"AAAAAAAAAAAAAAAAAA\",\"records\":[{}]}]}");
        assert_int_equal(dns_set_from_api(z, &s, &err), -1);
        json_object_put(z);
        z = json_tokener_parse("{\"rrsets\":[{\"name\":\"a.\",\"type\":\"A\",\"records\":[{\"disabled\":true}]}]}");
        assert_int_equal(dns_set_from_api(z, &s, &err), -1);
        json_object_put(z);
        z = json_tokener_parse("{\"rrsets\":7}");
        assert_int_equal(dns_set_from_api(z, &s, &err), -1);
        json_object_put(z);
        /* A comments-only rrset serves nothing and is skipped. */
        z = json_tokener_parse("{\"rrsets\":[{\"name\":\"a.\",\"type\":\"A\",\"records\":[],\"comments\":[]}]}");
        assert_int_equal(dns_set_from_api(z, &s, &err), 0);
        assert_int_equal(s.n, 0);
        dns_set_free(&s);
        json_object_put(z);
}

/* ---- the memo's text ---- */

static void test_state_text(void **state) {
        dns_set a, b;
        jb_err err = JB_ERR_INIT;
        json_object *meta = json_object_new_object();
        char *ta, *tb;

        (void) state;
        /* The same zone in another order and spelling gives the same text. */
        assert_int_equal(desired(params(arr(rec("www", "A", "192.0.2.2"), rec("WWW.example.com.", "A", "192.0.2.1"),
                                            NULL)),
                                 &a, &err),
                         0);
        assert_int_equal(desired(params(arr(rec("www.example.com", "A", "192.0.2.1"), rec("www", "A", "192.0.2.2"),
                                            NULL)),
                                 &b, &err),
                         0);
        json_object_object_add(meta, "ALSO-NOTIFY", arr(json_object_new_string("192.0.2.9"), NULL));
        ta = dns_state_text(&a, meta);
        tb = dns_state_text(&b, meta);
        assert_non_null(ta);
        assert_string_equal(ta, tb);
        assert_non_null(strstr(ta, "www.example.com. A 3600 0 192.0.2.1\n"));
        assert_non_null(strstr(ta, "META ALSO-NOTIFY 192.0.2.9\n"));
        free(tb);
        /* Any difference (here the metadata) gives another text. */
        tb = dns_state_text(&b, NULL);
        assert_string_not_equal(ta, tb);
        free(ta);
        free(tb);
        dns_set_free(&a);
        dns_set_free(&b);
        json_object_put(meta);
}

/* ---- metadata ---- */

static void test_meta(void **state) {
        json_object *p = json_object_new_object(), *out = NULL, *have;
        jb_err err = JB_ERR_INIT;

        (void) state;
        json_object_object_add(p, "allow_axfr_from", arr(json_object_new_string("192.0.2.0/24"),
                                                         json_object_new_string("2001:db8::/32"),
                                                         json_object_new_string("AUTO-NS"), NULL));
        json_object_object_add(p, "also_notify", arr(json_object_new_string("192.0.2.9:5300"),
                                                     json_object_new_string("[2001:db8::9]:53"),
                                                     json_object_new_string("192.0.2.8"), NULL));
        assert_int_equal(dns_meta_from_params(p, &out, &err), 0);
        assert_string_equal(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"ALLOW-AXFR-FROM\":[\"192.0.2.0/24\",\"2001:db8::/32\",\"AUTO-NS\"],"
                            "\"ALSO-NOTIFY\":[\"192.0.2.8\",\"192.0.2.9:5300\",\"[2001:db8::9]:53\"]}");
        have = arr(json_object_new_string("AUTO-NS"), json_object_new_string("192.0.2.0/24"),
                   json_object_new_string("2001:db8::/32"), NULL);
        assert_int_equal(dns_meta_differs(json_object_object_get(out, "ALLOW-AXFR-FROM"), have), 0);
        assert_int_equal(dns_meta_differs(json_object_object_get(out, "ALSO-NOTIFY"), have), 1);
        {
                json_object *empty = json_object_new_array();
                assert_int_equal(dns_meta_differs(empty, NULL), 0);
                json_object_put(empty);
        }
        json_object_put(have);
        json_object_put(out);
        json_object_put(p);

        static const char *const bad_acl[] = { "192.0.2.0/33", "192.0.2.0/", "192.0.2.0/024", "x", "192.0.2.0/24/1",
                                               "::/129", "auto-ns", NULL };
        static const char *const bad_notify[] = { "192.0.2.9:0", "192.0.2.9:65536", "192.0.2.9:", "2001:db8::9:53x",
                                                  "[2001:db8::9]", "[192.0.2.1]:53", "host:53", "192.0.2.9:053", NULL };
        for (int k = 0; k < 2; k++)
                for (const char *const *b = k ? bad_notify : bad_acl; *b; b++) {
                        p = json_object_new_object();
                        json_object_object_add(p, k ? "also_notify" : "allow_axfr_from",
                                               arr(json_object_new_string(*b), NULL));
                        if (dns_meta_from_params(p, &out, &err) == 0)
                                fail_msg("'%s' accepted", *b);
                        assert_code(&err, "INVALID_PARAMS");
                        json_object_put(p);
                }
        p = json_object_new_object();
        json_object_object_add(p, "also_notify", arr(json_object_new_string("192.0.2.8"),
                                                     json_object_new_string("192.0.2.8"), NULL));
        assert_int_equal(dns_meta_from_params(p, &out, &err), -1);
        json_object_put(p);
}

/* ---- hostile bytes: nothing crashes, every answer is well formed ---- */

static void test_random_content(void **state) {
        static const char *const types[] = { "A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA", "PTR", "TLSA", "DS" };
        static const char alphabet[] = "0123456789abcdefABCDEF .:@*\"\\-_/;\xc3\xa9\x01\x7f";
        uint32_t x = 12345;
        char buf[80];

        (void) state;
        for (int iter = 0; iter < 20000; iter++) {
                size_t n;
                char *out = NULL, name[DNS_NAME_MAX];
                jb_err err = JB_ERR_INIT;
                const char *t;

                x = x * 1103515245u + 12345u;
                n = (x >> 16) % (sizeof buf - 1);
                for (size_t i = 0; i < n; i++) {
                        x = x * 1103515245u + 12345u;
                        buf[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
                }
                buf[n] = '\0';
                t = types[iter % 11];
                if (dns_record_content(ZONE, t, buf, (iter & 1) ? 10 : -1, &out, &err) == 0) {
                        assert_non_null(out);
                        assert_true(strlen(out) > 0);
                        free(out);
                } else {
                        assert_null(out);
                        assert_true(strcmp(err.code, "INVALID_PARAMS") == 0);
                }
                if (dns_owner_name(ZONE, buf, name, &err) == 0) {
                        size_t l = strlen(name);
                        assert_true(l >= strlen(ZONE) && l < DNS_NAME_MAX && name[l - 1] == '.');
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_owner_names),
                cmocka_unit_test(test_target_names),
                cmocka_unit_test(test_content_addresses),
                cmocka_unit_test(test_content_names),
                cmocka_unit_test(test_content_txt),
                cmocka_unit_test(test_content_caa_tlsa_ds),
                cmocka_unit_test(test_desired_zone),
                cmocka_unit_test(test_desired_rules),
                cmocka_unit_test(test_desired_soa_and_ns),
                cmocka_unit_test(test_diff),
                cmocka_unit_test(test_diff_soa),
                cmocka_unit_test(test_api_set_hostile),
                cmocka_unit_test(test_state_text),
                cmocka_unit_test(test_meta),
                cmocka_unit_test(test_random_content),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
