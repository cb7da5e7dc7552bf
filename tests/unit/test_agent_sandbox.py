"""The sandbox's command line (pure) and the control files' handling, on real files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from cw.store.v1 import agent_pb2
from orchestrator_service.agents import control_files, launcher, sandbox
from orchestrator_service.agents.control_files import UnsafeControlFile
from orchestrator_service.agents.providers import Provider
from orchestrator_service.agents.sandbox import AgentPath, Mode, Network, RunMounts, SandboxPolicy
from orchestrator_service.agents.supervisor import AgentFiles

RUN = RunMounts(
    writable=(Path("/ws/agents/a/work"), Path("/ws/agents/a/config"), Path("/ws/agents/a/outbox")),
    readable=(Path("/ws/agents/a/prompt.md"), Path("/ws/repos/p/.git/objects")),
    home=Path("/ws/agents/a/config"),
    cwd=Path("/ws/agents/a/work"),
    passwd=Path("/ws/agents/a/passwd"),
    group=Path("/ws/agents/a/group"),
)


def _pairs(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command) if word == option]


def test_only_a_trailing_ro_or_rw_is_a_mode() -> None:
    assert sandbox.parse_agent_path("/opt/sdk") == AgentPath(Path("/opt/sdk"), Mode.READ_ONLY)
    assert sandbox.parse_agent_path("/cache:rw") == AgentPath(Path("/cache"), Mode.READ_WRITE)
    assert sandbox.parse_agent_path("/data/a:b") == AgentPath(Path("/data/a:b"), Mode.READ_ONLY)
    assert sandbox.parse_agent_path("/data/a:rw:ro") == AgentPath(Path("/data/a:rw"), Mode.READ_ONLY)
    with pytest.raises(ValueError):
        sandbox.parse_agent_path(":rw")


def test_the_run_writes_only_its_own_directories_as_an_ordinary_user() -> None:
    command = sandbox.bwrap_command(SandboxPolicy(), RUN, ["agent", "--flag"], ["--ro-bind", "/usr", "/usr"])
    assert command[0] == "bwrap" and command[-2:] == ["agent", "--flag"]
    assert _pairs(command, "--bind") == [str(path) for path in RUN.writable]
    assert _pairs(command, "--uid") == ["1000"] and "--unshare-all" in command and "--share-net" in command
    assert "--die-with-parent" in command and "--new-session" not in command  # stays in the shim's group
    assert _pairs(command, "--chdir") == [str(RUN.cwd)]
    assert command.index("--remount-ro") > max(i for i, word in enumerate(command) if word == "--bind")


def test_network_off_shares_nothing() -> None:
    command = sandbox.bwrap_command(SandboxPolicy(network=Network.OFF), RUN, ["agent"], [])
    assert "--share-net" not in command and "--unshare-all" in command


def test_cws_home_stays_hidden_under_an_agent_path_that_holds_it() -> None:
    policy = SandboxPolicy(
        paths=(AgentPath(Path("/home/me")), AgentPath(Path("/cache"), Mode.READ_WRITE)),
        hidden=(Path("/home/me/.cw"), Path("/elsewhere/auth")),
    )
    command = sandbox.bwrap_command(policy, RUN, ["agent"], [])
    assert _pairs(command, "--tmpfs").count("/home/me/.cw") == 1 and "/elsewhere/auth" not in command
    hide, home_bind = command.index("/home/me/.cw"), command.index("/home/me")
    assert home_bind < hide < command.index(str(RUN.writable[0]))  # the run's own mounts come after
    assert "/cache" in _pairs(command, "--bind")


def test_limits_wrap_the_agent_in_prlimit() -> None:
    policy = SandboxPolicy(max_memory_bytes=1 << 30, max_processes=64)
    command = sandbox.bwrap_command(policy, RUN, ["agent"], [])
    assert command[-5:] == ["prlimit", f"--as={1 << 30}", "--nproc=64", "--", "agent"]


def test_the_mount_holders_in_the_private_tmp_are_read_only() -> None:
    run = RunMounts(
        (Path("/tmp/t/ws/work"),), (), Path("/tmp/t/ws/config"), Path("/tmp/t/ws/work"), RUN.passwd, RUN.group
    )
    command = sandbox.bwrap_command(SandboxPolicy(), run, ["agent"], [])
    assert "/tmp/t" in _pairs(command, "--tmpfs") and "/tmp/t" in _pairs(command, "--remount-ro")


def test_no_refusal_with_the_persons_sandbox() -> None:
    assert sandbox.sandbox_refusal(SandboxPolicy(enabled=False), "bubblewrap (bwrap) is not installed") is None
    line = sandbox.sandbox_refusal(SandboxPolicy(), "bubblewrap (bwrap) is not installed")
    assert line is not None and "apt-get install bubblewrap" in line and "--agents-in-sandbox" in line


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "signal.json")
    result: list[BaseException] = []

    def read() -> None:
        try:
            control_files.read_text(tmp_path / "signal.json")
        except UnsafeControlFile as error:
            result.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive() and len(result) == 1


def test_symlinks_hard_links_and_oversized_files_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("secret")
    (tmp_path / "link").symlink_to(secret)
    os.link(secret, tmp_path / "hard")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big").write_bytes(b"x" * 101)
    for name in ("link", "hard", "zero"):
        with pytest.raises(UnsafeControlFile):
            control_files.read_bytes(tmp_path / name)
    with pytest.raises(UnsafeControlFile):
        control_files.read_bytes(tmp_path / "big", cap=100)
    assert control_files.read_bytes(tmp_path / "missing") is None
    assert control_files.size(tmp_path / "link") == 0


def test_a_write_replaces_a_symlink_and_never_writes_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "prompt.md").symlink_to(victim)
    control_files.write_private(tmp_path / "prompt.md", "the prompt")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "prompt.md").is_symlink() and (tmp_path / "prompt.md").read_text() == "the prompt"
    assert (tmp_path / "prompt.md").stat().st_mode & 0o777 == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == ["prompt.md", "victim"]


def test_a_control_directory_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "control").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeControlFile):
        control_files.write_private(tmp_path / "control" / "answers.json", "{}")
    assert list((tmp_path / "real").iterdir()) == []


def test_an_inherited_is_sandbox_reaches_no_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IS_SANDBOX", "1")
    agent = agent_pb2.Agent(id="a", name="n", task_id="t", session_id="s")
    for provider in (Provider("mine", ("run",)), Provider("claude", ("claude",))):
        launch = launcher.Launch(agent, AgentFiles(tmp_path), provider, "execute", "prompt")
        assert "IS_SANDBOX" not in launcher.environment(launch)
    claude = Provider("claude", ("claude",), in_sandbox=True)
    assert (
        launcher.environment(launcher.Launch(agent, AgentFiles(tmp_path), claude, "execute", "p"))["IS_SANDBOX"] == "1"
    )


def test_the_files_a_providers_command_names_are_readable_in_the_sandbox(tmp_path: Path) -> None:
    """`--provider mine="python3 my_agent.py"` starts in the sandbox with no --agent-path: the
    script (outside the system directories) is bound read-only; a program on PATH, an option and a
    file under a path already given are not added again."""
    script, given_dir = tmp_path / "my_agent.py", tmp_path / "given"
    script.write_text("print('hi')\n")
    given_dir.mkdir()
    (given_dir / "other.py").write_text("")
    mine = Provider("mine", ("python3", str(script), "--fast"))
    other = Provider("other", ("python3", str(given_dir / "other.py")))
    given = (sandbox.AgentPath(given_dir, sandbox.Mode.READ_ONLY),)
    assert sandbox.provider_files([mine, other], given) == (sandbox.AgentPath(script, sandbox.Mode.READ_ONLY),)
