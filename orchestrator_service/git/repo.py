"""Plain git commands on one repository; every ref-changing caller holds the repository's lock.

No user text ever reaches git as an option: positional arguments follow `--` (or `--end-of-options`)
where git takes them, refs are passed fully qualified (`refs/heads/...`), and callers check names
first (orchestrator_service/paths.py, `check_branch`). Only plain transports are allowed (no `ext::`).

Git runs nothing a repository or an agent configured. Agents' worktrees share their clone's config
(and an agent's own clone is all its own), so every command goes through `git()`, which ignores the
system and global config, sets everything in `HARDENED_CONFIG` on the command line (where it outranks
the repository's config), and overrides every filter and merge driver the repository's config
defines by name (`filter.<name>.*`, `merge.<name>.*`): read just before the command, with
`git config --list`, which runs nothing. Diffs, logs and shows never run an external
diff or a textconv (`--no-ext-diff --no-textconv`), so a diff is the commits' own; fetches and
pushes run git's own upload-pack and receive-pack, whatever a remote's config names.
A config git cannot be told to ignore (`core.worktree`, url rewriting for a network command) is
refused. What the orchestrator itself needs (its identity, no signing) is set here too, never read.
The config's names are read again whenever one of the repository's config files may have changed
since they were last read (`ConfigNames`: each file's inode, size, mtime and ctime, the last of
which no write can keep; a file written too recently to tell, or a config that includes other
files, is read every time): half of the orchestrator's git processes were these reads. One that
changes between that read and the command (an agent still running, writing it) is outside what
this guards; the sandbox keeps the orchestrator's clones out of an agent's reach.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Set on every command; a setting given to git this way outranks the repository's own config.
HARDENED_CONFIG: tuple[tuple[str, str], ...] = (
    ("user.name", "cw"),
    ("user.email", "cw@localhost"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("push.gpgSign", "false"),
    ("merge.verifySignatures", "false"),
    ("log.showSignature", "false"),
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.attributesFile", os.devnull),
    ("core.askPass", ""),
    ("credential.helper", ""),
    ("core.useReplaceRefs", "false"),
    ("advice.graftFileDeprecated", "false"),
    ("core.autocrlf", "false"),
    ("core.safecrlf", "false"),
    ("core.quotePath", "true"),
    ("core.abbrev", "auto"),
    ("protocol.ext.allow", "never"),
    ("merge.default", "text"),
    ("merge.renormalize", "false"),
    ("merge.stat", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("push.recurseSubmodules", "no"),
    ("submodule.recurse", "false"),
    ("color.ui", "false"),
    ("color.diff", "false"),
    ("diff.noprefix", "false"),
    ("diff.mnemonicPrefix", "false"),
    ("diff.relative", "false"),
    ("diff.context", "3"),
    ("diff.interHunkContext", "0"),
    ("diff.algorithm", "myers"),
    ("diff.indentHeuristic", "true"),
    ("diff.suppressBlankEmpty", "false"),
    ("diff.orderFile", os.devnull),
    ("diff.submodule", "short"),
    ("diff.ignoreSubmodules", "none"),
)
# A repository's filter or merge driver of this name gets these values instead of its own.
DRIVER_OVERRIDES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "filter": (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")),
    # git's own three-way merge of the file, conflict markers and all (exit status: the conflicts).
    "merge": (("driver", "git merge-file -L ours -L base -L theirs -- %A %O %B"),),
}
# Options every run of a subcommand gets: diffs never through an external diff or a textconv, never
# in colour; the remote side always git's own (a repository's `remote.<name>.uploadpack` or
# `receivepack` is read first-wins, so only the command line outranks it).
_FORCED_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "diff": ("--no-ext-diff", "--no-textconv", "--no-color"),
    "log": ("--no-ext-diff", "--no-textconv", "--no-color"),
    "show": ("--no-ext-diff", "--no-textconv", "--no-color"),
    "clone": ("--upload-pack=git-upload-pack",),
    "fetch": ("--upload-pack=git-upload-pack",),
    "pull": ("--upload-pack=git-upload-pack",),
    "ls-remote": ("--upload-pack=git-upload-pack",),
    "push": ("--receive-pack=git-receive-pack",),
}
_NETWORK = frozenset({"clone", "fetch", "pull", "push", "ls-remote"})
# Subcommands that make a repository: `cwd` is where it goes, and whatever repository encloses
# `cwd` is none of theirs (nor is its config).
_CREATING = frozenset({"clone", "init"})
# Settings git cannot be told to ignore: refused rather than obeyed.
_REFUSED = re.compile(r"core\.worktree")
_REFUSED_FOR_NETWORK = re.compile(r"url\..*\.(insteadof|pushinsteadof)|remote\..*\.(vcs|pushurl)")
# Inherited variables that redirect git (GIT_DIR, GIT_EXTERNAL_DIFF, GIT_CONFIG_*...) are dropped;
# these are the operator's own choice of how to reach remotes.
_KEPT_ENVIRONMENT = frozenset({"GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_PROXY_COMMAND"})
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,255}")


class GitError(RuntimeError):
    pass


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def hardened_environment(config: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """The orchestrator's environment without git's variables, with the system and global config
    ignored, and `HARDENED_CONFIG` plus `config` given as command-line settings (GIT_CONFIG_COUNT:
    keys and values apart, so no name in a repository's config can split into another setting)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_") or key in _KEPT_ENVIRONMENT}
    ssh = shlex.quote(env["GIT_SSH"]) if "GIT_SSH" in env else "ssh"
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ATTR_NOSYSTEM="1",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_GRAFT_FILE=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_EDITOR="true",
        GIT_SEQUENCE_EDITOR="true",
        GIT_PAGER="cat",
        GIT_ALLOW_PROTOCOL="file:git:http:https:ssh",
        LC_ALL="C",
    )
    # Outrank core.sshCommand and core.gitProxy (an empty proxy command is none).
    env.setdefault("GIT_SSH_COMMAND", ssh)
    env.setdefault("GIT_PROXY_COMMAND", "")
    settings = [*HARDENED_CONFIG, *config]
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def overrides_for(names: Iterable[str], subcommand: str) -> list[tuple[str, str]]:
    """Pure: the settings that neutralise what the configured `names` (as `git config --list
    --name-only` prints them) could run; GitError for a setting that cannot be neutralised."""
    overrides: dict[tuple[str, str], None] = {}
    for name in names:
        lowered = name.lower()
        if _REFUSED.fullmatch(lowered) or (subcommand in _NETWORK and _REFUSED_FOR_NETWORK.fullmatch(lowered)):
            raise GitError(f"the repository's config sets {name[:80]!r}, which cw does not follow")
        section, _, rest = name.partition(".")
        driver, dot, _key = rest.rpartition(".")
        if dot and section.lower() in DRIVER_OVERRIDES:
            for key, value in DRIVER_OVERRIDES[section.lower()]:
                overrides[(f"{section.lower()}.{driver}.{key}", value)] = None
    return list(overrides)


