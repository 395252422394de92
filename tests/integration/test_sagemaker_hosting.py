"""SageMaker hosting through boto3 and the AWS CLI: models, endpoint configs, endpoints that
keep `serve` workers running, the sagemaker-runtime data plane (InvokeEndpoint and
InvokeEndpointAsync) with SageMaker's errors and CloudWatch metrics, blue/green updates
under load, capacity changes, a killed model server being replaced, and data capture."""
import glob
import io
import json
import os
import random
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError, WaiterError

from conftest import ACCOUNT, REGION, error_code

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
INSTANCE = "ml.t2.medium"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def sm(make_client):
    return make_client("sagemaker")


@pytest.fixture(scope="module")
def runtime(make_client):
    return make_client("sagemaker-runtime")


@pytest.fixture(scope="module")
def s3(make_client):
    return make_client("s3")


@pytest.fixture(scope="module")
def bucket(s3):
    name = unique("hosting")
    s3.create_bucket(Bucket=name)
    return name


def regression_rows(rows, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        out.append((3 * x1 - 2 * x2 + 1 + rng.gauss(0, 0.05), x1, x2))
    return out


@pytest.fixture(scope="module")
def trained(sm, s3, bucket):
    """An XGBoost regression model trained by a Nimbus training job, and the booster that
    python-xgboost loads from the same artifact (the reference predictions)."""
    import xgboost
    rows = regression_rows(400, 1)
    body = "".join(f"{y:.5f},{a:.5f},{b:.5f}\n" for y, a, b in rows).encode()
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=body)
    name = unique("xgb")
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={"num_round": "30", "objective": "reg:squarederror", "max_depth": "3"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    b, key = uri[len("s3://"):].split("/", 1)
    archive = s3.get_object(Bucket=b, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        model_bytes = tar.extractfile("xgboost-model").read()
    with tempfile.NamedTemporaryFile(suffix=".model") as f:
        f.write(model_bytes)
        f.flush()
        booster = xgboost.Booster(model_file=f.name)
    return {"model_data": uri, "booster": booster}


def reference(trained, features):
    import numpy as np
    import xgboost
    return trained["booster"].predict(xgboost.DMatrix(np.array(features, dtype=np.float32)))


def parse_predictions(body):
    text = body.decode().strip()
    return [float(v) for v in text.replace("\n", ",").split(",") if v]


def make_model(sm, trained, name=None):
    name = name or unique("model")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": trained["model_data"]})
    return name


def make_config(sm, model, variants=(("AllTraffic", 1, 1.0),), **extra):
    name = unique("config")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": v, "ModelName": model, "InitialInstanceCount": count,
         "InstanceType": INSTANCE, "InitialVariantWeight": weight}
        for v, count, weight in variants], **extra)
    return name


def wait_in_service(sm, name, timeout=120):
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": timeout})
    except WaiterError:
        d = sm.describe_endpoint(EndpointName=name)
        raise AssertionError(f"{name} is {d['EndpointStatus']}: {d.get('FailureReason')}")
    return sm.describe_endpoint(EndpointName=name)


def delete_endpoint(sm, name):
    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name,
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 60})


@pytest.fixture(scope="module")
def endpoint(sm, trained):
    model = make_model(sm, trained)
    config = make_config(sm, model)
    name = unique("endpoint")
    arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=config)["EndpointArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name.lower()}"
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] in ("Creating", "InService")
    described = wait_in_service(sm, name)
    yield {"name": name, "config": config, "model": model, "described": described}
    delete_endpoint(sm, name)


