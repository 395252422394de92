"""SageMaker training jobs through boto3 and the AWS CLI: built-in algorithms behind their
real image URIs, script mode as the SageMaker SDK's estimators launch it, metrics, logs,
artifacts, checkpoints, stops and the errors SageMaker gives."""
import io
import json
import random
import tarfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, error_code

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
KMEANS = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
LINEAR = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
PYTORCH = "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.0.0-cpu-py310"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def sm(make_client):
    return make_client("sagemaker")


@pytest.fixture(scope="module")
def s3(make_client):
    return make_client("s3")


@pytest.fixture(scope="module")
def bucket(s3):
    name = unique("training")
    s3.create_bucket(Bucket=name)
    return name


def channel(name, uri, content_type=None):
    c = {"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
    if content_type:
        c["ContentType"] = content_type
    return c


def job_request(name, image, bucket, hyperparameters, channels, **extra):
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(extra)
    return request


def wait_for(sm, name, timeout=120):
    deadline = time.time() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        assert time.time() < deadline, f"{name} still {job['TrainingJobStatus']}"
        time.sleep(0.2)


def model_files(s3, job):
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def regression_csv(rows, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        lines.append(f"{3 * x1 - 2 * x2 + 1 + rng.gauss(0, 0.05):.5f},{x1:.5f},{x2:.5f}")
    return ("\n".join(lines) + "\n").encode()


def test_xgboost_trains_from_its_image_uri(sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="xgb/train/data.csv", Body=regression_csv(400, 1))
    s3.put_object(Bucket=bucket, Key="xgb/validation/data.csv", Body=regression_csv(100, 2))
    name = unique("xgb")
    arn = sm.create_training_job(**job_request(
        name, XGBOOST, bucket,
        {"num_round": "40", "objective": "reg:squarederror", "max_depth": "3", "eta": "0.3"},
        [channel("train", f"s3://{bucket}/xgb/train/", "text/csv"),
         channel("validation", f"s3://{bucket}/xgb/validation/", "text/csv")],
        Tags=[{"Key": "project", "Value": "nimbus"}]))["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name.lower()}"
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] >= 1
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["validation:rmse"] < 0.5
    assert "train:rmse" in metrics
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == \
        f"s3://{bucket}/output/{name}/output/model.tar.gz"
    files = model_files(s3, job)
    assert list(files) == ["xgboost-model"] and len(files["xgboost-model"]) > 100
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "project", "Value": "nimbus"}]


def test_a_bad_hyperparameter_fails_the_job_with_a_client_error(sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="bad/train/data.csv", Body=regression_csv(20, 3))
    name = unique("badhp")
    sm.create_training_job(**job_request(
        name, XGBOOST, bucket, {"num_round": "5", "eta": "7"},
        [channel("train", f"s3://{bucket}/bad/train/", "text/csv")]))
    job = wait_for(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError:")
    assert "eta" in job["FailureReason"]
    assert "ModelArtifacts" not in job


def test_kmeans_and_linear_learner_images_run_their_algorithms(sm, s3, bucket):
    rng = random.Random(5)
    points = []
    for cx, cy in ((0, 0), (10, 10), (-10, 10)):
        points += [f"{cx + rng.gauss(0, 0.5):.4f},{cy + rng.gauss(0, 0.5):.4f}" for _ in range(60)]
    s3.put_object(Bucket=bucket, Key="km/train/points.csv", Body=("\n".join(points) + "\n").encode())
    kmeans = unique("kmeans")
    sm.create_training_job(**job_request(
        kmeans, KMEANS, bucket, {"k": "3", "feature_dim": "2", "mini_batch_size": "50"},
        [channel("train", f"s3://{bucket}/km/train/", "text/csv;label_size=0")]))

    rows = []
    for _ in range(300):
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        rows.append(f"{1 if x1 + x2 > 0 else 0},{x1:.4f},{x2:.4f}")
    s3.put_object(Bucket=bucket, Key="ll/train/data.csv", Body=("\n".join(rows) + "\n").encode())
    linear = unique("linear")
    sm.create_training_job(**job_request(
        linear, LINEAR, bucket,
        {"predictor_type": "binary_classifier", "feature_dim": "2", "epochs": "10",
         "mini_batch_size": "50"},
        [channel("train", f"s3://{bucket}/ll/train/", "text/csv"),
         channel("validation", f"s3://{bucket}/ll/train/", "text/csv")]))
    for name in (kmeans, linear):
        job = wait_for(sm, name)
        assert job["TrainingJobStatus"] == "Completed", (name, job.get("FailureReason"))
        assert model_files(s3, job)
    metrics = {m["MetricName"]: m["Value"]
               for m in sm.describe_training_job(TrainingJobName=linear)["FinalMetricDataList"]}
    assert metrics["validation:binary_classification_accuracy"] > 0.9


SCRIPT = b"""
import argparse, json, os, time
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--sleep", type=float, default=0)
args = parser.parse_args()
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.txt")).read().split()
ckpt = "/opt/ml/checkpoints/state.txt"
start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0
print("resumed from", start, flush=True)
for epoch in range(start, start + args.epochs):
    print(f"epoch={epoch} loss={1.0 / (epoch + 1):.4f}", flush=True)
    os.makedirs("/opt/ml/checkpoints", exist_ok=True)
    open(ckpt, "w").write(str(epoch + 1))
    time.sleep(args.sleep)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
    json.dump({"rows": len(rows), "hps": json.loads(os.environ["SM_HPS"]),
               "hosts": json.loads(os.environ["SM_HOSTS"])}, f)
os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt"), "w").write("ok")
"""


def upload_source(s3, bucket):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(SCRIPT)
        tar.addfile(info, io.BytesIO(SCRIPT))
    key = f"code/{uuid.uuid4().hex[:6]}/sourcedir.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key="script/train/data.txt", Body=b"a b c d")
    return f"s3://{bucket}/{key}"


def script_request(name, bucket, source, epochs, sleep=0, **extra):
    # As the SageMaker SDK sends them: script-mode hyperparameters are JSON-encoded.
    hps = {"epochs": json.dumps(epochs), "sleep": json.dumps(sleep),
           "sagemaker_program": json.dumps("train.py"),
           "sagemaker_submit_directory": json.dumps(source),
           "sagemaker_region": json.dumps(REGION)}
    request = job_request(name, PYTORCH, bucket, hps,
                          [channel("train", f"s3://{bucket}/script/train/")], **extra)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}]
    return request


