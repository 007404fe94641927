"""igor's commands, one module per family: each holds its commands' typer functions,
their requests, actions, outcomes with their words, and a change's question.

A family declares its commands on one line, `COMMANDS = {name: (aliases, ...)}`,
which `cli.index` reads from the source: a new module here is a new family, found
without being listed anywhere, and imported only when one of its commands is
parsed. `ORDER` is only the order `igor -h` lists the families in; one not named
there comes after them.
"""

ORDER = ("stacks", "deploy", "cancel", "watch", "history", "releases", "locks", "about", "setup")
