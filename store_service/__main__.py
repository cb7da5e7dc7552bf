"""`python -m store_service` / `cw-store`: serve the store until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from cw_edge import listen
from cw_edge.ownership import Held
from cw_edge.tokens import cw_home
from store_service import server, startup
from store_service.db.location import SqliteFile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cw-store", description="The cw store service.")
    parser.add_argument(
        "--db",
        default=None,
        help="SQLite file (default $CW_HOME/store.db), or a postgresql://USER:PASSWORD@HOST/DB URL",
    )
    parser.add_argument("--listen", default="127.0.0.1:50051", help="HOST:PORT to serve on (port 0: any)")
    parser.add_argument(
        "--synchronous", default="FULL", choices=["NORMAL", "FULL"], help="SQLite synchronous mode (SQLite only)"
    )
    parser.add_argument("--log-level", default=os.environ.get("CW_LOG_LEVEL", "INFO"))
    listen.add_arguments(parser)
    args = parser.parse_args(argv)
    args.listening = listen.from_arguments(args, parser.prog)
    return args


async def serve(args: argparse.Namespace) -> None:
    location = startup.database_location(args.db) if args.db else SqliteFile(cw_home() / "store.db")
    running = await server.start(location, args.listening, args.synchronous, args.auth_dir)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    logging.getLogger("cw.store").info("cw store shutting down")
    await running.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except (startup.StartupRefused, listen.ListenRefused, Held) as refused:
        sys.exit(f"cw-store: {refused}")


if __name__ == "__main__":
    main()
