"""Run the Cloud 66 simulator in the foreground: `python -m igor_cli.sandbox`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from igor_cli.sandbox.requests import SANDBOX_TOKEN


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m igor_cli.sandbox",
        description="A Cloud 66 API v3 simulator on 127.0.0.1 for rehearsing igor.",
    )
    parser.add_argument("--port", type=int, default=8066, help="TCP port (0 picks a free one)")
    parser.add_argument("--state", type=Path, default=None, help="JSON file that keeps the state")
    parser.add_argument(
        "--deploy-seconds", type=float, default=60.0, help="how long a deployment runs"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds to wait before each answer"
    )
    parser.add_argument(
        "--order",
        choices=("newest", "oldest"),
        default="newest",
        help="order of the deployments and actions lists",
    )
    parser.add_argument(
        "--rate-limit", type=int, default=3000, help="requests per token per hour (0: no limit)"
    )
    parser.add_argument(
        "--reset", action="store_true", help="start the state over with the sample account"
    )
    args = parser.parse_args(argv)

    from igor_cli.sandbox.server import Simulator

    sim = Simulator(
        state_path=args.state,
        port=args.port,
        deploy_seconds=args.deploy_seconds,
        order=args.order,
        rate_limit=args.rate_limit if args.rate_limit > 0 else None,
    )
    sim.latency = args.latency
    if args.reset:
        sim.reset()
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    where = f"state in {args.state}" if args.state else "state in memory only"
    print(f"Cloud 66 sandbox listening on {sim.url} ({where})")
    print(f"  export IGOR_API_URL={sim.url} IGOR_CLOUD66_TOKEN={SANDBOX_TOKEN}")
    if sim.recovered is not None:
        print(
            "The state file could not be read (damaged, or an older igor's): "
            f"moved it to {sim.recovered} and started over."
        )
    print("Press Ctrl-C to stop.", flush=True)
    try:
        # A timed wait keeps the main thread responsive to KeyboardInterrupt.
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    print("sandbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
