"""What the Python benchmarks share: starting `nimbus serve` the way the integration tests
do (port 0, a temp data dir, fixed root keys) and making boto3 clients for it."""
import json
import os
import subprocess
import sys
import time

import boto3
from botocore.config import Config

ROOT_KEY = "AKIANIMBUSTESTROOT01"
ROOT_SECRET = "nimbusTestRootSecretKey0123456789abcdefg"
REGION = "us-east-1"
DEFAULT_BINARY = os.environ.get(
    "NIMBUS_BINARY", os.path.join(os.path.dirname(__file__), "..", "build", "nimbus"))


def start_server(binary, data_dir, args=(), env_extra=None):
    """Starts nimbus serve; returns (process, log file, port)."""
    log_path = os.path.join(data_dir, "server.log")
    log = open(log_path, "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
    env.update({"NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY,
                "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET})
    env.update(env_extra or {})
    proc = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", data_dir, *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("nimbus exited early:\n" + open(log_path).read())
        for line in open(log_path).read().splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "listening":
                    return proc, log, int(event["port"])
            elif line.startswith("Nimbus") and "listening on" in line:  # quieter log levels
                return proc, log, int(line.rsplit(":", 1)[1])
        time.sleep(0.05)
    proc.kill()
    sys.exit("nimbus did not start listening:\n" + open(log_path).read())


def client(service, port, **config):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
                        config=Config(retries={"max_attempts": 1}, **config))
