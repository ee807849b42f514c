E0{{! comment
}}
{{#nested}}
{{#list}}
{{x}}{{^y}}-{{/y}}
{{/list}}
{{a.b.c}}
{{/nested}}
{{#matrix}}{{#.}}{{.}},{{/.}}{{/matrix}}
{{#empty}}x{{/empty}}{{^arr}}none{{/arr}}{{#obj}}o{{/obj}}{{#fzero}}f{{/fzero}}{{#zero}}z{{/zero}}
