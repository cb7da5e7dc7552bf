"""Authentication with the services as processes: the orchestrator's edge, TLS, the loopback rule,
the token files' start-up order, and agents that get no credential."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.local import start
from clients.sdk import OrchestratorClient, StoreClient, UnauthenticatedError
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.orchestrator.v1 import orchestrator_pb2_grpc
from cw.store.v1 import project_pb2
from cw_edge.tokens import Identity
from tests.e2e.cluster import cluster, wait_for
from tests.support import (
    authorized_channel,
    call_error,
    list_services_v1,
    start_store_process,
    tokens_in,
)


def _self_signed_pair(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: it is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cw test")])
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_orchestrator_wants_a_token_too(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        assert c.orchestrator is not None
        with grpc.insecure_channel(c.orchestrator.address) as bare:
            stub = orchestrator_pb2_grpc.OrchestratorServiceStub(bare)
            error = call_error(stub.ApprovePhase, orch.ApprovePhaseRequest(phase_id="x"))
            assert error.code == grpc.StatusCode.UNAUTHENTICATED and error.reason == "UNAUTHENTICATED"
            reply = health_pb2_grpc.HealthStub(bare).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with authorized_channel(c.orchestrator.address, tokens_in(c.auth_dir)[Identity.CLIENT]) as channel:
            assert "cw.orchestrator.v1.OrchestratorService" in list_services_v1(channel)
            stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
            assert call_error(stub.ApprovePhase, orch.ApprovePhaseRequest(phase_id="x")).code == (
                grpc.StatusCode.NOT_FOUND
            )


@pytest.mark.parametrize("module", ["store_service", "orchestrator_service"])
def test_plaintext_beyond_loopback_is_refused_in_one_line(tmp_path: Path, module: str) -> None:
    command = [sys.executable, "-m", module, "--listen", "0.0.0.0:0", "--auth-dir", str(tmp_path / "auth")]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        f"cw-{module.split('_', maxsplit=1)[0]}: refusing to listen on 0.0.0.0:0 without TLS: "
        "give --tls-cert and --tls-key, or --insecure to accept plaintext"
    ]


def test_insecure_plaintext_beyond_loopback_warns(tmp_path: Path) -> None:
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log", "0.0.0.0:0", extra=["--insecure"])
    store.kill()
    log = (tmp_path / "store.log").read_text()
    assert "WARNING" in log and "--insecure: serving plaintext on 0.0.0.0:0" in log


def test_both_services_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed_pair(tmp_path)
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    store = start_store_process(tmp_path / "store.db", tmp_path / "store.log", extra=tls)
    orchestrator = None
    try:
        arguments = ["--store", store.address, "--listen", "127.0.0.1:0", "--auth-dir", str(tmp_path / "auth")]
        arguments += ["--workspace", str(tmp_path / "workspace"), "--store-tls-ca", str(cert), *tls]
        arguments += ["--agents-in-sandbox"]  # no agent runs here; as root, claude needs the flag
        orchestrator = start("orchestrator_service", arguments, tmp_path / "orchestrator.log")
        token_file = tmp_path / "auth" / "client.token"
        sdk = StoreClient(store.address, token_file=token_file, tls_ca=cert)
        project = sdk.create_project("tls", str(tmp_path))
        assert sdk.list_projects() == [project]
        plain = StoreClient(store.address, token_file=token_file)
        with pytest.raises(grpc.RpcError):  # a plaintext client gets no answer from a TLS port
            plain.projects.ListProjects(project_pb2.ListProjectsRequest(), timeout=2)
        # The orchestrator reaches the store over TLS: its event stream replays the store's log
        # (after the orchestrator's own `orchestrator:joined`, recorded when it took its lease).
        events = OrchestratorClient(orchestrator.address, token_file=token_file, tls_ca=cert).events()
        assert next(events).type == "orchestrator:joined"
        assert next(events).type == "project:created"
    finally:
        for service in (orchestrator, store):
            if service is not None:
                service.kill()
    assert "(TLS)" in (tmp_path / "orchestrator.log").read_text()


def test_the_orchestrator_waits_for_the_store_to_create_the_tokens(tmp_path: Path) -> None:
    store_address = f"127.0.0.1:{_free_port()}"
    auth = ["--auth-dir", str(tmp_path / "auth")]
    log_path = tmp_path / "orchestrator.log"
    arguments = ["--store", store_address, "--listen", "127.0.0.1:0", "--workspace", str(tmp_path / "workspace")]
    arguments += ["--agents-in-sandbox"]  # no agent runs here; as root, claude needs the flag
    with log_path.open("w") as log:
        orchestrator = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_service", *arguments, *auth], stdout=log, stderr=subprocess.STDOUT
        )
    store = None
    try:
        wait_for("the orchestrator to wait", lambda: "waiting for the token files" in log_path.read_text())
        store = start_store_process(tmp_path / "store.db", tmp_path / "store.log", store_address)
        wait_for("the orchestrator to listen", lambda: "listening on" in log_path.read_text())
        assert orchestrator.poll() is None
    finally:
        orchestrator.kill()
        orchestrator.wait(10)
        if store is not None:
            store.kill()


def test_agents_get_no_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`env` as the agent prints the environment it was given into its output."""
    with cluster(tmp_path, providers=["printenv=env"]) as c:
        monkeypatch.setenv("CW_TOKEN_FILE", str(c.client_token_file))
        monkeypatch.setenv("CW_HOME", str(c.root))
        assert c.orchestrator is not None
        c.orchestrator.kill()
        c.start_orchestrator()  # now with CW_TOKEN_FILE and CW_HOME in its own environment
        phase = c.phase(c.initiative("Env", c.project()), "P")
        task = c.task(phase, "print the environment")
        c.orch.ApprovePhase(orch.ApprovePhaseRequest(phase_id=phase.id), timeout=10)
        agent = wait_for("the agent", lambda: next(iter(c.agents_of(task.id)), None))
        output = b"".join(
            chunk.data
            for chunk in c.orch.StreamAgentOutput(orch.StreamAgentOutputRequest(agent_id=agent.id, follow=True))
        ).decode()
    assert f"CW_AGENT_ID={agent.id}" in output
    assert "CW_TOKEN_FILE" not in output and "CW_HOME" not in output
    for token in tokens_in(c.auth_dir).values():
        assert token not in output


def test_a_missing_token_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnauthenticatedError) as missing:
        StoreClient("127.0.0.1:9", token_file=tmp_path / "auth" / "client.token")
    assert str(tmp_path / "auth" / "client.token") in missing.value.message and "make run" in missing.value.message
    env = {name: value for name, value in os.environ.items() if name != "CW_TOKEN_FILE"}
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", "project", "list"],
        capture_output=True,
        text=True,
        env={**env, "CW_HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cw project list: no client token in {tmp_path}/auth/client.token: "
        "`make run` creates it when it first starts the store (unauthenticated)"
    ]