def test_models_and_configs_are_described_and_listed(sm, trained, endpoint):
    model = sm.describe_model(ModelName=endpoint["model"])
    assert model["PrimaryContainer"]["Image"] == XGBOOST
    assert model["ModelArn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{endpoint['model'].lower()}"
    assert endpoint["model"] in [m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]]
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["config"])
    assert config["ProductionVariants"][0]["ModelName"] == endpoint["model"]
    assert config["ProductionVariants"][0]["InitialVariantWeight"] == 1.0
    names = [c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]]
    assert endpoint["config"] in names
    with pytest.raises(ClientError) as e:
        sm.describe_model(ModelName="no-such-model")
    assert error_code(e) == "ValidationException" and "Could not find model" in str(e.value)
    with pytest.raises(ClientError) as e:
        sm.create_model(ModelName=endpoint["model"], ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": trained["model_data"]})
    assert "Cannot create already existing model" in str(e.value)
    with pytest.raises(ClientError) as e:
        make_config(sm, "no-such-model")
    assert "Could not find model" in str(e.value)


def test_endpoint_is_in_service_with_its_variant(sm, endpoint):
    d = endpoint["described"]
    assert d["EndpointStatus"] == "InService"
    assert d["EndpointConfigName"] == endpoint["config"]
    [variant] = d["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["CurrentInstanceCount"] == 1 and variant["DesiredInstanceCount"] == 1
    assert variant["CurrentWeight"] == 1.0
    assert variant["DeployedImages"][0]["SpecifiedImage"] == XGBOOST
    listed = sm.list_endpoints(NameContains=endpoint["name"])["Endpoints"]
    assert [e["EndpointStatus"] for e in listed] == ["InService"]


def test_invoke_endpoint_answers_like_the_model(runtime, trained, endpoint):
    rows = [(a, b) for _, a, b in regression_rows(50, 7)]
    body = "\n".join(f"{a},{b}" for a, b in rows)
    r = runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv", Body=body)
    assert r["InvokedProductionVariant"] == "AllTraffic"
    got = parse_predictions(r["Body"].read())
    want = reference(trained, rows)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert abs(g - w) < 1e-4
    one = runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv",
                                  Body="0.5,-0.25")
    assert abs(parse_predictions(one["Body"].read())[0] - reference(trained, [(0.5, -0.25)])[0]) < 1e-4


def test_bad_requests_get_sagemakers_errors_and_the_endpoint_stays_up(runtime, sm, endpoint):
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body="1,2")
    assert error_code(e) == "ValidationError"
    assert f"Endpoint no-such-endpoint of account {ACCOUNT} not found" in str(e.value)
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv",
                                Body="1,abc\n")
    assert error_code(e) == "ModelError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "Received client error (400)" in str(e.value)
    assert e.value.response["OriginalStatusCode"] == 400
    assert "abc" in e.value.response["OriginalMessage"]
    assert e.value.response["LogStreamArn"].endswith(f"log-group:/aws/sagemaker/Endpoints/{endpoint['name']}")
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="image/png",
                                Body=b"\x89PNG")
    assert error_code(e) == "ModelError" and "415" in str(e.value)
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv",
                                Body=b"1,2\n" * (2 * 1024 * 1024))
    assert error_code(e) == "ValidationError" and "6291456" in str(e.value)
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv",
                                Body="1,2", TargetVariant="NoSuchVariant")
    assert error_code(e) == "ValidationError"
    r = runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv", Body="1,2")
    assert len(parse_predictions(r["Body"].read())) == 1
    assert sm.describe_endpoint(EndpointName=endpoint["name"])["EndpointStatus"] == "InService"


def test_invocations_are_recorded_in_cloudwatch(make_client, runtime, endpoint):
    cw = make_client("cloudwatch")
    for _ in range(5):
        runtime.invoke_endpoint(EndpointName=endpoint["name"], ContentType="text/csv", Body="1,2")
    dims = [{"Name": "EndpointName", "Value": endpoint["name"]},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    deadline = time.time() + 10
    while True:
        now = time.time()
        stats = {}
        for metric in ("Invocations", "ModelLatency", "OverheadLatency", "Invocation4XXErrors"):
            points = cw.get_metric_statistics(
                Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims,
                StartTime=now - 600, EndTime=now + 60, Period=60,
                Statistics=["Sum", "Average", "SampleCount"])["Datapoints"]
            stats[metric] = points
        if sum(p["Sum"] for p in stats["Invocations"]) >= 5 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert sum(p["Sum"] for p in stats["Invocations"]) >= 5
    assert stats["ModelLatency"] and all(p["Average"] > 0 for p in stats["ModelLatency"])
    assert stats["OverheadLatency"]
    logs = make_client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/Endpoints/")["logGroups"]
    assert f"/aws/sagemaker/Endpoints/{endpoint['name']}" in [g["logGroupName"] for g in groups]


def test_aws_cli_invokes_and_describes(aws_cli, endpoint, tmp_path):
    payload = tmp_path / "in.csv"
    payload.write_text("0.1,0.2\n0.3,0.4\n")
    out = tmp_path / "out.csv"
    rc, result, err = aws_cli("sagemaker-runtime", "invoke-endpoint", "--endpoint-name",
                              endpoint["name"], "--content-type", "text/csv", "--body",
                              f"fileb://{payload}", str(out))
    assert rc == 0, err
    assert result["InvokedProductionVariant"] == "AllTraffic"
    assert len(parse_predictions(out.read_bytes())) == 2
    rc, result, err = aws_cli("sagemaker", "describe-endpoint", "--endpoint-name", endpoint["name"])
    assert rc == 0, err
    assert result["EndpointStatus"] == "InService"


def instance_dirs(server):
    return sorted(glob.glob(os.path.join(server.data_dir, "jobs", "endpoint", "*")))


def model_server_pids(job_dir):
    """The payload processes (model servers) of a serve worker: processes whose cwd is the
    job directory and whose parent is the worker's supervisor."""
    real = os.path.realpath(job_dir)
    inside = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.path.realpath(f"/proc/{entry}/cwd") != real:
                continue
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            inside[int(entry)] = ppid
        except OSError:
            continue
    return [pid for pid, ppid in inside.items() if ppid in inside]


def test_a_killed_model_server_is_replaced(server, sm, runtime, trained):
    model = make_model(sm, trained)
    name = unique("crash")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=make_config(sm, model))
    wait_in_service(sm, name)
    before = set(instance_dirs(server))
    runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2")
    killed = []
    for d in before:
        with open(os.path.join(d, "spec.json")) as f:
            spec = json.load(f)
        if not os.path.exists(os.path.join(d, "serve.sock")):
            continue
        for pid in model_server_pids(d):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    assert killed
    deadline = time.time() + 30
    answered = False
    while time.time() < deadline:
        try:
            runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2")
            answered = True
            break
        except ClientError:
            time.sleep(0.3)
    assert answered
    d = sm.describe_endpoint(EndpointName=name)
    assert d["EndpointStatus"] == "InService"
    assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    delete_endpoint(sm, name)


