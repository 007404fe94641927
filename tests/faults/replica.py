"""`igor serve` for the fault suite, with igor's clocks made short.

FAULTS_TIMINGS (a JSON object, `module.NAME` -> seconds) replaces igor's own timing
constants before it starts: a lease of 2 s instead of 30 bounds a takeover in the
same way, and the suite runs in seconds instead of minutes. FAULTS_ARGS (a JSON list)
are serve's options (`--http 127.0.0.1:PORT`).
"""

from __future__ import annotations

import importlib
import json
import os
import sys


def main() -> int:
    for dotted, value in json.loads(os.environ.get("FAULTS_TIMINGS") or "{}").items():
        module, _, name = dotted.rpartition(".")
        setattr(importlib.import_module(module), name, value)
    from igor_cli.terminal import main as igor

    return igor(["serve", *json.loads(os.environ.get("FAULTS_ARGS") or "[]")])


if __name__ == "__main__":
    sys.exit(main())
