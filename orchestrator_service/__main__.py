"""`python -m orchestrator_service` / `cw-orchestrator`: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from cw_edge import listen
from orchestrator_service import server
from orchestrator_service.agents import sandbox, usage
from orchestrator_service.agents.providers import DEFAULT_CLAUDE_MAX_RETRIES, provider_table
from orchestrator_service.cluster import policy
from orchestrator_service.controllers.agent_runs import output
from orchestrator_service.git import checkpoints
from orchestrator_service.outcomes import DEFAULT_RETRY_DELAYS

MIN_LEASE_TTL = 0.5


def shared_remotes(value: str) -> str:
    """`--shared-remotes`: a directory (made absolute), or the URL under which the repositories are."""
    if not value:
        return ""
    if value.startswith("-"):
        raise ValueError("--shared-remotes must not start with '-'")
    return value if "://" in value else str(Path(value).expanduser().resolve())


def retry_delays(value: str) -> tuple[float, ...]:
    """An argparse type: `--retry-delays 5,30,120`, seconds, none negative."""
    try:
        delays = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants seconds separated by commas, got {value!r}") from None
    if any(delay < 0 for delay in delays):
        raise argparse.ArgumentTypeError("must not be negative")
    return delays


def non_negative(value: str) -> int:
    """An argparse type: a count that may be zero."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {number}")
    return number


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """The agents' sandbox (agents/sandbox.py; README, \"What an agent can and cannot do\")."""
    parser.add_argument(
        sandbox.FLAG,
        action="store_true",
        help="the agents run in a sandbox: run Claude Code with IS_SANDBOX=1, which it needs as root",
    )
    parser.add_argument(
        sandbox.PATH_FLAG,
        action="append",
        default=[],
        metavar="PATH[:ro|:rw]",
        help="more of the machine for every agent: read-only, or writable with a trailing :rw (repeatable)",
    )
    parser.add_argument(
        sandbox.NETWORK_FLAG,
        choices=[network.value for network in sandbox.Network],
        default=sandbox.Network.ON.value,
        help="off: agents get no network at all (a loopback of their own only)",
    )
    parser.add_argument("--agent-max-memory", type=int, default=0, metavar="MIB", help="address space per process")
    parser.add_argument("--agent-max-processes", type=int, default=0, metavar="N", help="see README: not as root")


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
        help="an agent command; split like a shell would, never run through one (repeatable); for a built-in "
        "CLI's name (claude, codex) it only says which program runs",
    )
    parser.add_argument("--default-provider", default="claude")
    parser.add_argument("--max-agents", type=int, default=4)
    parser.add_argument(
        "--retry-delays",
        type=retry_delays,
        default=DEFAULT_RETRY_DELAYS,
        metavar="SECONDS,...",
        help="pauses before the 1st, 2nd, 3rd retry of a failed attempt (default 5,30,120)",
    )
    add_sandbox_arguments(parser)
    parser.add_argument(
        "--claude-max-retries",
        type=non_negative,
        default=DEFAULT_CLAUDE_MAX_RETRIES,
        metavar="N",
        help="how often Claude Code itself retries a refused API request before cw's policy decides",
    )
    parser.add_argument(
        "--name",
        default="",
        help="this orchestrator's name among those sharing the store (default: HOST:WORKSPACE)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long this orchestrator's lease outlives its last renewal (renewed every third of it)",
    )
    parser.add_argument(
        "--shared-remotes",
        default="",
        metavar="DIR|URL",
        help="where projects without a shared remote get one: DIR/<project id>.git (made on first use)",
    )
    parser.add_argument(
        "--max-output-bytes",
        type=int,
        default=output.DEFAULT_MAX_OUTPUT_BYTES,
        metavar="BYTES",
        help="what the store keeps of one run's output: its first and its last half of BYTES (default 16 MiB)",
    )
    parser.add_argument(
        "--checkpoint-max-file-bytes",
        type=int,
        default=checkpoints.DEFAULT_MAX_FILE_BYTES,
        metavar="BYTES",
        help="files a run leaves uncommitted over this size stay out of its checkpoint, listed in its reason",
    )
    parser.add_argument(
        "--agent-max-worktree-bytes",
        type=int,
        default=checkpoints.DEFAULT_MAX_WORKTREE_BYTES,
        metavar="BYTES",
        help="a run's worktree holding more than this when it settles is said in its task's reason (default 2 GiB)",
    )
    parser.add_argument(
        "--agent-email-domain",
        default=checkpoints.DEFAULT_EMAIL_DOMAIN,
        metavar="DOMAIN",
        help="agents commit as NAME <NAME@DOMAIN> (GIT_AUTHOR_*, GIT_COMMITTER_*)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help='for CLIs that report no cost: JSON {"MODEL": {"input": USD, "output": USD, "cache_read": USD,'
        ' "cache_write": USD}}, USD per million tokens',
    )
    parser.add_argument("--log-level", default=os.environ.get("CW_LOG_LEVEL", "INFO"))
    listen.add_arguments(parser)
    parser.add_argument("--store-tls-ca", type=Path, default=None, help="PEM CA of the store's TLS certificate")
    args = parser.parse_args(argv)
    listen.from_arguments(args, parser.prog)
    try:
        args.providers = provider_table(args.provider, args.agents_in_sandbox, Path.cwd(), args.claude_max_retries)
    except ValueError as error:
        parser.error(str(error))
    if args.default_provider not in args.providers:
        parser.error(f"--default-provider {args.default_provider!r} is not a known provider")
    _check_run_settings(parser, args)
    if args.lease_ttl < MIN_LEASE_TTL:
        parser.error(f"--lease-ttl must be at least {MIN_LEASE_TTL:g} seconds")
    try:
        args.name = policy.check_name(args.name) if args.name else ""
        args.shared_remotes = shared_remotes(args.shared_remotes)
    except ValueError as error:
        parser.error(str(error))
    check_sandbox(parser, args, home)
    return args