def test_script_mode_runs_the_users_program(sm, s3, make_client, bucket):
    source = upload_source(s3, bucket)
    name = unique("script")
    sm.create_training_job(**script_request(name, bucket, source, epochs=3))
    job = wait_for(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = json.loads(model_files(s3, job)["model.json"])
    assert model == {"rows": 4, "hps": {"epochs": 3, "sleep": 0}, "hosts": ["algo-1"]}
    out = s3.get_object(Bucket=bucket, Key=f"output/{name}/output/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.extractfile("report.txt").read() == b"ok"
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics == {"train:loss": pytest.approx(1 / 3, abs=1e-3)}

    logs = make_client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=name + "/")["logStreams"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    assert "epoch=2 loss=0.3333" in [e["message"] for e in events]
    cw = make_client("cloudwatch")
    stats = cw.get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs", MetricName="train:loss",
        Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}],
        StartTime=time.time() - 3600, EndTime=time.time() + 60, Period=3600,
        Statistics=["Minimum", "Maximum", "SampleCount"])["Datapoints"]
    assert stats and stats[0]["SampleCount"] == 3 and stats[0]["Maximum"] == 1.0


def test_checkpoints_are_restored_by_the_next_job(sm, s3, bucket):
    source = upload_source(s3, bucket)
    checkpoints = {"S3Uri": f"s3://{bucket}/checkpoints/{uuid.uuid4().hex[:6]}"}
    first, second = unique("ckpt1"), unique("ckpt2")
    sm.create_training_job(**script_request(first, bucket, source, epochs=2,
                                            CheckpointConfig=checkpoints))
    assert wait_for(sm, first)["TrainingJobStatus"] == "Completed"
    sm.create_training_job(**script_request(second, bucket, source, epochs=2,
                                            CheckpointConfig=checkpoints))
    job = wait_for(sm, second)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["train:loss"] == pytest.approx(0.25)  # epochs 2 and 3: resumed at 2


def test_stop_and_max_runtime_stop_the_job(sm, s3, bucket):
    source = upload_source(s3, bucket)
    stopped, timed_out = unique("stopme"), unique("slow")
    sm.create_training_job(**script_request(stopped, bucket, source, epochs=100, sleep=0.5))
    sm.create_training_job(**script_request(
        timed_out, bucket, source, epochs=100, sleep=0.5,
        StoppingCondition={"MaxRuntimeInSeconds": 2}))
    deadline = time.time() + 60
    while sm.describe_training_job(TrainingJobName=stopped)["SecondaryStatus"] != "Training":
        assert time.time() < deadline
        time.sleep(0.2)
    sm.stop_training_job(TrainingJobName=stopped)
    job = wait_for(sm, stopped)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    job = wait_for(sm, timed_out)
    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"
    with pytest.raises(ClientError) as e:
        sm.stop_training_job(TrainingJobName=stopped)
    assert error_code(e) == "ValidationException"


PIPE_SCRIPT = b"""
import os
print("train dir exists:", os.path.exists("/opt/ml/input/data/train"), flush=True)
for epoch in range(2):
    with open(f"/opt/ml/input/data/train_{epoch}", "rb") as pipe:
        data = pipe.read()
    print(f"epoch {epoch} read {len(data)} bytes, {data.count(b'row')} rows", flush=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "done"), "w").write("yes")
"""


