"""`nimbus serve` itself: health, credentials bootstrap, bad HTTP, graceful shutdown."""
import json
import os
import signal
import socket
import stat
import subprocess
import urllib.request

from conftest import AWS_CLI_V2, Server


def test_health_names_the_services_served(server):
    with urllib.request.urlopen(server.endpoint + "/_nimbus/health") as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    assert body["status"] == "running"
    assert body["services"]["sts"] == "running"
    assert body["services"]["iam"] == "running"
    assert "cloudwatch" in body["services"]


def test_first_start_writes_a_private_credentials_file_that_the_cli_can_use(tmp_path):
    s = Server(tmp_path / "data")
    try:
        path = os.path.join(s.data_dir, "credentials")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        text = open(path).read()
        assert text.startswith("[default]")
        assert "aws_access_key_id" in text and "aws_secret_access_key" in text
        assert "export AWS_ACCESS_KEY_ID=" in s.output()
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
               "AWS_SHARED_CREDENTIALS_FILE": path, "AWS_CONFIG_FILE": os.devnull,
               "AWS_DEFAULT_REGION": "us-east-1"}
        out = subprocess.run([AWS_CLI_V2, "--endpoint-url", s.endpoint, "--output", "json",
                              "sts", "get-caller-identity"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Arn"] == "arn:aws:iam::000000000000:root"
    finally:
        assert s.stop() == 0
    # A restart keeps the same keys.
    before = open(path).read()
    s2 = Server(tmp_path / "data")
    try:
        assert open(path).read() == before
    finally:
        s2.stop()


def raw_exchange(server, payload, read_timeout=5):
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except socket.timeout:
            pass
    return b"".join(chunks)


def test_garbage_bytes_get_400_and_the_server_keeps_serving(server):
    reply = raw_exchange(server, b"\x00\x01\x02 not http at all\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    with urllib.request.urlopen(server.endpoint + "/_nimbus/health") as resp:
        assert resp.status == 200


def test_oversized_headers_are_refused(server):
    big = b"GET /_nimbus/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"
    reply = raw_exchange(server, big)
    assert reply.startswith(b"HTTP/1.1 431") or reply.startswith(b"HTTP/1.1 400")
    with urllib.request.urlopen(server.endpoint + "/_nimbus/health") as resp:
        assert resp.status == 200


def test_client_disconnecting_mid_body_does_not_wedge_the_server(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                     b"\r\nContent-Length: 100000\r\n\r\nAction=GetCallerIdentity&")
    with urllib.request.urlopen(server.endpoint + "/_nimbus/health") as resp:
        assert resp.status == 200


def test_sigterm_shuts_down_cleanly(tmp_path):
    s = Server(tmp_path / "d")
    assert s.stop(signal.SIGTERM) == 0
    assert '"event":"stopped"' in s.output()
