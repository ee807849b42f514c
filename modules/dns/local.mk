# The dns module: dns.so, its unit test and its integration test.
# Included from the top-level Makefile.am (moduledir is defined there).
# libcurl (LIBCURL_*) is linked here only: the core never needs it.
dnsmoduledir = $(moduledir)
dnsmodule_LTLIBRARIES = modules/dns/dns.la
# The pure half (no libcurl): the unit tests and the fuzz target link it.
dns_pure_sources = \
	modules/dns/dns-internal.h \
	modules/dns/dns-record.c \
	modules/dns/dns-desired.c \
	modules/dns/dns-rrset.c
modules_dns_dns_la_SOURCES = \
	$(dns_pure_sources) \
	modules/dns/dns-module.h \
	modules/dns/dns.c \
	modules/dns/dns-api.c \
	modules/dns/dns-cache.c \
	modules/dns/dns-dnssec.c \
	modules/dns/dns-memo.c \
	modules/dns/dns-zone.c
modules_dns_dns_la_CFLAGS = $(AM_CFLAGS) $(LIBCURL_CFLAGS)
modules_dns_dns_la_LIBADD = libjabali.la $(JSONC_LIBS) $(LIBCURL_LIBS)
modules_dns_dns_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-export-symbols-regex '^jabali_module$$'

# What the module's package ships besides dns.so: its agent.d snippet
# and its AppArmor hat (apparmordir comes from Makefile.am).
dnsagentddir = $(sysconfdir)/jabali/agent.d
dist_dnsagentd_DATA = modules/dns/dns.conf
dnshatdir = $(apparmordir)/jabali-agent.d
dist_dnshat_DATA = apparmor/jabali-agent.d/dns

check_PROGRAMS += tests/unit/test-dns-records
TESTS += tests/unit/test-dns-records
tests_unit_test_dns_records_SOURCES = tests/unit/test-dns-records.c $(dns_pure_sources)
tests_unit_test_dns_records_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/dns
tests_unit_test_dns_records_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dns_records_LDADD = $(TEST_LIBS)

EXTRA_DIST += \
	modules/dns/README.md \
	tests/integration/test_dns.py \
	tests/integration/dnsenv.py \
	bench/dns-bench

# Runs against a real pdns and MariaDB when installed (tools/deps).
TESTS += tests/integration/test_dns.py
