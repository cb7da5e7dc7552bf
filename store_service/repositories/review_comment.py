from typing import Protocol

from store_service.db.models import ReviewComment
from store_service.repositories.base import Repository


class ReviewCommentRepository(Repository[ReviewComment], Protocol):
    def find_by_phase_id(self, phase_id: str) -> list[ReviewComment]: ...

    def resolve(self, comment_id: str) -> ReviewComment: ...

    def unresolve(self, comment_id: str) -> ReviewComment: ...
