A0server {
    server_name {{name}}{{#aliases}} {{.}}{{/aliases}};
    listen {{port}}{{#ssl}} ssl{{/ssl}};
}
