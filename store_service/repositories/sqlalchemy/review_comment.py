from __future__ import annotations

from store_service.db.models import ReviewComment
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class SqlAlchemyReviewCommentRepository(SqlAlchemyRepository[ReviewComment]):
    model = ReviewComment

    def find_by_phase_id(self, phase_id: str) -> list[ReviewComment]:
        return self.find_where(ReviewComment.phase_id == phase_id)

    def resolve(self, comment_id: str) -> ReviewComment:
        return self.update(comment_id, resolved=True)

    def unresolve(self, comment_id: str) -> ReviewComment:
        return self.update(comment_id, resolved=False)
