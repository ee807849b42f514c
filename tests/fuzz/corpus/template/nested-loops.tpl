E0{{#nums}}{{#nums}}{{#aliases}}{{.}}{{name}}{{/aliases}}{{/nums}}{{/nums}}
