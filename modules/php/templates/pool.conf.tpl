{{! One account's PHP-FPM pool, rendered by the jabali php module.
    Every value passes the INI context: no newline, '"', ';' or "${" can
    reach this file through a parameter. An administrator overrides this
    file by putting a copy into the template_override_dir setting's
    directory (default /etc/jabali/php/templates). The module refuses
    php_admin_values that name what is set below it (open_basedir, the
    temporary directories, memory_limit, the upload sizes). }}
[{{pool}}]
user = {{user}}
group = {{group}}
listen = {{socket}}
listen.owner = {{listen_owner}}
listen.group = {{listen_group}}
listen.mode = 0660
pm = {{pm}}
pm.max_children = {{max_children}}
{{#dynamic}}
pm.start_servers = {{start_servers}}
pm.min_spare_servers = {{min_spare}}
pm.max_spare_servers = {{max_spare}}
{{/dynamic}}
{{#ondemand}}
pm.process_idle_timeout = {{process_idle_timeout}}s
{{/ondemand}}
pm.max_requests = {{max_requests}}
request_terminate_timeout = {{request_terminate_timeout}}
chdir = /
env[TMPDIR] = {{tmp}}
{{#admin_values}}
php_admin_value[{{name}}] = {{value}}
{{/admin_values}}
php_admin_value[open_basedir] = {{open_basedir}}
php_admin_value[memory_limit] = {{memory_limit}}
php_admin_value[upload_max_filesize] = {{upload_max_filesize}}
php_admin_value[post_max_size] = {{upload_max_filesize}}
php_admin_value[upload_tmp_dir] = {{tmp}}
php_admin_value[sys_temp_dir] = {{tmp}}
php_admin_value[session.save_path] = {{tmp}}