def test_blue_green_update_under_load_fails_no_request(sm, runtime, trained):
    model = make_model(sm, trained)
    name = unique("bluegreen")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=make_config(sm, model))
    wait_in_service(sm, name)
    new_config = make_config(sm, model, variants=(("Green", 1, 1.0),))
    failures, variants, stop = [], set(), threading.Event()

    def load():
        while not stop.is_set():
            try:
                r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2")
                variants.add(r["InvokedProductionVariant"])
                r["Body"].read()
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
        assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] in ("Updating", "InService")
        with pytest.raises(ClientError) as e:
            sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
        assert "Cannot update in-progress endpoint" in str(e.value)
        d = wait_in_service(sm, name)
        time.sleep(3)  # the old instance drains and stops under load
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert variants == {"AllTraffic", "Green"}
    assert d["EndpointConfigName"] == new_config
    assert [v["VariantName"] for v in d["ProductionVariants"]] == ["Green"]
    r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2")
    assert r["InvokedProductionVariant"] == "Green"
    delete_endpoint(sm, name)


def test_weights_and_capacities_change_the_instance_count(sm, runtime, trained):
    model = make_model(sm, trained)
    name = unique("capacity")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=make_config(
        sm, model, variants=(("A", 1, 1.0), ("B", 1, 1.0))))
    wait_in_service(sm, name)
    seen = {runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                    Body="1,2")["InvokedProductionVariant"] for _ in range(40)}
    assert seen == {"A", "B"}
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredInstanceCount": 2},
        {"VariantName": "B", "DesiredWeight": 0.0}])
    d = wait_in_service(sm, name)
    a, b = d["ProductionVariants"]
    assert (a["VariantName"], a["CurrentInstanceCount"], a["DesiredInstanceCount"]) == ("A", 2, 2)
    assert b["DesiredWeight"] == 0.0
    seen = {runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                    Body="1,2")["InvokedProductionVariant"] for _ in range(20)}
    assert seen == {"A"}
    r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2",
                                TargetVariant="B")
    assert r["InvokedProductionVariant"] == "B"
    with pytest.raises(ClientError) as e:
        sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "C", "DesiredInstanceCount": 1}])
    assert error_code(e) == "ValidationException"
    delete_endpoint(sm, name)


def test_data_capture_writes_sagemakers_jsonl(sm, s3, runtime, trained, bucket):
    model = make_model(sm, trained)
    config = make_config(sm, model, DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}})
    name = unique("capture")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    d = wait_in_service(sm, name)
    assert d["DataCaptureConfig"]["EnableCapture"] is True
    assert d["DataCaptureConfig"]["CurrentSamplingPercentage"] == 100
    bodies = [f"{i / 10},{i / 20}" for i in range(12)]
    outputs = {}
    for i, body in enumerate(bodies):
        r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body,
                                    InferenceId=f"req-{i}")
        outputs[body] = r["Body"].read().decode()
    deadline = time.time() + 15
    records = []
    while time.time() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(
            Bucket=bucket, Prefix=f"capture/{name}/AllTraffic/").get("Contents", [])]
        records = []
        for key in keys:
            assert key.endswith(".jsonl")
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            records += [json.loads(line) for line in text.splitlines() if line.strip()]
        if len(records) >= len(bodies):
            break
        time.sleep(0.5)
    assert len(records) == len(bodies)
    for record in records:
        data = record["captureData"]
        assert data["endpointInput"]["encoding"] == "CSV"
        assert data["endpointInput"]["mode"] == "INPUT"
        body = data["endpointInput"]["data"]
        assert data["endpointOutput"]["data"].strip() == outputs[body].strip()
        assert record["eventMetadata"]["inferenceId"].startswith("req-")
    delete_endpoint(sm, name)


