{{! http-level rate-limit zones, rendered by the jabali nginx module. }}
{{#zones}}
limit_req_zone $binary_remote_addr zone={{name}}:{{size_mb}}m rate={{rate}}r/s;
{{/zones}}
