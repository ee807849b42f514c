# The nginx module (issue: nginx module). Filled in by its author.
