from __future__ import annotations

from typing import Any

from cw.store.v1 import review_comment_pb2, review_comment_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import ReviewComment
from store_service.writes import changes

REVIEW_COMMENT = Resource(
    ReviewComment, review_comment_pb2.ReviewComment, "review_comment", lambda uow: uow.review_comments
)


class ReviewCommentServicer(
    ResourceServicer[review_comment_pb2.ReviewComment], review_comment_pb2_grpc.ReviewCommentServiceServicer
):
    resource = REVIEW_COMMENT
    CreateReviewComment = ResourceServicer.create_rpc
    GetReviewComment = ResourceServicer.get_rpc
    DeleteReviewComment = ResourceServicer.delete_rpc

    async def ListReviewComments(self, request: Any, _context: Any) -> review_comment_pb2.ListReviewCommentsResponse:
        required_id(request.phase_id, "phase_id")
        resolved = {"resolved": request.resolved} if request.HasField("resolved") else {}
        comments, token = await self.list_page(request, ["phase_id"], extra_filters=resolved)
        return review_comment_pb2.ListReviewCommentsResponse(review_comments=comments, next_page_token=token)

    async def ResolveReviewComment(self, request: Any, _context: Any) -> review_comment_pb2.ReviewComment:
        comment_id = required_id(request.id)
        return await self.db.write(
            lambda uow: REVIEW_COMMENT.to_message(changes.resolve_review_comment(uow, comment_id))
        )

    async def UnresolveReviewComment(self, request: Any, _context: Any) -> review_comment_pb2.ReviewComment:
        comment_id = required_id(request.id)
        return await self.db.write(
            lambda uow: REVIEW_COMMENT.to_message(changes.resolve_review_comment(uow, comment_id, resolved=False))
        )