def check_sandbox(parser: argparse.ArgumentParser, args: argparse.Namespace, home: Path) -> None:
    """`args.sandbox`; the one line the orchestrator stops with where agents cannot run as asked."""
    try:
        args.sandbox = sandbox_policy(args, home)
    except ValueError as error:
        parser.error(str(error))
    is_root = sandbox.agent_is_root(args.sandbox)
    refusal = sandbox.startup_refusal(args.default_provider, is_root, args.agents_in_sandbox)
    refusal = refusal or sandbox.sandbox_refusal(args.sandbox, args.sandbox.enabled and sandbox.cannot_sandbox())
    if refusal:
        parser.exit(2, f"cw-orchestrator: {refusal}\n")


def sandbox_policy(args: argparse.Namespace, home: Path) -> sandbox.SandboxPolicy:
    """cw's sandbox, unless --agents-in-sandbox; cw's home, its workspace and its tokens stay
    hidden even under an --agent-path that holds them."""
    hidden = tuple(path.expanduser().absolute() for path in (home, args.workspace, args.auth_dir))
    paths = tuple(sandbox.parse_agent_path(spec) for spec in args.agent_path)
    paths += sandbox.provider_files(args.providers.values(), paths)
    missing = [str(extra.path) for extra in paths if not extra.path.exists()]
    if missing:  # bwrap could not start a single agent with them
        raise ValueError(f"{sandbox.PATH_FLAG}: no such path: {', '.join(missing)}")
    return sandbox.SandboxPolicy(
        enabled=not args.agents_in_sandbox,
        network=sandbox.Network(args.agent_network),
        paths=paths,
        hidden=hidden,
        max_memory_bytes=args.agent_max_memory * 1024 * 1024 or None,
        max_processes=args.agent_max_processes or None,
    )


def _check_run_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What runs are given and kept: output, prices, slots, checkpoints, identities."""
    if args.max_output_bytes < output.MIN_MAX_OUTPUT_BYTES:
        parser.error(f"--max-output-bytes must be at least {output.MIN_MAX_OUTPUT_BYTES}")
    try:
        args.prices = usage.parse_prices(args.prices.read_text()) if args.prices else {}
    except (OSError, ValueError) as error:
        parser.error(f"--prices: {error}")
    if args.max_agents < 1:
        parser.error("--max-agents must be at least 1")
    if args.checkpoint_max_file_bytes < 0 or args.agent_max_worktree_bytes < 0:
        parser.error("--checkpoint-max-file-bytes and --agent-max-worktree-bytes must not be negative")
    try:
        checkpoints.check_email_domain(args.agent_email_domain)
    except ValueError as error:
        parser.error(f"--agent-email-domain: {error}")


async def serve(args: argparse.Namespace) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    config = server.Config(
        args.store,
        args.listen,
        args.workspace,
        args.providers,
        args.default_provider,
        args.max_agents,
        args.retry_delays,
        agents_in_sandbox=args.agents_in_sandbox,
        sandbox=args.sandbox,
        auth_dir=args.auth_dir,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
        store_tls_ca=args.store_tls_ca,
        name=args.name,
        lease_ttl=args.lease_ttl,
        shared_remotes=args.shared_remotes,
        max_output_bytes=args.max_output_bytes,
        checkpoint_max_file_bytes=args.checkpoint_max_file_bytes,
        max_worktree_bytes=args.agent_max_worktree_bytes,
        agent_email_domain=args.agent_email_domain,
        prices=args.prices,
    )
    starting = asyncio.create_task(server.start(config))
    await asyncio.wait([starting, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        return
    running = starting.result()  # raises CannotStart: main() says it in one line
    await stopping.wait()
    logging.getLogger("cw.orchestrator").info("cw orchestrator shutting down")
    await running.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A built-in CLI nobody named (the default, or a --provider) is not installed on most machines.
    named = {spec.partition("=")[0].strip() for spec in args.provider} | {args.default_provider}
    for provider in (provider for name, provider in args.providers.items() if name in named):
        missing = provider.missing_program()
        if missing:  # not fatal: its tasks wait, with this reason, until the program is there
            logging.getLogger("cw.orchestrator").warning("%s; tasks that need it will wait", missing)
    try:
        asyncio.run(serve(args))
    except server.CannotStart as error:
        print(f"cw-orchestrator: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
