{{! The vhost of one domain, rendered by the jabali nginx module.
    Every value passes the nginx context: no blanks, quotes, ';', braces,
    '$', '#' or backslash can reach this file through a parameter.
    An administrator overrides this file by putting a copy into the
    template_override_dir setting's directory (default
    /etc/jabali/nginx/templates). }}
{{#cache}}
fastcgi_cache_path {{cache_path}} levels=1:2 keys_zone={{cache_zone}}:10m max_size=256m inactive=60m use_temp_path=off;
{{/cache}}
{{#redirect_www}}
server {
        listen {{http_listen}};
{{#ssl}}
        listen {{https_listen}} ssl;
        ssl_certificate {{ssl.cert}};
        ssl_certificate_key {{ssl.key}};
{{/ssl}}
        server_name {{www_name}};
        location ^~ /.well-known/acme-challenge/ {
                root {{root}};
                try_files $uri =404;
        }
        location / {
                return 301 $scheme://{{domain}}{{#ports_custom}}:$server_port{{/ports_custom}}$request_uri;
        }
}
{{/redirect_www}}
server {
        listen {{http_listen}};
{{#ssl}}
        listen {{https_listen}} ssl;
        ssl_certificate {{ssl.cert}};
        ssl_certificate_key {{ssl.key}};
        ssl_protocols TLSv1.2 TLSv1.3;
{{/ssl}}
        server_name {{domain}}{{#aliases}} {{.}}{{/aliases}};
        root {{root}};
        index {{#php}}index.php {{/php}}index.html index.htm;
        disable_symlinks if_not_owner from=$document_root;
{{#limit_req}}
        limit_req zone={{zone}} burst={{burst}} nodelay;
{{/limit_req}}

        location ^~ /.well-known/acme-challenge/ {
                try_files $uri =404;
        }
        location / {
{{#force_https}}
                if ($scheme = http) {
                        return 301 https://$host{{#https_port_custom}}:{{https_port}}{{/https_port_custom}}$request_uri;
                }
{{/force_https}}
                try_files $uri $uri/ {{#php}}/index.php?$args{{/php}}{{^php}}=404{{/php}};
        }
{{#php}}
        location ~ \.php$ {
{{#force_https}}
                if ($scheme = http) {
                        return 301 https://$host{{#https_port_custom}}:{{https_port}}{{/https_port_custom}}$request_uri;
                }
{{/force_https}}
                try_files $uri =404;
                include {{fastcgi_conf}};
                fastcgi_pass unix:{{php_socket}};
{{#cache}}
                fastcgi_cache {{cache_zone}};
                fastcgi_cache_key $scheme$request_method$host$request_uri;
                fastcgi_cache_valid 200 301 302 10m;
                fastcgi_cache_bypass $cookie_PHPSESSID $http_authorization;
                fastcgi_no_cache $cookie_PHPSESSID $http_authorization;
{{/cache}}
        }
{{/php}}
        location ~ /\.(?!well-known) {
                deny all;
        }
}
