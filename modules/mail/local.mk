# The mail module: mail.so and its tests.
# Included from the top-level Makefile.am (moduledir is defined there).
# libcurl is this module's own dependency (the stalwart backend).
mailmoduledir = $(moduledir)
mailmodule_LTLIBRARIES = modules/mail/mail.la
# The pure parts: what the unit test links too (no host, no libcurl).
mail_pure_sources = \
	modules/mail/mail-internal.h \
	modules/mail/mail-buf.c \
	modules/mail/mail-check.c \
	modules/mail/mail-jmap.c \
	modules/mail/mail-maps.c \
	modules/mail/mail-passwd.c \
	modules/mail/mail-sieve.c
modules_mail_mail_la_SOURCES = \
	$(mail_pure_sources) \
	modules/mail/mail.c \
	modules/mail/mail-actions.c \
	modules/mail/mail-dovecot.c \
	modules/mail/mail-stalwart.c
modules_mail_mail_la_CFLAGS = $(AM_CFLAGS) $(LIBCURL_CFLAGS)
modules_mail_mail_la_LIBADD = libjabali.la $(JSONC_LIBS) $(LIBCURL_LIBS)
modules_mail_mail_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-export-symbols-regex '^jabali_module$$'

# What the module's package ships besides mail.so: its agent.d snippet
# and its AppArmor hat (apparmordir comes from Makefile.am).
mailagentddir = $(sysconfdir)/jabali/agent.d
dist_mailagentd_DATA = modules/mail/mail.conf
mailhatdir = $(apparmordir)/jabali-agent.d
dist_mailhat_DATA = apparmor/jabali-agent.d/mail

check_PROGRAMS += tests/unit/test-mail
TESTS += tests/unit/test-mail
tests_unit_test_mail_SOURCES = tests/unit/test-mail.c $(mail_pure_sources)
tests_unit_test_mail_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/mail
tests_unit_test_mail_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mail_LDADD = $(TEST_LIBS)

EXTRA_DIST += \
	modules/mail/README.md \
	tests/integration/test_mail.py \
	tests/integration/test_mail_stalwart.py \
	tests/fakes/stalwart.py

# The dovecot backend against a real Dovecot and Postfix (tools/deps); the
# stalwart backend against the fake Stalwart (tests/fakes/stalwart.py).
TESTS += tests/integration/test_mail.py tests/integration/test_mail_stalwart.py
