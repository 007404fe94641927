"""The simulator's endpoints, one module per part of Cloud 66's API docs.

Each module registers its routes with `routes.endpoint` (method, path, the docs'
scope, the kind of object answered, and the sources of a new kind's fields) next
to what answers them. Every module here is found and imported by `routes.py` when
the simulator first routes a request: a new endpoint is a module here, or a
function in one, and nothing else.
"""
