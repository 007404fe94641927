"""The benchmarks' floors print what igor prints (issue 27: a floor that does less work
flatters nothing, one that prints other bytes measures something else)."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks import floors
from benchmarks.__main__ import _rows
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator


def run(command: list[str], env: dict[str, str]) -> bytes:
    done = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_all_pages_floor_prints_igors_json_byte_for_byte() -> None:
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(95)  # four pages, the last one short
        sim.start_foreign_deployment("app-0007", "production")  # a busy one
        env = {**os.environ, "IGOR_API_URL": sim.url, "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN}
        ours = run([sys.executable, "-m", "igor_cli", "list", "--json"], env)
        floor = run([sys.executable, "-c", floors.ALL_PAGES_JSON, sim.url, SANDBOX_TOKEN], env)
        assert ours.count(b'"uid"') == 95
        assert b'"busy":true' in ours
        assert floor == ours
        assert sim.count("GET", "/stacks") == 2 * 4


def test_the_urllib_and_requests_floors_print_igors_rows() -> None:
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(30)
        env = {**os.environ, "IGOR_API_URL": sim.url, "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN}
        ours = _rows([sys.executable, "-m", "igor_cli", "list"], env)
        assert len(ours) == 31
        for script in (floors.URLLIB_LIST, floors.REQUESTS_LIST):
            assert _rows([sys.executable, "-c", script, sim.url, SANDBOX_TOKEN], env) == ours
