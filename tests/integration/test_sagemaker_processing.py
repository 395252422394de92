"""SageMaker processing jobs through boto3 and the AWS CLI: the control plane end to end
(resources, controller, scheduler, local executor, worker, logs into CloudWatch Logs),
including a server crash while jobs run."""
import json
import os
import signal
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, ROOT_KEY, ROOT_SECRET, Server, error_code

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def job_request(name, command, inputs=(), outputs=(), max_runtime=None, env=None):
    request = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["sh", "-c", command]},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 1}},
        "ProcessingInputs": list(inputs),
    }
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": list(outputs)}
    if max_runtime:
        request["StoppingCondition"] = {"MaxRuntimeInSeconds": max_runtime}
    if env:
        request["Environment"] = env
    return request


def s3_input(name, uri, local_path, data_type="S3Prefix"):
    return {"InputName": name, "S3Input": {
        "S3Uri": uri, "LocalPath": local_path, "S3DataType": data_type, "S3InputMode": "File"}}


def s3_output(name, uri, local_path):
    return {"OutputName": name, "S3Output": {
        "S3Uri": uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"}}


def wait_for(sm, name, statuses=("Completed", "Failed", "Stopped"), timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = sm.describe_processing_job(ProcessingJobName=name)
        if job["ProcessingJobStatus"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{name} still {job['ProcessingJobStatus']}")


def error_code_of(exc):
    return exc.response["Error"]["Code"]


def log_messages(logs, name, expect=None, timeout=10):
    """The messages of the job's log stream; waits until `expect` is among them."""
    deadline = time.time() + timeout
    while True:
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=name + "/")["logStreams"]
        except ClientError as e:  # the group appears with the first job's first line
            if error_code_of(e) != "ResourceNotFoundException" or time.time() > deadline:
                raise
            streams = []
        messages = []
        for stream in streams:
            events = logs.get_log_events(logGroupName=LOG_GROUP,
                                         logStreamName=stream["logStreamName"],
                                         startFromHead=True)["events"]
            messages += [e["message"] for e in events]
        if expect is None or expect in messages or time.time() > deadline:
            return streams, messages
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sm(make_client):
    return make_client("sagemaker")


@pytest.fixture(scope="module")
def s3(make_client):
    return make_client("s3")


@pytest.fixture(scope="module")
def logs(make_client):
    return make_client("logs")


@pytest.fixture(scope="module")
def bucket(s3):
    name = unique("processing")
    s3.create_bucket(Bucket=name)
    return name


def test_job_downloads_inputs_runs_and_uploads_outputs(sm, s3, logs, bucket):
    s3.put_object(Bucket=bucket, Key="raw/a.csv", Body=b"1,2\n3,4\n")
    s3.put_object(Bucket=bucket, Key="raw/b.csv", Body=b"5,6\n")
    s3.put_object(Bucket=bucket, Key="code/prep.py", Body=(
        b"import glob, json, os\n"
        b"rows = [l for f in sorted(glob.glob('/opt/ml/processing/input/data/*.csv'))"
        b" for l in open(f)]\n"
        b"print('rows', len(rows), 'mode', os.environ['MODE'])\n"
        b"conf = json.load(open('/opt/ml/config/processingjobconfig.json'))\n"
        b"print('job', conf['ProcessingJobName'])\n"
        b"os.makedirs('/opt/ml/processing/output/train', exist_ok=True)\n"
        b"open('/opt/ml/processing/output/train/all.csv', 'w').writelines(rows)\n"))
    name = unique("prep")
    request = job_request(
        name, "python3 /opt/ml/processing/input/code/prep.py",
        inputs=[s3_input("data", f"s3://{bucket}/raw/", "/opt/ml/processing/input/data"),
                s3_input("code", f"s3://{bucket}/code/prep.py",
                         "/opt/ml/processing/input/code")],
        outputs=[s3_output("train", f"s3://{bucket}/prepared/{name}",
                           "/opt/ml/processing/output/train")],
        env={"MODE": "full"})
    request["Tags"] = [{"Key": "team", "Value": "ml"}]
    arn = sm.create_processing_job(**request)["ProcessingJobArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name.lower()}"

    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    job = sm.describe_processing_job(ProcessingJobName=name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ProcessingJobArn"] == arn
    assert job["AppSpecification"]["ImageUri"] == IMAGE
    assert job["Environment"] == {"MODE": "full"}
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"]
    assert job["CreationTime"] <= job["ProcessingStartTime"]
    assert "_runtime" not in job

    body = s3.get_object(Bucket=bucket, Key=f"prepared/{name}/all.csv")["Body"].read()
    assert body == b"1,2\n3,4\n5,6\n"
    streams, messages = log_messages(logs, name, expect="rows 3 mode full")
    assert "rows 3 mode full" in messages and f"job {name}" in messages
    assert streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_failing_job_reports_the_failure_file_and_exit_code(sm, bucket):
    name = unique("fails")
    sm.create_processing_job(**job_request(
        name, "echo 'bad input row 7' > /opt/ml/output/failure; exit 3"))
    job = wait_for(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert "bad input row 7" in job["FailureReason"]
    assert job["ExitMessage"]

    name = unique("exits")
    sm.create_processing_job(**job_request(name, "exit 5"))
    job = wait_for(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert "5" in job["FailureReason"]


def test_missing_input_fails_the_job_with_a_client_error(sm, bucket):
    name = unique("noinput")
    sm.create_processing_job(**job_request(
        name, "true", inputs=[s3_input("data", f"s3://{bucket}/nothing-here/",
                                       "/opt/ml/processing/input/data")]))
    job = wait_for(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError:")
    assert f"s3://{bucket}/nothing-here/" in job["FailureReason"]


def test_stop_moves_a_running_job_through_stopping_to_stopped(sm, logs):
    name = unique("sleeper")
    sm.create_processing_job(**job_request(name, "echo started; sleep 60"))
    log_messages(logs, name, expect="started")
    sm.stop_processing_job(ProcessingJobName=name)
    status = sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
    assert status in ("Stopping", "Stopped")
    job = wait_for(sm, name, timeout=40)
    assert job["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as e:
        sm.stop_processing_job(ProcessingJobName=name)
    assert error_code(e) == "ValidationException"


def test_max_runtime_is_enforced(sm):
    name = unique("slow")
    sm.create_processing_job(**job_request(name, "sleep 60", max_runtime=1))
    job = wait_for(sm, name, timeout=40)
    assert job["ProcessingJobStatus"] == "Failed"
    assert "MaxRuntimeExceeded" in job["FailureReason"]


def test_job_utilization_is_published_as_cloudwatch_metrics(sm, aws_cli):
    name = unique("busy")
    started = int(time.time()) - 60
    sm.create_processing_job(**job_request(
        name, "python3 -c \"import time; b = bytearray(200 * 2**20); e = time.time() + 2.5; "
              "[0 for _ in iter(lambda: time.time() < e, False)]\""))
    assert wait_for(sm, name)["ProcessingJobStatus"] == "Completed"
    stats = {}
    for metric in ("CPUUtilization", "MemoryUtilization"):
        rc, out, err = aws_cli(
            "cloudwatch", "get-metric-statistics", "--namespace", "/aws/sagemaker/ProcessingJobs",
            "--metric-name", metric, "--dimensions", f"Name=Host,Value={name}/algo-1",
            "--start-time", str(started), "--end-time", str(int(time.time()) + 60),
            "--period", "60", "--statistics", "Maximum", "SampleCount")
        assert rc == 0, err
        assert out["Datapoints"], metric
        stats[metric] = max(p["Maximum"] for p in out["Datapoints"])
        assert all(p["Unit"] == "Percent" for p in out["Datapoints"])
    assert stats["CPUUtilization"] > 50  # one core busy is 100
    # 200 MiB of ml.t3.medium's 4 GiB.
    assert 3 < stats["MemoryUtilization"] < 30


def test_memory_is_limited_by_the_instance_type(sm, logs):
    name = unique("greedy")  # ml.t3.medium has 4 GiB
    sm.create_processing_job(**job_request(
        name, "python3 -c \"b = bytearray(6 * 2**30); print('allocated')\""))
    job = wait_for(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    _, messages = log_messages(logs, name, expect="MemoryError")
    assert "MemoryError" in messages and "allocated" not in messages


def test_sandbox_hides_the_rest_of_the_data_dir_and_the_network(sm, logs, server):
    secret = os.path.join(server.data_dir, "credentials")
    command = (f"test -e {secret} && echo visible || echo hidden; "
               "python3 -c \"import socket; socket.create_connection(('127.0.0.1', "
               f"{server.port}), 2)\" 2>/dev/null && echo net || echo nonet")
    isolated, open_net = unique("isolated"), unique("network")
    request = job_request(isolated, command)
    request["NetworkConfig"] = {"EnableNetworkIsolation": True}
    sm.create_processing_job(**request)
    sm.create_processing_job(**job_request(open_net, command))
    for name, network in ((isolated, "nonet"), (open_net, "net")):
        job = wait_for(sm, name)
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
        _, messages = log_messages(logs, name, expect=network)
        assert messages[0] == "hidden" and messages[-1] == network


def test_create_validates_like_sagemaker(sm, bucket):
    name = unique("dup")
    sm.create_processing_job(**job_request(name, "true"))
    with pytest.raises(ClientError) as e:
        sm.create_processing_job(**job_request(name, "true"))
    assert error_code(e) == "ResourceInUse"

    request = job_request(unique("noentry"), "true")
    del request["AppSpecification"]["ContainerEntrypoint"]
    with pytest.raises(ClientError) as e:
        sm.create_processing_job(**request)
    assert error_code(e) == "ValidationException"
    assert IMAGE in str(e.value)

    request = job_request(unique("badpath"), "true", inputs=[
        s3_input("data", f"s3://{bucket}/x/", "/etc/data")])
    with pytest.raises(ClientError) as e:
        sm.create_processing_job(**request)
    assert "/opt/ml/processing/" in str(e.value)

    request = job_request(unique("multi"), "true")
    request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 2
    with pytest.raises(ClientError) as e:
        sm.create_processing_job(**request)
    assert error_code(e) == "ValidationException"

    with pytest.raises(ClientError) as e:
        sm.describe_processing_job(ProcessingJobName=unique("missing"))
    assert error_code(e) == "ValidationException"
    assert "Could not find requested job" in str(e.value)


def test_list_filters_sorts_and_paginates(sm):
    tag = uuid.uuid4().hex[:8]
    names = [f"list-{tag}-{i}" for i in range(5)]
    for name in names:
        sm.create_processing_job(**job_request(name, "true"))
    for name in names:
        wait_for(sm, name)
    listed = sm.list_processing_jobs(NameContains=tag, SortBy="Name", SortOrder="Ascending")
    assert [j["ProcessingJobName"] for j in listed["ProcessingJobSummaries"]] == names
    paged = []
    for page in sm.get_paginator("list_processing_jobs").paginate(
            NameContains=tag, SortBy="CreationTime", SortOrder="Descending",
            PaginationConfig={"PageSize": 2}):
        assert len(page["ProcessingJobSummaries"]) <= 2
        paged += [j["ProcessingJobName"] for j in page["ProcessingJobSummaries"]]
    assert paged == list(reversed(names))
    done = sm.list_processing_jobs(NameContains=tag, StatusEquals="Completed")
    assert len(done["ProcessingJobSummaries"]) == 5
    with pytest.raises(ClientError) as e:
        sm.list_processing_jobs(NameContains=tag, NextToken="forged-token")
    assert error_code(e) == "ValidationException"


def test_aws_cli_creates_describes_and_lists(aws_cli, logs):
    name = unique("cli")
    request = job_request(name, "echo from-cli")
    rc, out, err = aws_cli("sagemaker", "create-processing-job",
                           "--cli-input-json", json.dumps(request))
    assert rc == 0, err
    rc, out, err = aws_cli("sagemaker", "wait", "processing-job-completed-or-stopped",
                           "--processing-job-name", name)
    assert rc == 0, err
    rc, out, err = aws_cli("sagemaker", "describe-processing-job", "--processing-job-name", name)
    assert rc == 0 and out["ProcessingJobStatus"] == "Completed"
    rc, out, err = aws_cli("sagemaker", "list-processing-jobs", "--name-contains", name)
    assert [j["ProcessingJobName"] for j in out["ProcessingJobSummaries"]] == [name]
    streams, messages = log_messages(logs, name, expect="from-cli")
    assert "from-cli" in messages
    rc, out, err = aws_cli("logs", "get-log-events", "--log-group-name", LOG_GROUP,
                           "--log-stream-name", streams[0]["logStreamName"], "--start-from-head")
    assert rc == 0, err
    assert [e["message"] for e in out["events"]] == ["from-cli"]
    rc, out, err = aws_cli("logs", "filter-log-events", "--log-group-name", LOG_GROUP,
                           "--log-stream-name-prefix", name, "--filter-pattern", '"from-cli"')
    assert rc == 0, err
    assert [e["message"] for e in out["events"]] == ["from-cli"]
    assert out["events"][0]["logStreamName"] == streams[0]["logStreamName"]


def client(server, service):
    return boto3.client(service, endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
                        config=Config(retries={"max_attempts": 1}))


def test_jobs_survive_a_server_crash(tmp_path):
    """kill -9 the server while one job runs and one is stopped mid-way; the restarted
    server re-attaches the survivor (which completes with all its logs), and a worker
    that died while the server was down fails with a clear reason."""
    env = {"NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY, "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET}
    server = Server(tmp_path / "data", env)
    try:
        sm, logs = client(server, "sagemaker"), client(server, "logs")
        survivor, victim = unique("survivor"), unique("victim")
        sm.create_processing_job(**job_request(
            survivor, "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done"))
        sm.create_processing_job(**job_request(victim, "echo up; sleep 60"))
        log_messages(logs, survivor, expect="tick 1")
        log_messages(logs, victim, expect="up")
        server.stop(signal.SIGKILL)

        # While the server is down, the victim's worker dies.
        jobs_dir = tmp_path / "data" / "jobs" / "processing"
        victim_dir = next(d for d in jobs_dir.iterdir() if victim.lower() in d.name)
        record = json.loads((victim_dir / "launch.json").read_text())
        pid = record.get("pid") or record["process"]["pid"]
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        time.sleep(0.5)

        server = Server(tmp_path / "data", env)
        sm, logs = client(server, "sagemaker"), client(server, "logs")
        job = wait_for(sm, survivor, timeout=30)
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
        _, messages = log_messages(logs, survivor, expect="tick 6")
        assert [m for m in messages if m.startswith("tick")] == [f"tick {i}" for i in range(1, 7)]
        job = wait_for(sm, victim, timeout=30)
        assert job["ProcessingJobStatus"] == "Failed"
        assert "exited unexpectedly" in job["FailureReason"]
    finally:
        server.stop()
