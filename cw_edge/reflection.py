"""Server reflection under both names clients ask for: `grpc.reflection.v1` (current grpcurl and
grpc-js try it first) and `grpc.reflection.v1alpha`.

grpcio-reflection ships only v1alpha. v1 is the same protocol promoted unchanged (same messages,
same field numbers, new package), so one servicer answers both, and the v1 descriptors are
registered as a renamed copy of the v1alpha file, which lets reflection describe itself too.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, text_format
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptors(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(alpha)
    text = text_format.MessageToString(alpha).replace("grpc.reflection.v1alpha", "grpc.reflection.v1")
    v1 = text_format.Parse(text, descriptor_pb2.FileDescriptorProto())
    v1.name = _V1_FILE
    v1.options.ClearField("deprecated")
    pool.AddSerializedFile(v1.SerializeToString())


def serve_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Reflection over `service_names` plus both reflection services themselves."""
    _register_v1_descriptors(descriptor_pool.Default())
    servicer = reflection.aio.ReflectionServicer([*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    v1_service = grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": v1})
    server.add_generic_rpc_handlers([v1_service])
