# The nginx module: nginx.so, its templates and its integration test.
# Included from the top-level Makefile.am (moduledir is defined there).
# Installed into moduledir under a variable of its own, so that this
# fragment does not depend on whether module_LTLIBRARIES is declared.
nginxmoduledir = $(moduledir)
nginxmodule_LTLIBRARIES = modules/nginx/nginx.la
modules_nginx_nginx_la_SOURCES = \
	modules/nginx/nginx-internal.h \
	modules/nginx/nginx.c \
	modules/nginx/nginx-cache.c \
	modules/nginx/nginx-batch.c \
	modules/nginx/nginx-check.c \
	modules/nginx/nginx-domain.c \
	modules/nginx/nginx-fileset.c \
	modules/nginx/nginx-ratelimits.c \
	modules/nginx/nginx-render.c
modules_nginx_nginx_la_CPPFLAGS = $(AM_CPPFLAGS) -DNGINX_TEMPLATE_DIR=\"$(nginxtemplatedir)\"
modules_nginx_nginx_la_LIBADD = libjabali.la $(JSONC_LIBS)
modules_nginx_nginx_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-export-symbols-regex '^jabali_module$$'

nginxtemplatedir = $(datadir)/jabali/nginx
dist_nginxtemplate_DATA = \
	modules/nginx/templates/vhost.conf.tpl \
	modules/nginx/templates/ratelimits.conf.tpl

# What the module's package ships besides nginx.so: its agent.d snippet
# and its AppArmor hat (apparmordir comes from Makefile.am).
nginxagentddir = $(sysconfdir)/jabali/agent.d
dist_nginxagentd_DATA = modules/nginx/nginx.conf
nginxhatdir = $(apparmordir)/jabali-agent.d
dist_nginxhat_DATA = apparmor/jabali-agent.d/nginx

# tests/golden (a directory) is distributed by Makefile.am already.
EXTRA_DIST += \
	modules/nginx/README.md \
	tests/integration/test_nginx.py

# Runs against a real nginx when one is installed (tools/deps).
TESTS += tests/integration/test_nginx.py tests/integration/test_nginx_scale.py
EXTRA_DIST += tests/integration/test_nginx_scale.py bench/nginx-bench