def _subcommand(args: tuple[str, ...]) -> int:
    """Where the subcommand is among `args` (after global options such as --literal-pathspecs)."""
    return next((index for index, arg in enumerate(args) if not arg.startswith("-")), len(args))


def _list_configured_names(cwd: Path) -> list[str]:
    listing = subprocess.run(
        ["git", "config", "--list", "--name-only", "-z"],
        cwd=cwd,
        capture_output=True,
        env=hardened_environment(),
        check=False,
    )
    if listing.returncode != 0:
        raise GitError(f"git config failed: {listing.stderr.decode(errors='replace').strip()}")
    return [name.decode(errors="replace") for name in listing.stdout.split(b"\0") if name]


# A config file written less than this long before its names were read may change again within
# the same tick of the filesystem's clock, leaving its stat as it was: such a read is not kept.
RACY_SECONDS = 0.1
# Repositories whose config names are kept at once (a task's repository goes with its task).
CONFIG_NAMES_KEPT = 4096
# A file's identity and state: (inode, size, mtime, ctime) in nanoseconds; None when missing.
FileState = tuple[int, int, int, int] | None


def _file_state(path: Path) -> FileState:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def config_files(cwd: Path) -> list[Path] | None:
    """The files git reads the repository's own config from when run in `cwd` (system and global
    config are ignored: `hardened_environment`), the repository's config first, when that is plain
    to tell: `cwd` holds a repository's `.git` with its HEAD and config (a directory, or a
    worktree's `gitdir:` file; a `.git` git would not take is passed over for a parent's, whose
    config no state here follows). None otherwise."""
    dot_git = cwd / ".git"
    if dot_git.is_symlink():
        return None
    if dot_git.is_dir():
        if (dot_git / "commondir").exists() or not (dot_git / "HEAD").is_file():
            return None
        found = [dot_git / "config", dot_git / "config.worktree"]
    else:
        try:
            pointer = dot_git.read_text()[:4096]
            admin = (cwd / pointer.removeprefix("gitdir: ").strip()).resolve()
            common = (admin / (admin / "commondir").read_text()[:4096].strip()).resolve()
        except OSError:
            return None
        if not pointer.startswith("gitdir: ") or not (admin / "HEAD").is_file():
            return None
        found = [common / "config", admin / "config.worktree", dot_git]
    return found if found[0].is_file() else None


