"""Integration-test harness: runs the real `nimbus serve` on a free port with a temp
data dir, and hands out real AWS clients (boto3, AWS CLI v2) pointed at it."""
import json
import os
import shutil
import signal
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

ROOT_KEY = "AKIANIMBUSTESTROOT01"
ROOT_SECRET = "nimbusTestRootSecretKey0123456789abcdefg"
REGION = "us-east-1"
ACCOUNT = "000000000000"

BINARY = os.environ.get(
    "NIMBUS_BINARY",
    os.path.join(os.path.dirname(__file__), "..", "..", "build", "nimbus"))
AWS_CLI_V2 = "/usr/bin/aws"


class Server:
    """A running `nimbus serve` process and the facts a test needs about it."""

    def __init__(self, data_dir, env_overrides=None, args=()):
        self.data_dir = str(data_dir)
        self.log_path = os.path.join(self.data_dir, "server.log")
        os.makedirs(self.data_dir, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
        env.update(env_overrides or {})
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--port", "0", "--data-dir", self.data_dir, *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_for_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nimbus exited early:\n" + self.output())
            for line in self.output().splitlines():
                if line.startswith("{"):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "listening":
                        return int(event["port"])
            time.sleep(0.05)
        raise RuntimeError("nimbus did not start listening:\n" + self.output())

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("nimbus"), {
        "NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY,
        "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
    })
    yield s
    s.stop()


@pytest.fixture(scope="session")
def make_client(server):
    """make_client(service, key=ROOT_KEY, secret=ROOT_SECRET, token=None, **config)"""

    def make(service, key=ROOT_KEY, secret=ROOT_SECRET, token=None, **config):
        return boto3.client(
            service, endpoint_url=server.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 1}, **config))

    return make


@pytest.fixture(scope="session")
def aws_cli(server, tmp_path_factory):
    """aws_cli(*args, key=..., secret=..., check=True) runs AWS CLI v2 and returns
    (returncode, parsed JSON or None, stderr)."""
    home = tmp_path_factory.mktemp("awshome")
    if not os.path.exists(AWS_CLI_V2):
        pytest.fail("AWS CLI v2 (Debian's awscli) is not installed: run scripts/install-deps.sh")

    def run(*args, key=ROOT_KEY, secret=ROOT_SECRET, token=None, env_extra=None):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PAGER": "",
        }
        if token:
            env["AWS_SESSION_TOKEN"] = token
        env.update(env_extra or {})
        proc = subprocess.run(
            [AWS_CLI_V2, "--endpoint-url", server.endpoint, "--output", "json", *args],
            capture_output=True, text=True, env=env, timeout=60)
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        return proc.returncode, out, proc.stderr

    return run


def error_code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def have(binary):
    return shutil.which(binary) is not None
