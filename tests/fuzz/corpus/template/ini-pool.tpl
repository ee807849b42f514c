B0[{{name}}]
listen = /run/php/{{name}}.sock
{{^off}}
pm = dynamic
{{/off}}