def unchanged_since_read(
    before: list[FileState], after: list[FileState], read_at_ns: int, racy_seconds: float = RACY_SECONDS
) -> bool:
    """Pure: whether names read between two looks at the config files stand for them as they are
    while their states stay `after`: nothing changed during the read, and no file was written so
    shortly before it that a later write could leave the same state."""
    if before != after:
        return False
    racy = read_at_ns - int(racy_seconds * 1e9)
    return all(state is None or (state[2] < racy and state[3] < racy) for state in after)


def includes_others(names: list[str]) -> bool:
    """An `include.path` or `includeIf.*.path` reads files whose changes no state here shows."""
    return any(name.lower().startswith(("include.", "includeif.")) for name in names)


class ConfigNames:
    """The names a repository's config sets (`git config --list --name-only`), read once and kept
    while none of its config files changes: the read is a git process of its own."""

    def __init__(self, racy_seconds: float = RACY_SECONDS) -> None:
        self.racy_seconds = racy_seconds
        self._kept: dict[str, tuple[list[FileState], list[str]]] = {}
        self._guard = threading.Lock()

    def kept(self, cwd: Path) -> bool:
        """Whether names of `cwd` are kept (tests)."""
        with self._guard:
            return str(cwd) in self._kept

    def of(self, cwd: Path) -> list[str]:
        files = config_files(cwd)
        if files is None:
            return _list_configured_names(cwd)
        key = str(cwd)
        states = [_file_state(path) for path in files]
        with self._guard:
            kept = self._kept.get(key)
        if kept is not None and kept[0] == states:
            return list(kept[1])
        read_at = time.time_ns()
        names = _list_configured_names(cwd)
        after = [_file_state(path) for path in files]
        if unchanged_since_read(states, after, read_at, self.racy_seconds) and not includes_others(names):
            with self._guard:
                if len(self._kept) >= CONFIG_NAMES_KEPT:
                    self._kept.clear()
                self._kept[key] = (after, names)
        return names


CONFIG_NAMES = ConfigNames()


def git(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> GitResult:
    """Runs `git args...` in `cwd` with nothing the repository configured able to run a program
    (see the module's docstring); the one way the orchestrator runs git. `env`: variables the
    orchestrator adds for this command only (a checkpoint's own index file)."""
    at = _subcommand(args)
    subcommand = args[at] if at < len(args) else ""
    args = (*args[: at + 1], *_FORCED_OPTIONS.get(subcommand, ()), *args[at + 1 :])
    names = [] if subcommand in _CREATING else CONFIG_NAMES.of(cwd)
    hardened = {**hardened_environment(overrides_for(names, subcommand)), **(env or {})}
    completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=hardened, check=False)
    result = GitResult(completed.returncode, completed.stdout, completed.stderr)
    if check and completed.returncode != 0:
        raise GitError(f"git {subcommand or args[0]} failed: {completed.stderr.strip()}")
    return result


def check_branch(name: str) -> str:
    """A branch name taken from data: a plain, valid git branch name that cannot read as an option."""
    valid = (
        _BRANCH.fullmatch(name)
        and not name.startswith(("-", "/", "refs/"))
        and not name.endswith(("/", ".lock", "."))
        and ".." not in name
        and "//" not in name
        and "/." not in name
        and name != "HEAD"
    )
    if not valid:
        raise GitError(f"{name!r} is not a branch name cw uses")
    return name


def head_ref(branch: str) -> str:
    return f"refs/heads/{check_branch(branch)}"


_locks: defaultdict[str, threading.RLock] = defaultdict(threading.RLock)
_locks_guard = threading.Lock()


def repository_lock(path: Path) -> threading.RLock:
    """One lock per repository for commands that change refs, the index or worktrees."""
    with _locks_guard:
        return _locks[str(path.resolve())]
