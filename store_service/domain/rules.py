"""Rules on the names the orchestrator turns into paths and git arguments, checked when written.

A project's name becomes a directory (`<workdir>/<project name>/`), its url and branches reach git
on a command line, an initiative's branch is created in every project clone. So a name is one safe
path component, a url never reads as an option and a local path is absolute and normalised (one
repository, one row), and branches are valid git names outside git's and cw's reserved ones.
Pure functions: each returns the problem in words, or None.
"""

from __future__ import annotations

import posixpath
import re

# What `git check-ref-format --branch` refuses, in one expression.
_BAD_BRANCH = re.compile(
    r"(^[-/.])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(/\.)|(//)|(@\{)|([/.]$)|(\.lock(/|$))|(^@$)|(^HEAD$)"
)
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_OPTION = re.compile(r"(://|@)-")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# `transport::address` makes git run a remote helper named by the url.
_REMOTE_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
URL_SCHEMES = frozenset({"file", "git", "http", "https", "ssh", "git+ssh", "ssh+git"})
# Branches an initiative may not take (nor a name beside or under them, which git cannot hold
# next to them): git's own, the usual default branches, and cw's namespaces for phases and tasks.
RESERVED_BRANCHES = ("HEAD", "main", "master", "refs", "cw-task", "cw-phase")


def branches_collide(first: str, second: str) -> bool:
    """git cannot hold both `a/b` and `a/b/c`, nor the same branch twice."""
    return first == second or first.startswith(f"{second}/") or second.startswith(f"{first}/")


def branch_problem(branch: str) -> str | None:
    if _BAD_BRANCH.search(branch):
        return f"{branch[:100]!r} is not a valid git branch name"
    return None


def initiative_branch_problem(branch: str, project_branches: list[str]) -> str | None:
    """An initiative's branch must not be one cw or git uses otherwise, nor any project's default
    branch (cw delivers initiative branches into the projects' own repositories)."""
    problem = branch_problem(branch)
    if problem is not None:
        return problem
    for reserved in RESERVED_BRANCHES:
        if branches_collide(branch, reserved):
            return f"{branch[:100]!r} is reserved: an initiative branch cannot be or lie beside {reserved!r}"
    for default in project_branches:
        if branches_collide(branch, default):
            return f"{branch[:100]!r} collides with the default branch {default[:100]!r} of a project"
    return None


def project_name_problem(name: str) -> str | None:
    if not _PROJECT_NAME.fullmatch(name) or ".." in name:
        return (
            "must be one path component of letters, digits, '.', '_' and '-', "
            "not starting with '.' or '-' and without '..'"
        )
    return None


def project_url(url: str) -> str:
    """The url as stored: a local path absolute and normalised (`/srv/app/` is `/srv/app`), a
    file:// url's path likewise. Raises ValueError saying what is wrong with it."""
    if _CONTROL.search(url):
        raise ValueError("must not contain control characters")
    if url.startswith("-") or _HOST_OPTION.search(url):
        raise ValueError("must not start with '-', nor its host (git or ssh would read it as an option)")
    if _REMOTE_HELPER.match(url):
        raise ValueError("remote-helper urls ('transport::address') are not accepted")
    scheme = _SCHEME.match(url)
    if scheme is not None:
        if scheme.group(1).lower() not in URL_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(sorted(URL_SCHEMES))}")
        path = url[scheme.end() :]
        return f"{url[: scheme.end()]}{_normal_path(path)}" if scheme.group(1) == "file" and path else url
    if ":" in url.split("/", 1)[0]:
        return url  # scp-like `host:path`, which git reaches over ssh
    if not url.startswith("/"):
        raise ValueError("a local path must be absolute")
    return _normal_path(url)


def _normal_path(path: str) -> str:
    if not path.startswith("/"):
        return path
    return "/" + posixpath.normpath(path).lstrip("/")


# ---- providers: the names a task or initiative chooses, and an account's cap ----------

# An initiative names at most this many providers to fall back to, in order.
MAX_FALLBACK_PROVIDERS = 16
# An account's cap on live agents: above any orchestrator's --max-agents, below int32's end.
MAX_CONCURRENT_AGENTS_CAP = 100_000
_WHITESPACE = re.compile(r"\s")


def provider_name_problem(name: str) -> str | None:
    """A provider's name as the orchestrator knows it (`claude`, or `--provider NAME=...`): one
    word, no control characters (its length is `limits.py`'s, as for every name)."""
    if not name:
        return "must not be empty"
    if _WHITESPACE.search(name) or _CONTROL.search(name):
        return f"{name[:100]!r} is no provider name: no spaces or control characters"
    return None


def fallback_providers_problems(names: list[str]) -> list[tuple[int | None, str]]:
    """(index of the name, problem) for each bad name, (None, problem) for the list as a whole:
    at most MAX_FALLBACK_PROVIDERS names, each a provider name, none twice."""
    found: list[tuple[int | None, str]] = []
    if len(names) > MAX_FALLBACK_PROVIDERS:
        found.append((None, f"holds {len(names)} providers; at most {MAX_FALLBACK_PROVIDERS}"))
    seen: set[str] = set()
    for index, name in enumerate(names):
        problem = provider_name_problem(name)
        if problem is None and name in seen:
            problem = f"{name[:100]!r} is named twice"
        if problem is not None:
            found.append((index, problem))
        seen.add(name)
    return found


def max_concurrent_agents_problem(cap: int) -> str | None:
    if not 0 <= cap <= MAX_CONCURRENT_AGENTS_CAP:
        return f"must lie in 0..{MAX_CONCURRENT_AGENTS_CAP} (0: no cap)"
    return None
