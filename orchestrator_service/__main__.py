"""`python -m orchestrator_service` / `cw-orchestrator`: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from orchestrator_service import server
from orchestrator_service.agents import sandbox
from orchestrator_service.agents.providers import provider_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    home = Path(os.environ.get("CW_HOME", ".cw"))
    parser = argparse.ArgumentParser(prog="cw-orchestrator", description="The cw orchestrator service.")
    parser.add_argument("--store", default="127.0.0.1:50051", help="the store's HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:50052", help="HOST:PORT to serve on (port 0: any)")
    parser.add_argument("--workspace", type=Path, default=home / "workspace", help="clones and agent directories")
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="an agent command; split like a shell would, never run through one (repeatable)",
    )
    parser.add_argument("--default-provider", default="claude")
    parser.add_argument("--max-agents", type=int, default=4)
    parser.add_argument(
        sandbox.FLAG,
        action="store_true",
        help="the agents run in a sandbox: run Claude Code with IS_SANDBOX=1, which it needs as root",
    )
    parser.add_argument("--log-level", default=os.environ.get("CW_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    try:
        args.providers = provider_table(args.provider, args.agents_in_sandbox)
    except ValueError as error:
        parser.error(str(error))
    if args.default_provider not in args.providers:
        parser.error(f"--default-provider {args.default_provider!r} is not a known provider")
    if args.max_agents < 1:
        parser.error("--max-agents must be at least 1")
    refusal = sandbox.startup_refusal(args.default_provider, sandbox.running_as_root(), args.agents_in_sandbox)
    if refusal:
        parser.exit(2, f"cw-orchestrator: {refusal}\n")
    return args


async def serve(args: argparse.Namespace) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    config = server.Config(
        args.store, args.listen, args.workspace, args.providers, args.default_provider, args.max_agents
    )
    starting = asyncio.create_task(server.start(config))
    await asyncio.wait([starting, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        return
    running = starting.result()
    await stopping.wait()
    logging.getLogger("cw.orchestrator").info("cw orchestrator shutting down")
    await running.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
