from __future__ import annotations

from typing import Any

from cw.store.v1 import log_chunk_pb2, log_chunk_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import LogChunk

LOG_CHUNK = Resource(LogChunk, log_chunk_pb2.LogChunk, "log_chunk", lambda uow: uow.log_chunks)


class LogChunkServicer(ResourceServicer[log_chunk_pb2.LogChunk], log_chunk_pb2_grpc.LogChunkServiceServicer):
    resource = LOG_CHUNK
    CreateLogChunk = ResourceServicer.create_rpc

    async def ListLogChunks(self, request: Any, _context: Any) -> log_chunk_pb2.ListLogChunksResponse:
        required_id(request.agent_id, "agent_id")
        chunks, token = await self.list_page(request, ["agent_id", "session_number"])
        return log_chunk_pb2.ListLogChunksResponse(log_chunks=chunks, next_page_token=token)

    async def DeleteLogChunks(self, request: Any, _context: Any) -> log_chunk_pb2.DeleteLogChunksResponse:
        agent_id = required_id(request.agent_id, "agent_id")
        deleted = await self.db.write(lambda uow: uow.log_chunks.delete_by_agent_id(agent_id))
        return log_chunk_pb2.DeleteLogChunksResponse(deleted_count=deleted)

    async def GetSessionCount(self, request: Any, _context: Any) -> log_chunk_pb2.GetSessionCountResponse:
        agent_id = required_id(request.agent_id, "agent_id")
        count = await self.db.read(lambda uow: uow.log_chunks.get_session_count(agent_id))
        return log_chunk_pb2.GetSessionCountResponse(session_count=count)
