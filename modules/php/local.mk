# The php module: php.so, its template, its unit and integration tests.
# Included from the top-level Makefile.am (moduledir is defined there).
phpmoduledir = $(moduledir)
phpmodule_LTLIBRARIES = modules/php/php.la
modules_php_php_la_SOURCES = \
	modules/php/php-internal.h \
	modules/php/php.c \
	modules/php/php-ext.c \
	modules/php/php-fpm.c \
	modules/php/php-pool.c \
	modules/php/php-render.c
modules_php_php_la_CPPFLAGS = $(AM_CPPFLAGS) -DPHP_TEMPLATE_DIR=\"$(phptemplatedir)\"
modules_php_php_la_LIBADD = libjabali.la $(JSONC_LIBS)
modules_php_php_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-export-symbols-regex '^jabali_module$$'

phptemplatedir = $(datadir)/jabali/php
dist_phptemplate_DATA = modules/php/templates/pool.conf.tpl

# What the module's package ships besides php.so: its agent.d snippet
# and its AppArmor hat (apparmordir comes from Makefile.am).
phpagentddir = $(sysconfdir)/jabali/agent.d
dist_phpagentd_DATA = modules/php/php.conf
phphatdir = $(apparmordir)/jabali-agent.d
dist_phphat_DATA = apparmor/jabali-agent.d/php

# The renderer against the shipped template (TEST_CFLAGS and TEST_LIBS
# come from Makefile.am).
check_PROGRAMS += tests/unit/test-php-render
TESTS += tests/unit/test-php-render
tests_unit_test_php_render_SOURCES = tests/unit/test-php-render.c modules/php/php-internal.h \
	modules/php/php-render.c
tests_unit_test_php_render_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/php \
	-DPHP_SRC_TEMPLATES=\"$(abs_top_srcdir)/modules/php/templates\"
tests_unit_test_php_render_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_php_render_LDADD = $(TEST_LIBS)

EXTRA_DIST += \
	modules/php/README.md \
	tests/integration/test_php.py \
	tests/integration/test_php_nginx.py \
	tests/integration/webstack.py

# Run against a real php-fpm (and nginx) when installed (tools/deps: php8.2-fpm, nginx).
TESTS += tests/integration/test_php.py tests/integration/test_php_nginx.py
