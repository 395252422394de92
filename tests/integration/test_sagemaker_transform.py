"""SageMaker batch transform through boto3 and the AWS CLI: an XGBoost model trained by a
training job, served in a transform job whose .out files are checked row by row against
python-xgboost's own predictions from the same model file; data processing (InputFilter,
JoinSource, OutputFilter), model errors, stops, Describe/List and the errors SageMaker
gives."""
import io
import random
import tarfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, error_code

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
TERMINAL = ("Completed", "Failed", "Stopped")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


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
    name = unique("transform")
    s3.create_bucket(Bucket=name)
    return name


def features(rows, seed):
    """Rows of two features, rounded as the CSV files hold them (a tree split may fall
    between a value and its rounding)."""
    rng = random.Random(seed)
    return [(round(rng.uniform(-1, 1), 5), round(rng.uniform(-1, 1), 5)) for _ in range(rows)]


def feature_csv(rows):
    return "".join(f"{x1:.5f},{x2:.5f}\n" for x1, x2 in rows).encode()


@pytest.fixture(scope="module")
def model(sm, s3, bucket, tmp_path_factory):
    """An XGBoost regressor trained by a training job, as a SageMaker Model, and the same
    model file loaded by python-xgboost."""
    xgboost = pytest.importorskip("xgboost")
    rng = random.Random(1)
    lines = []
    for x1, x2 in features(500, 1):
        lines.append(f"{3 * x1 - 2 * x2 + x1 * x2 + rng.gauss(0, 0.05):.5f},{x1:.5f},{x2:.5f}")
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=("\n".join(lines) + "\n").encode())
    job = unique("xgb")
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={"num_round": "30", "objective": "reg:squarederror", "max_depth": "4",
                         "eta": "0.3"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv",
                          "DataSource": {"S3DataSource": {
                              "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/",
                              "S3DataDistributionType": "FullyReplicated"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=job, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    trained = sm.describe_training_job(TrainingJobName=job)
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    artifact = trained["ModelArtifacts"]["S3ModelArtifacts"]

    name = unique("xgb-model")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": artifact})

    art_bucket, key = artifact[len("s3://"):].split("/", 1)
    body = s3.get_object(Bucket=art_bucket, Key=key)["Body"].read()
    path = tmp_path_factory.mktemp("xgb") / "xgboost-model"
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        path.write_bytes(tar.extractfile("xgboost-model").read())
    booster = xgboost.Booster()
    booster.load_model(str(path))
    return name, booster


def predict(booster, rows):
    import numpy as np
    import xgboost
    return booster.predict(xgboost.DMatrix(np.array(rows, dtype=np.float32)))


def transform_request(name, model_name, source, output, **extra):
    request = {
        "TransformJobName": name,
        "ModelName": model_name,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": source}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": output, "Accept": "text/csv",
                            "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def wait_for(sm, name, timeout=180):
    deadline = time.time() + timeout
    while True:
        job = sm.describe_transform_job(TransformJobName=name)
        if job["TransformJobStatus"] in TERMINAL:
            return job
        assert time.time() < deadline, f"{name} still {job['TransformJobStatus']}"
        time.sleep(0.25)


def log_messages(logs, name, expect=None, timeout=15):
    """The messages of the job's log streams; waits until one contains `expect`."""
    deadline = time.time() + timeout
    while True:
        messages = []
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=name + "/")["logStreams"]
        except ClientError as e:
            # The group appears with the first job's first line.
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            streams = []
        for stream in streams:
            events = logs.get_log_events(logGroupName=LOG_GROUP,
                                         logStreamName=stream["logStreamName"],
                                         startFromHead=True)["events"]
            messages += [e["message"] for e in events]
        if expect is None or any(expect in m for m in messages) or time.time() > deadline:
            return messages
        time.sleep(0.25)


def read(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def test_transform_matches_python_xgboost_row_by_row(sm, s3, logs, bucket, model):
    model_name, booster = model
    inputs = {"in/a.csv": features(300, 2), "in/b.csv": features(70000, 3),
              "in/sub/c.csv": features(5, 4)}
    for key, rows in inputs.items():
        s3.put_object(Bucket=bucket, Key=key, Body=feature_csv(rows))
    name = unique("tj")
    arn = sm.create_transform_job(**transform_request(
        name, model_name, f"s3://{bucket}/in/", f"s3://{bucket}/out",
        BatchStrategy="MultiRecord", MaxPayloadInMB=1, MaxConcurrentTransforms=2,
        Tags=[{"Key": "team", "Value": "ml"}]))["TransformJobArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/{name}"
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    job = sm.describe_transform_job(TransformJobName=name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ModelName"] == model_name
    assert job["CreationTime"] <= job["TransformStartTime"] <= job["TransformEndTime"]
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 1
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["TransformInput"]["CompressionType"] == "None"
    assert job["DataProcessing"] == {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    assert "FailureReason" not in job
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]

    for key, rows in inputs.items():
        out = read(s3, bucket, "out/" + key[len("in/"):] + ".out")
        lines = out.split("\n")
        assert lines[-1] == "" and len(lines) == len(rows) + 1, key
        got = [float(v) for v in lines[:-1]]
        want = predict(booster, rows)
        assert max(abs(g - w) for g, w in zip(got, want)) < 1e-4, key

    messages = log_messages(logs, name, expect="Transformed 3 files")
    text = "\n".join(messages)
    assert "[sagemaker logs]: MaxConcurrentTransforms=2, MaxPayloadInMB=1, " \
           "BatchStrategy=MULTI_RECORD" in text
    # The 70000-row file is over 1 MB: it went out in more than one request.
    b_line = next(m for m in messages if f"{bucket}/in/b.csv: 70000 records in" in m)
    assert int(b_line.split(" records in ")[1].split(" ")[0]) >= 2


def test_input_filter_join_and_output_filter(sm, s3, bucket, model):
    model_name, booster = model
    rows = features(200, 5)
    body = "".join(f"id-{i},{x1:.5f},{x2:.5f}\n" for i, (x1, x2) in enumerate(rows))
    s3.put_object(Bucket=bucket, Key="ids/data.csv", Body=body.encode())
    name = unique("tj-join")
    sm.create_transform_job(**transform_request(
        name, model_name, f"s3://{bucket}/ids/", f"s3://{bucket}/ids-out/",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input",
                        "OutputFilter": "$[0,-1]"}))
    job = wait_for(sm, name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input",
                                     "OutputFilter": "$[0,-1]"}
    lines = read(s3, bucket, "ids-out/data.csv.out").splitlines()
    want = predict(booster, rows)
    assert len(lines) == len(rows)
    for i, line in enumerate(lines):
        ident, value = line.split(",")
        assert ident == f"id-{i}"
        assert abs(float(value) - want[i]) < 1e-4


def test_a_model_error_fails_the_job_and_the_log_names_the_record(sm, s3, logs, bucket, model):
    model_name, _ = model
    s3.put_object(Bucket=bucket, Key="bad/good.csv", Body=b"0.1,0.2\n")
    s3.put_object(Bucket=bucket, Key="bad/zbroken.csv", Body=b"0.1,0.2\n0.3,oops\n")
    name = unique("tj-bad")
    sm.create_transform_job(**transform_request(
        name, model_name, f"s3://{bucket}/bad/", f"s3://{bucket}/bad-out/"))
    job = wait_for(sm, name)
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: See job logs for more information"
    assert job["TransformEndTime"] >= job["TransformStartTime"]
    messages = log_messages(logs, name, expect="zbroken.csv: ClientError: 400")
    text = "\n".join(messages)
    assert f"{bucket}/bad/zbroken.csv: ClientError: 400" in text
    assert "records 1 to 2 (bytes 0 to 16 of the file)" in text
    # As SageMaker does, the output of the file that succeeded is uploaded, not the other.
    assert read(s3, bucket, "bad-out/good.csv.out").strip() != ""
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad-out/zbroken.csv.out")


def test_stop_ends_a_running_job_as_stopped(sm, s3, bucket, model):
    model_name, _ = model
    # One request per row keeps the job busy long enough to be stopped while it runs.
    s3.put_object(Bucket=bucket, Key="slow/data.csv", Body=feature_csv(features(400000, 6)))
    name = unique("tj-stop")
    sm.create_transform_job(**transform_request(
        name, model_name, f"s3://{bucket}/slow/", f"s3://{bucket}/slow-out/",
        BatchStrategy="SingleRecord", MaxConcurrentTransforms=1))
    deadline = time.time() + 60
    while "TransformStartTime" not in sm.describe_transform_job(TransformJobName=name):
        assert time.time() < deadline
        time.sleep(0.1)
    sm.stop_transform_job(TransformJobName=name)
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] in (
        "Stopping", "Stopped")
    job = wait_for(sm, name, timeout=60)
    assert job["TransformJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as e:
        sm.stop_transform_job(TransformJobName=name)
    assert error_code(e) == "ValidationException"


def test_list_filters_and_sorts(sm, s3, bucket, model):
    model_name, _ = model
    s3.put_object(Bucket=bucket, Key="list/data.csv", Body=feature_csv(features(3, 7)))
    prefix = unique("tj-list")
    names = [f"{prefix}-{i}" for i in range(3)]
    for n in names:
        sm.create_transform_job(**transform_request(
            n, model_name, f"s3://{bucket}/list/", f"s3://{bucket}/list-out/{n}"))
    for n in names:
        assert wait_for(sm, n)["TransformJobStatus"] == "Completed"
    listed = sm.list_transform_jobs(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    summaries = listed["TransformJobSummaries"]
    assert [s["TransformJobName"] for s in summaries] == names
    assert all(s["TransformJobStatus"] == "Completed" and "TransformEndTime" in s
               for s in summaries)
    page = sm.list_transform_jobs(NameContains=prefix, MaxResults=2)
    assert len(page["TransformJobSummaries"]) == 2 and "NextToken" in page
    rest = sm.list_transform_jobs(NameContains=prefix, MaxResults=2, NextToken=page["NextToken"])
    assert len(rest["TransformJobSummaries"]) == 1
    assert sm.list_transform_jobs(NameContains=prefix,
                                  StatusEquals="Failed")["TransformJobSummaries"] == []


def test_create_validates_like_sagemaker(sm, s3, bucket, model):
    model_name, _ = model
    s3.put_object(Bucket=bucket, Key="valid/data.csv", Body=b"1,2\n")
    source, out = f"s3://{bucket}/valid/", f"s3://{bucket}/valid-out/"

    def refused(request, code="ValidationException"):
        with pytest.raises(ClientError) as e:
            sm.create_transform_job(**request)
        assert error_code(e) == code, e.value.response
        return e.value.response["Error"]["Message"]

    missing = unique("no-such-model")
    message = refused(transform_request(unique("tj"), missing, source, out))
    assert message == (f'Could not find model "arn:aws:sagemaker:{REGION}:{ACCOUNT}:'
                       f'model/{missing}".')
    assert "TFRecord" in refused(transform_request(unique("tj"), model_name, source, out,
                                                   TransformInput={"SplitType": "TFRecord"}))
    assert "100" in refused(transform_request(unique("tj"), model_name, source, out,
                                              MaxPayloadInMB=101))
    assert "100" in refused(transform_request(unique("tj"), model_name, source, out,
                                              MaxPayloadInMB=30, MaxConcurrentTransforms=4))
    assert "No S3 objects found under S3 URL" in refused(transform_request(
        unique("tj"), model_name, f"s3://{bucket}/nothing-here/", out))
    assert "InstanceCount" in refused(transform_request(
        unique("tj"), model_name, source, out,
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 2}))
    assert "CSV and JSON" in refused(transform_request(
        unique("tj"), model_name, source, out,
        TransformInput={"ContentType": "application/x-recordio-protobuf"},
        DataProcessing={"JoinSource": "Input"}))

    name = unique("tj-dup")
    sm.create_transform_job(**transform_request(name, model_name, source, out))
    refused(transform_request(name, model_name, source, out), code="ResourceInUse")
    wait_for(sm, name)

    ghost = unique("ghost")
    with pytest.raises(ClientError) as e:
        sm.describe_transform_job(TransformJobName=ghost)
    assert error_code(e) == "ValidationException"
    assert e.value.response["Error"]["Message"] == f"Could not find requested job with name {ghost}"


def test_a_bad_input_filter_fails_the_job_with_a_client_error(sm, s3, bucket, model):
    model_name, _ = model
    s3.put_object(Bucket=bucket, Key="filter/data.csv", Body=b"1,2\n")
    name = unique("tj-filter")
    sm.create_transform_job(**transform_request(
        name, model_name, f"s3://{bucket}/filter/", f"s3://{bucket}/filter-out/",
        DataProcessing={"InputFilter": "$[7]"}))
    job = wait_for(sm, name)
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: ")
    assert "index 7 is out of range" in job["FailureReason"]


def test_aws_cli_describes_and_lists(aws_cli, sm, s3, bucket, model):
    model_name, _ = model
    s3.put_object(Bucket=bucket, Key="cli/data.csv", Body=feature_csv(features(4, 8)))
    name = unique("tj-cli")
    sm.create_transform_job(**transform_request(
        name, model_name, f"s3://{bucket}/cli/", f"s3://{bucket}/cli-out/"))
    wait_for(sm, name)
    rc, out, err = aws_cli("sagemaker", "describe-transform-job", "--transform-job-name", name)
    assert rc == 0, err
    assert out["TransformJobStatus"] == "Completed"
    assert out["TransformOutput"]["S3OutputPath"] == f"s3://{bucket}/cli-out/"
    rc, out, err = aws_cli("sagemaker", "list-transform-jobs", "--name-contains", name)
    assert rc == 0, err
    assert [j["TransformJobName"] for j in out["TransformJobSummaries"]] == [name]