def test_pipe_mode_streams_each_epoch_through_a_named_pipe(sm, s3, make_client, bucket):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pipe.py")
        info.size = len(PIPE_SCRIPT)
        tar.addfile(info, io.BytesIO(PIPE_SCRIPT))
    s3.put_object(Bucket=bucket, Key="pipe/code/sourcedir.tar.gz", Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key="pipe/data/a.txt", Body=b"row1\nrow2\n")
    s3.put_object(Bucket=bucket, Key="pipe/data/b.txt", Body=b"row3\n")
    name = unique("pipe")
    request = job_request(
        name, PYTORCH, bucket,
        {"sagemaker_program": json.dumps("pipe.py"),
         "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/pipe/code/sourcedir.tar.gz")},
        [channel("train", f"s3://{bucket}/pipe/data/")])
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    sm.create_training_job(**request)
    job = wait_for(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    logs = make_client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix=name + "/")["logStreams"][0]
    messages = [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"],
        startFromHead=True)["events"]]
    assert messages == ["train dir exists: False", "epoch 0 read 15 bytes, 3 rows",
                        "epoch 1 read 15 bytes, 3 rows"]

    # A built-in algorithm reads its Pipe-mode channel the same way.
    s3.put_object(Bucket=bucket, Key="pipe/xgb/data.csv", Body=regression_csv(100, 4))
    builtin = unique("pipexgb")
    request = job_request(builtin, XGBOOST, bucket, {"num_round": "5"},
                          [channel("train", f"s3://{bucket}/pipe/xgb/", "text/csv")])
    request["InputDataConfig"][0]["InputMode"] = "Pipe"
    sm.create_training_job(**request)
    job = wait_for(sm, builtin)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "train:rmse" in {m["MetricName"] for m in job["FinalMetricDataList"]}


def test_a_failing_script_reports_its_exit_code_and_last_output(sm, s3, bucket):
    script = b"print('loading data')\nraise ValueError('column 7 is not numeric')\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("fail.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    s3.put_object(Bucket=bucket, Key="fail/sourcedir.tar.gz", Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key="fail/data/x.txt", Body=b"x")
    name = unique("fails")
    sm.create_training_job(**job_request(
        name, PYTORCH, bucket,
        {"sagemaker_program": json.dumps("fail.py"),
         "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/fail/sourcedir.tar.gz")},
        [channel("train", f"s3://{bucket}/fail/data/")]))
    job = wait_for(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    assert "ValueError: column 7 is not numeric" in reason
    assert 'Command "python3 /opt/ml/code/fail.py"' in reason
    messages = [t["StatusMessage"] for t in job["SecondaryStatusTransitions"]]
    assert all(messages), job["SecondaryStatusTransitions"]


def test_create_rejects_what_nimbus_cannot_run(sm, bucket):
    base = job_request(unique("x"), XGBOOST, bucket, {"num_round": "1"},
                       [channel("train", f"s3://{bucket}/xgb/train/", "text/csv")])
    unknown = dict(base, TrainingJobName=unique("img"),
                   AlgorithmSpecification={"TrainingImage": "123.dkr.ecr.us-east-1.amazonaws.com/mystery:1",
                                           "TrainingInputMode": "File"})
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**unknown)
    assert error_code(e) == "ValidationException"
    assert "mystery:1" in str(e.value)
    two = dict(base, TrainingJobName=unique("two"),
               ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2,
                               "VolumeSizeInGB": 5})
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**two)
    assert "InstanceCount" in str(e.value)
    sm.create_training_job(**base)
    with pytest.raises(ClientError) as e:
        sm.create_training_job(**base)
    assert error_code(e) == "ResourceInUse"
    with pytest.raises(ClientError) as e:
        sm.describe_training_job(TrainingJobName=unique("missing"))
    assert error_code(e) == "ValidationException"


def test_aws_cli_lists_and_describes(aws_cli, sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="cli/train/data.csv", Body=regression_csv(50, 9))
    name = unique("cli")
    request = job_request(name, XGBOOST, bucket, {"num_round": "3"},
                          [channel("train", f"s3://{bucket}/cli/train/", "text/csv")])
    rc, out, err = aws_cli("sagemaker", "create-training-job", "--cli-input-json",
                           json.dumps(request))
    assert rc == 0, err
    rc, out, err = aws_cli("sagemaker", "wait", "training-job-completed-or-stopped",
                           "--training-job-name", name)
    assert rc == 0, err
    rc, out, err = aws_cli("sagemaker", "describe-training-job", "--training-job-name", name)
    assert out["TrainingJobStatus"] == "Completed"
    rc, out, err = aws_cli("sagemaker", "list-training-jobs", "--name-contains", name,
                           "--status-equals", "Completed")
    assert [j["TrainingJobName"] for j in out["TrainingJobSummaries"]] == [name]