def test_invoke_endpoint_async_reads_and_writes_s3(sm, s3, runtime, trained, bucket):
    model = make_model(sm, trained)
    config = make_config(sm, model, AsyncInferenceConfig={"OutputConfig": {
        "S3OutputPath": f"s3://{bucket}/async-out"}})
    name = unique("async")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    wait_in_service(sm, name)
    s3.put_object(Bucket=bucket, Key="async-in/good.csv", Body=b"0.5,-0.25\n")
    s3.put_object(Bucket=bucket, Key="async-in/bad.csv", Body=b"x,y\n")
    good = runtime.invoke_endpoint_async(EndpointName=name, ContentType="text/csv",
                                         InputLocation=f"s3://{bucket}/async-in/good.csv")
    bad = runtime.invoke_endpoint_async(EndpointName=name, ContentType="text/csv",
                                        InputLocation=f"s3://{bucket}/async-in/bad.csv",
                                        InferenceId="bad-one")
    assert good["OutputLocation"].startswith(f"s3://{bucket}/async-out/")
    assert bad["InferenceId"] == "bad-one"

    def fetch(uri):
        b, key = uri[len("s3://"):].split("/", 1)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                return s3.get_object(Bucket=b, Key=key)["Body"].read()
            except ClientError:
                time.sleep(0.3)
        raise AssertionError(f"{uri} never appeared")

    assert abs(parse_predictions(fetch(good["OutputLocation"]))[0] -
               reference(trained, [(0.5, -0.25)])[0]) < 1e-4
    # Without S3FailurePath (newer than Debian's botocore) failures land beside the outputs.
    assert b"400" in fetch(f"s3://{bucket}/async-out/bad-one-error.out")
    delete_endpoint(sm, name)


def test_a_model_that_cannot_load_fails_the_endpoint(sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="broken/model.tar.gz", Body=b"not a tarball")
    model = unique("broken")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST, "ModelDataUrl": f"s3://{bucket}/broken/model.tar.gz"})
    name = unique("failed")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=make_config(sm, model))
    deadline = time.time() + 60
    while True:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] != "Creating" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert d["EndpointStatus"] == "Failed"
    assert d["FailureReason"]
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                  WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    delete_endpoint(sm, name)


def test_deleted_endpoints_are_gone(sm, runtime, trained):
    model = make_model(sm, trained)
    config = make_config(sm, model)
    name = unique("gone")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    wait_in_service(sm, name)
    delete_endpoint(sm, name)
    with pytest.raises(ClientError) as e:
        sm.describe_endpoint(EndpointName=name)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2")
    assert error_code(e) == "ValidationError"
    sm.delete_endpoint_config(EndpointConfigName=config)
    sm.delete_model(ModelName=model)
    with pytest.raises(ClientError):
        sm.describe_endpoint_config(EndpointConfigName=config)


INFERENCE_PY = '''
import json
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(body, content_type):
    if content_type == "application/json":
        return np.array(json.loads(body)["instances"], dtype=float)
    raise ValueError("unsupported content type " + content_type)


def predict_fn(data, model):
    return model.predict_proba(data)


def output_fn(prediction, accept):
    return json.dumps({"probabilities": prediction.tolist()}), "application/json"
'''

SCALER_PY = '''
import numpy as np


def model_fn(model_dir):
    return float(open(model_dir + "/scale.txt").read())


def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines() if line])


def predict_fn(data, scale):
    return data * scale


def output_fn(prediction, accept):
    return "\\n".join(",".join(repr(float(v)) for v in row) for row in prediction), "text/csv"
'''


