"""Review comments name their project: review_comments.project_id, and file_path relative to that
project's worktree.

Before, a comment's path carried a `PROJECT/` prefix only when the phase's diff held several
projects, and readers stripped `PROJECT/` from every path, so a file whose own path starts with the
project's name (`inflection/__init__.py` in project `inflection`) lost its comments. The upgrade
gives each stored comment its project: the initiative's only project, path unchanged; with several
projects, the one whose `NAME/` starts the path (then removed; the longest name wins); none when no
name matches (project_id stays NULL and readers match the path in any project, as before). The
downgrade puts the prefix back on comments of initiatives with several projects.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_review_comments_project_id_projects"


def _projects_by_initiative(connection: sa.Connection) -> dict[str, list[tuple[str, str]]]:
    rows = connection.execute(
        sa.text(
            "SELECT ip.initiative_id, p.id, p.name FROM initiative_projects ip JOIN projects p ON p.id = ip.project_id"
        )
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for initiative_id, project_id, name in rows:
        found.setdefault(initiative_id, []).append((project_id, name))
    return found


def _comments(connection: sa.Connection) -> list[tuple[str, str, str, str | None]]:
    """(id, file_path, initiative_id, project_id) of every comment."""
    query = (
        "SELECT c.id, c.file_path, ph.initiative_id, c.project_id FROM review_comments c "
        "JOIN phases ph ON ph.id = c.phase_id"
    )
    return [(row[0], row[1], row[2], row[3]) for row in connection.execute(sa.text(query))]


def owner(projects: list[tuple[str, str]], path: str) -> tuple[str | None, str]:
    """The comment's project and its path in that project's worktree."""
    if len(projects) == 1:
        return projects[0][0], path
    named = [(project_id, name) for project_id, name in projects if path.startswith(f"{name}/")]
    if not named:
        return None, path
    project_id, name = max(named, key=lambda found: len(found[1]))
    return project_id, path.removeprefix(f"{name}/")


def upgrade() -> None:
    with op.batch_alter_table("review_comments") as batch_op:
        batch_op.add_column(sa.Column("project_id", sa.String(length=21), nullable=True))
        batch_op.create_foreign_key(FOREIGN_KEY, "projects", ["project_id"], ["id"], ondelete="SET NULL")
    connection = op.get_bind()
    projects = _projects_by_initiative(connection)
    for comment_id, path, initiative_id, _ in _comments(connection):
        project_id, relative = owner(projects.get(initiative_id, []), path)
        connection.execute(
            sa.text("UPDATE review_comments SET project_id = :project, file_path = :path WHERE id = :id"),
            {"project": project_id, "path": relative, "id": comment_id},
        )


def downgrade() -> None:
    connection = op.get_bind()
    projects = _projects_by_initiative(connection)
    for comment_id, path, initiative_id, project_id in _comments(connection):
        names = dict(projects.get(initiative_id, []))
        if len(names) > 1 and project_id in names:
            connection.execute(
                sa.text("UPDATE review_comments SET file_path = :path WHERE id = :id"),
                {"path": f"{names[project_id]}/{path}", "id": comment_id},
            )
    with op.batch_alter_table("review_comments") as batch_op:
        batch_op.drop_constraint(FOREIGN_KEY, type_="foreignkey")
        batch_op.drop_column("project_id")