def tarball(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_script_mode_model_serves_with_its_inference_script(sm, s3, runtime, bucket):
    """A scikit-learn model whose model.tar.gz holds code/inference.py, as the SDK's
    SKLearnModel packs it, served under Debian's python3."""
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    with tempfile.NamedTemporaryFile(suffix=".joblib") as f:
        joblib.dump(clf, f.name)
        model_bytes = open(f.name, "rb").read()
    s3.put_object(Bucket=bucket, Key="sklearn/model.tar.gz", Body=tarball({
        "model.joblib": model_bytes, "code/inference.py": INFERENCE_PY.encode()}))
    model = unique("sklearn")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "ModelDataUrl": f"s3://{bucket}/sklearn/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    name = unique("script")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=make_config(sm, model))
    wait_in_service(sm, name)
    r = runtime.invoke_endpoint(EndpointName=name, ContentType="application/json",
                                Body=json.dumps({"instances": X[:5].tolist()}))
    got = np.array(json.loads(r["Body"].read())["probabilities"])
    assert np.allclose(got, clf.predict_proba(X[:5]), atol=1e-9)
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/plain", Body="1,2,3,4")
    assert error_code(e) == "ModelError" and "500" in str(e.value)
    assert "unsupported content type" in str(e.value)
    delete_endpoint(sm, name)


def test_inference_pipeline_runs_its_containers_in_series(sm, s3, runtime, trained, bucket):
    s3.put_object(Bucket=bucket, Key="scaler/model.tar.gz", Body=tarball({
        "scale.txt": b"0.5", "code/scaler.py": SCALER_PY.encode()}))
    model = unique("pipeline")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, Containers=[
        {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
         "ModelDataUrl": f"s3://{bucket}/scaler/model.tar.gz",
         "Environment": {"SAGEMAKER_PROGRAM": "scaler.py"}},
        {"Image": XGBOOST, "ModelDataUrl": trained["model_data"]}])
    assert len(sm.describe_model(ModelName=model)["Containers"]) == 2
    name = unique("pipeline")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=make_config(sm, model))
    wait_in_service(sm, name)
    rows = [(0.8, -0.4), (0.2, 0.6)]
    r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                Body="\n".join(f"{a},{b}" for a, b in rows))
    got = parse_predictions(r["Body"].read())
    want = reference(trained, [(a * 0.5, b * 0.5) for a, b in rows])
    assert all(abs(g - w) < 1e-4 for g, w in zip(got, want)) and len(got) == 2
    delete_endpoint(sm, name)


def test_serverless_variant_serves_and_reports_its_config(sm, runtime, trained):
    model = make_model(sm, trained)
    config = unique("serverless")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    name = unique("serverless")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    d = wait_in_service(sm, name)
    [variant] = d["ProductionVariants"]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "CurrentInstanceCount" not in variant
    r = runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="0.5,-0.25")
    assert abs(parse_predictions(r["Body"].read())[0] - reference(trained, [(0.5, -0.25)])[0]) < 1e-4
    delete_endpoint(sm, name)


def test_endpoints_keep_serving_across_a_server_crash(tmp_path, trained, s3, bucket):
    """kill -9 the server: its model servers keep running, and the restarted server
    re-attaches them (same processes, no relaunch) and routes to them again."""
    import boto3
    from botocore.config import Config
    from conftest import ROOT_KEY, ROOT_SECRET, Server

    env = {"NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY, "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET}

    def client(server, service):
        return boto3.client(service, endpoint_url=server.endpoint, region_name=REGION,
                            aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
                            config=Config(retries={"max_attempts": 1}))

    archive = s3.get_object(Bucket=trained["model_data"][5:].split("/", 1)[0],
                            Key=trained["model_data"][5:].split("/", 1)[1])["Body"].read()
    server = Server(tmp_path / "data", env)
    try:
        own_s3, sm = client(server, "s3"), client(server, "sagemaker")
        own_s3.create_bucket(Bucket="models")
        own_s3.put_object(Bucket="models", Key="xgb/model.tar.gz", Body=archive)
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": XGBOOST, "ModelDataUrl": "s3://models/xgb/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
            "InstanceType": INSTANCE}])
        sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
        wait_in_service(sm, "e")
        before = client(server, "sagemaker-runtime").invoke_endpoint(
            EndpointName="e", ContentType="text/csv", Body="0.5,-0.25")["Body"].read()
        [instance] = instance_dirs(server)
        pids = model_server_pids(instance)
        assert pids
        server.stop(signal.SIGKILL)

        server = Server(tmp_path / "data", env)
        runtime, sm = client(server, "sagemaker-runtime"), client(server, "sagemaker")
        deadline = time.time() + 30
        while True:
            try:
                after = runtime.invoke_endpoint(EndpointName="e", ContentType="text/csv",
                                                Body="0.5,-0.25")["Body"].read()
                break
            except ClientError:
                assert time.time() < deadline
                time.sleep(0.2)
        assert after == before
        assert model_server_pids(instance) == pids
        assert sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "InService"
        delete_endpoint(sm, "e")
        assert not os.path.exists(instance)
    finally:
        server.stop()
