"""The SageMaker Python SDK's `SKLearn(...).fit({"train": ...}, logs=True)` path, replayed call
for call with boto3 (the SDK itself cannot be installed here). What is replayed, from
aws/sagemaker-python-sdk:

  Session.default_bucket()          sts GetCallerIdentity; s3 ListBuckets (Bucket.creation_date),
                                    CreateBucket when missing, HeadBucket with ExpectedBucketOwner
  Session.upload_data()             s3 Object(bucket, "data/train.csv").upload_file(path)
  fw_utils.tar_and_upload_dir()     sourcedir.tar.gz of the entry point (arcname = basename)
                                    uploaded to s3://<bucket>/<job>/source/sourcedir.tar.gz
  Session._get_train_request()      the CreateTrainingJob request of a Framework estimator:
                                    JSON-encoded hyperparameters incl. sagemaker_program,
                                    sagemaker_submit_directory, sagemaker_container_log_level,
                                    sagemaker_job_name, sagemaker_region; the default
                                    DebugHookConfig and ProfilerConfig; no EnableNetworkIsolation
                                    (sent only when True)
  session._logs_for_job()           _wait_until(DescribeTrainingJob); _logs_init; the TAILING ->
                                    JOB_COMPLETE -> COMPLETE state machine; _flush_log_streams
                                    (DescribeLogStreams prefix job + "/", orderBy LogStreamName,
                                    limit min(instance_count, 50), its nextToken loop); logs.py
                                    multi_stream_iter/log_stream (GetLogEvents with startTime =
                                    last timestamp, startFromHead, nextForwardToken until an empty
                                    page, and the Position(timestamp, skip) bookkeeping);
                                    secondary_training_status_changed/_message; _check_job_status
  Estimator.model_data              DescribeTrainingJob ModelArtifacts.S3ModelArtifacts

Only the SDK's sleeps are shortened (poll 10 s -> 0.3 s, describe every 30 s -> 1 s)."""
import datetime
import io
import json
import os
import tarfile
import time

import joblib
import pytest
from botocore.exceptions import ClientError
from sklearn import datasets
from sklearn.model_selection import train_test_split

from conftest import ACCOUNT, REGION

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
POLL = 0.3             # the SDK's poll=10 (seconds between log flushes)
DESCRIBE_EVERY = 1.0   # the SDK's 30 s between DescribeTrainingJob calls while tailing
LOG_GROUP = "/aws/sagemaker/TrainingJobs"

# A typical SageMaker scikit-learn entry point, as in AWS's examples: argparse for the
# hyperparameters, SM_* environment for the paths, pandas to read, joblib to save.
ENTRY_POINT = '''
import argparse
import os

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    print("extracting arguments")
    parser = argparse.ArgumentParser()
    # hyperparameters sent by the client are passed as command-line arguments to the script.
    parser.add_argument("--n-estimators", type=int, default=10)
    parser.add_argument("--min-samples-leaf", type=int, default=3)
    parser.add_argument("--verbose", type=int, default=0)
    # Data, model, and output directories
    parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--train-file", type=str, default="train.csv")
    parser.add_argument("--target", type=str, default="target")
    args, _ = parser.parse_known_args()

    print("reading data")
    train_df = pd.read_csv(os.path.join(args.train, args.train_file))
    print("building training dataset")
    X_train = train_df.drop(columns=[args.target])
    y_train = train_df[args.target]

    print("training model")
    model = RandomForestClassifier(
        n_estimators=args.n_estimators, min_samples_leaf=args.min_samples_leaf,
        random_state=0, verbose=args.verbose)
    model.fit(X_train, y_train)

    print("validating model")
    print(f"train accuracy: {accuracy_score(y_train, model.predict(X_train)):.4f}")

    path = os.path.join(args.model_dir, "model.joblib")
    joblib.dump(model, path)
    print("model persisted at " + path)
'''


@pytest.fixture(scope="module")
def clients(make_client):
    # _logs_init builds its logs client with retries={"max_attempts": 15}; ours fail fast.
    return {name: make_client(name) for name in ("sts", "s3", "sagemaker", "logs")}


def default_bucket(clients):
    """Session.default_bucket() and _create_s3_bucket_if_it_does_not_exist()."""
    account = clients["sts"].get_caller_identity()["Account"]
    assert account == ACCOUNT
    name = f"sagemaker-{REGION}-{account}"
    s3 = clients["s3"]
    # boto3's Bucket(name).creation_date loads through ListBuckets.
    existing = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}
    if existing.get(name) is None:
        s3.create_bucket(Bucket=name)  # us-east-1: no CreateBucketConfiguration
    s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
    return name


def upload_file(s3, path, bucket, key):
    # boto3's Object.upload_file (s3transfer): one PutObject below the multipart threshold.
    s3.upload_file(path, bucket, key)


def tar_and_upload_dir(s3, bucket, s3_key_prefix, script, tmp):
    """fw_utils.tar_and_upload_dir(session, bucket, prefix, script) with no source_dir."""
    key = f"{s3_key_prefix}/sourcedir.tar.gz"
    tar_path = os.path.join(tmp, "sourcedir.tar.gz")
    with tarfile.open(tar_path, mode="w:gz") as t:  # utils.create_tar_file
        t.add(script, arcname=os.path.basename(script))
    upload_file(s3, tar_path, bucket, key)
    return f"s3://{bucket}/{key}"


def base_name_from_image(image):
    # utils.base_name_from_image + name_from_base: "<repo>-<%Y-%m-%d-%H-%M-%S-%f>[:-3]".
    repo = image.rsplit("/", 1)[-1].split(":")[0]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S-%f")[:-3]
    return f"{repo}-{stamp}"


def secondary_training_status_changed(current, prev):
    transitions = current.get("SecondaryStatusTransitions")
    if not transitions:
        return False
    prev_transitions = prev.get("SecondaryStatusTransitions") if prev is not None else None
    last = prev_transitions[-1]["StatusMessage"] if prev_transitions else ""
    return transitions[-1]["StatusMessage"] != last


def secondary_training_status_message(job, prev):
    transitions = job.get("SecondaryStatusTransitions")
    if not transitions:
        return ""
    prev_num = len(prev["SecondaryStatusTransitions"]) \
        if prev is not None and prev.get("SecondaryStatusTransitions") is not None else 0
    to_print = transitions[-1:] if len(transitions) == prev_num \
        else transitions[prev_num - len(transitions):]
    when = datetime.datetime.utcfromtimestamp(
        time.mktime(job["LastModifiedTime"].timetuple())).strftime("%Y-%m-%d %H:%M:%S")
    return "\n".join(f"{when} {t['Status']} - {t['StatusMessage']}" for t in to_print)


def log_stream(logs, calls, stream, start_time=0, skip=0):
    """logs.py log_stream: every event available now, from (start_time, skip) on."""
    next_token = None
    event_count = 1
    while event_count > 0:
        token_arg = {"nextToken": next_token} if next_token is not None else {}
        response = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                                       startTime=start_time, startFromHead=True, **token_arg)
        calls.append("GetLogEvents")
        assert len(calls) < 5000, "log_stream never reached an empty page"
        next_token = response["nextForwardToken"]
        events = response["events"]
        event_count = len(events)
        if event_count > skip:
            events = events[skip:]
            skip = 0
        else:
            skip -= event_count
            events = []
        yield from events


def multi_stream_iter(logs, calls, streams, positions):
    iters = [log_stream(logs, calls, s, positions[s][0], positions[s][1]) for s in streams]
    events = [next(it, None) for it in iters]
    while any(e is not None for e in events):
        i = min((i for i, e in enumerate(events) if e is not None),
                key=lambda i: events[i]["timestamp"])
        yield i, events[i]
        events[i] = next(iters[i], None)


class LogTail:
    """_logs_init + _flush_log_streams state, with what the SDK would print collected."""

    def __init__(self, logs, job_name, instance_count):
        self.logs, self.job_name, self.instance_count = logs, job_name, instance_count
        self.stream_names, self.positions = [], {}
        self.printed = []  # (stream index, message) as color_wrap would print them
        self.printed_in_flush = []  # the flush (1, 2, ...) that printed each of them
        self.flushes = 0
        self.calls = []

    def flush(self):
        self.flushes += 1
        if len(self.stream_names) < self.instance_count:
            try:
                streams = self.logs.describe_log_streams(
                    logGroupName=LOG_GROUP, logStreamNamePrefix=self.job_name + "/",
                    orderBy="LogStreamName", limit=min(self.instance_count, 50))
                self.calls.append("DescribeLogStreams")
                self.stream_names = [s["logStreamName"] for s in streams["logStreams"]]
                loops = 0
                while "nextToken" in streams:  # the SDK repeats the request without the token
                    loops += 1
                    assert loops < 20, "DescribeLogStreams keeps answering a nextToken: " \
                        "the SDK's loop would never end"
                    streams = self.logs.describe_log_streams(
                        logGroupName=LOG_GROUP, logStreamNamePrefix=self.job_name + "/",
                        orderBy="LogStreamName", limit=50)
                    self.stream_names.extend(s["logStreamName"] for s in streams["logStreams"])
                for s in self.stream_names:
                    self.positions.setdefault(s, (0, 0))
            except ClientError as e:
                # No log group before the first container logs: the SDK ignores exactly this.
                if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                self.calls.append("DescribeLogStreams:ResourceNotFound")
        if self.stream_names:
            for idx, event in multi_stream_iter(self.logs, self.calls, self.stream_names,
                                                self.positions):
                self.printed.append((idx, event["message"]))
                self.printed_in_flush.append(self.flushes)
                name = self.stream_names[idx]
                ts, count = self.positions[name]
                if event["timestamp"] == ts:
                    self.positions[name] = (ts, count + 1)
                else:
                    self.positions[name] = (event["timestamp"], 1)


def logs_for_job(sm, logs, job_name, wait=True, timeout=180):
    """session._logs_for_job(sagemaker_session, job_name, wait=True, poll=10, log_type="All")."""
    status_lines, described = [], []

    def describe():
        d = sm.describe_training_job(TrainingJobName=job_name)
        described.append(d)
        return d

    time.sleep(POLL)  # _wait_until sleeps before its first call
    description = describe()
    status_lines.append(secondary_training_status_message(description, None))
    instance_count = description["ResourceConfig"]["InstanceCount"]
    tail = LogTail(logs, job_name, instance_count)
    finished = description["TrainingJobStatus"] in ("Completed", "Failed", "Stopped")
    state = "TAILING" if wait and not finished else "COMPLETE"
    last_describe = time.time()
    last_description = description
    deadline = time.time() + timeout
    while True:
        tail.flush()
        assert time.time() < deadline, f"{job_name} still {description['TrainingJobStatus']}"
        if state == "COMPLETE":
            break
        time.sleep(POLL)
        if state == "JOB_COMPLETE":
            state = "COMPLETE"
        elif time.time() - last_describe >= DESCRIBE_EVERY:
            description = describe()
            last_describe = time.time()
            if secondary_training_status_changed(description, last_description):
                status_lines.append(secondary_training_status_message(description,
                                                                       last_description))
                last_description = description
            if description["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                state = "JOB_COMPLETE"
            # DebugRuleEvaluationStatuses / ProfilerRuleEvaluationStatuses: printed when present.
            for key in ("DebugRuleEvaluationStatuses", "ProfilerRuleEvaluationStatuses"):
                for rule in description.get(key, []):
                    assert rule["RuleConfigurationName"] and rule["RuleEvaluationStatus"]
    # _check_job_status
    assert description["TrainingJobStatus"] == "Completed", (
        description.get("FailureReason"), "\n".join(m for _, m in tail.printed[-12:]))
    assert description["TrainingTimeInSeconds"] >= 0
    assert description["BillableTimeInSeconds"] >= 0
    return description, tail, status_lines, described


def test_sklearn_estimator_fit_with_logs(clients, tmp_path):
    s3, sm, logs = clients["s3"], clients["sagemaker"], clients["logs"]
    bucket = default_bucket(clients)

    # The user's data, written as a notebook does and uploaded with session.upload_data().
    X, y = datasets.load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    train_csv = tmp_path / "train.csv"
    X_train.assign(target=y_train).to_csv(train_csv, index=False)
    data_prefix = f"sklearn-sdk-path/{time.time_ns()}"
    upload_file(s3, str(train_csv), bucket, f"{data_prefix}/train.csv")
    train_uri = f"s3://{bucket}/{data_prefix}/train.csv"

    # estimator.fit(): job name, code upload, hyperparameters, request.
    job_name = base_name_from_image(IMAGE)
    script = tmp_path / "script.py"
    script.write_text(ENTRY_POINT)
    submit_dir = tar_and_upload_dir(s3, bucket, f"{job_name}/source", str(script), str(tmp_path))
    user_hps = {"n-estimators": 40, "min-samples-leaf": 3, "verbose": 2}
    hps = dict(user_hps, sagemaker_program="script.py", sagemaker_submit_directory=submit_dir,
               sagemaker_container_log_level=20, sagemaker_job_name=job_name,
               sagemaker_region=REGION)
    output_path = f"s3://{bucket}/"
    request = {
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": IMAGE},
        "OutputDataConfig": {"S3OutputPath": output_path},
        "TrainingJobName": job_name,
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                           "VolumeSizeInGB": 30},
        "RoleArn": ROLE,
        "InputDataConfig": [{
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train_uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
            "ChannelName": "train"}],
        # Framework._json_encode_hyperparameters: every value json.dumps'd.
        "HyperParameters": {str(k): json.dumps(v) for k, v in hps.items()},
        "DebugHookConfig": {"S3OutputPath": output_path, "CollectionConfigurations": []},
        "ProfilerConfig": {"S3OutputPath": output_path, "DisableProfiler": False},
    }
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job_name.lower()}"

    description, tail, status_lines, described = logs_for_job(sm, logs, job_name)

    # The job echoes what the SDK sent (the SDK reads these back, e.g. attach()).
    assert description["HyperParameters"] == request["HyperParameters"]
    assert description["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert description["DebugHookConfig"]["S3OutputPath"] == output_path
    assert description["ProfilerConfig"]["S3OutputPath"] == output_path
    assert description["SecondaryStatus"] == "Completed"
    for d in described:
        for t in d["SecondaryStatusTransitions"]:
            assert t["Status"] and isinstance(t["StatusMessage"], str) and t["StartTime"]
    transitions = [t["Status"] for t in description["SecondaryStatusTransitions"]]
    assert transitions == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    printed_status = "\n".join(status_lines)
    assert "Completed - " in printed_status

    # The streamed log: exactly the stream's events, once each, in order.
    assert [i for i, _ in tail.printed] and {i for i, _ in tail.printed} == {0}
    streamed = [m for _, m in tail.printed]
    stream = tail.stream_names[0]
    assert stream.startswith(job_name + "/algo-1")
    everything, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                                   startFromHead=True, **kwargs)
        everything += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token or not page["events"]:
            break
        token = page["nextForwardToken"]
    assert streamed == everything
    script_lines = [m for m in streamed if m in (
        "extracting arguments", "reading data", "building training dataset", "training model",
        "validating model")]
    assert script_lines == ["extracting arguments", "reading data", "building training dataset",
                            "training model", "validating model"]
    trees = [m for m in streamed if m.startswith("building tree ")]
    assert trees == [f"building tree {i} of 40" for i in range(1, 41)]
    assert any(m.startswith("train accuracy: ") for m in streamed)
    assert "GetLogEvents" in tail.calls and "DescribeLogStreams" in tail.calls

    # estimator.model_data, then the notebook loads the model.
    model_data = sm.describe_training_job(TrainingJobName=job_name)[
        "ModelArtifacts"]["S3ModelArtifacts"]
    assert model_data == f"{output_path}{job_name}/output/model.tar.gz"
    key = model_data[len(f"s3://{bucket}/"):]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    extract = tmp_path / "model"
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert "model.joblib" in tar.getnames()
        tar.extractall(extract)
    model = joblib.load(extract / "model.joblib")
    assert model.n_estimators == 40 and model.min_samples_leaf == 3
    accuracy = (model.predict(X_test) == y_test).mean()
    assert accuracy > 0.9


def submit_script_job(clients, tmp_path, source):
    """What fit() sends for an estimator whose entry point is `source`, with a one-file channel."""
    s3, sm = clients["s3"], clients["sagemaker"]
    bucket = default_bucket(clients)
    job_name = base_name_from_image(IMAGE)
    script = tmp_path / "script.py"
    script.write_text(source)
    submit_dir = tar_and_upload_dir(s3, bucket, f"{job_name}/source", str(script), str(tmp_path))
    (tmp_path / "x.csv").write_text("1,2\n")
    upload_file(s3, str(tmp_path / "x.csv"), bucket, f"{job_name}/data/x.csv")
    hps = {"sagemaker_program": "script.py", "sagemaker_submit_directory": submit_dir,
           "sagemaker_container_log_level": 20, "sagemaker_job_name": job_name,
           "sagemaker_region": REGION}
    sm.create_training_job(
        AlgorithmSpecification={"TrainingInputMode": "File", "TrainingImage": IMAGE},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/"}, TrainingJobName=job_name,
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
        ResourceConfig={"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
        RoleArn=ROLE,
        InputDataConfig=[{"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{job_name}/data/x.csv",
            "S3DataDistributionType": "FullyReplicated"}}, "ChannelName": "train"}],
        HyperParameters={k: json.dumps(v) for k, v in hps.items()},
        DebugHookConfig={"S3OutputPath": f"s3://{bucket}/", "CollectionConfigurations": []},
        ProfilerConfig={"S3OutputPath": f"s3://{bucket}/", "DisableProfiler": False})
    return job_name


TAILED_SCRIPT = """
import time
for epoch in range(40):
    # Three lines per epoch, written back to back: most share a millisecond timestamp, which
    # is what the SDK's Position(timestamp, skip) bookkeeping exists for.
    print(f"epoch {epoch} start", flush=True)
    print(f"epoch {epoch} loss={1 / (epoch + 1):.4f}", flush=True)
    print(f"epoch {epoch} end", flush=True)
    time.sleep(0.07)
"""


def test_tailing_a_running_job_streams_every_line_once_in_order(clients, tmp_path):
    """The TAILING loop while the job writes: each flush resumes at (last timestamp, skip)
    with GetLogEvents startTime, so lines sharing a timestamp across two flushes must be
    neither lost nor repeated."""
    job_name = submit_script_job(clients, tmp_path, TAILED_SCRIPT)
    description, tail, _, _ = logs_for_job(clients["sagemaker"], clients["logs"], job_name)
    expected = []
    for epoch in range(40):
        expected += [f"epoch {epoch} start", f"epoch {epoch} loss={1 / (epoch + 1):.4f}",
                     f"epoch {epoch} end"]
    streamed = [m for _, m in tail.printed]
    assert [m for m in streamed if m.startswith("epoch ")] == expected
    # The lines really arrived over several flushes (the job was tailed, not read once).
    assert len(set(tail.printed_in_flush)) >= 3, tail.printed_in_flush
    assert description["SecondaryStatus"] == "Completed"


def test_logs_for_a_finished_job_print_everything_once(clients, tmp_path):
    """logs_for_job(job, wait=False) — what `attach()` and a re-run notebook cell do — and the
    SDK's error path: a job that fails surfaces FailureReason through DescribeTrainingJob."""
    sm, logs = clients["sagemaker"], clients["logs"]
    job_name = submit_script_job(
        clients, tmp_path,
        "import sys\nfor i in range(25):\n    print(f'step {i}')\nsys.exit('bad things happened')\n")
    deadline = time.time() + 120
    while True:
        job = sm.describe_training_job(TrainingJobName=job_name)
        if job["TrainingJobStatus"] not in ("InProgress", "Stopping"):
            break
        assert time.time() < deadline
        time.sleep(0.3)
    assert job["TrainingJobStatus"] == "Failed"
    # _check_job_status builds its message from FailureReason.
    assert job["FailureReason"].startswith("AlgorithmError")
    assert job["SecondaryStatus"] == "Failed"
    # wait=False: state COMPLETE at once, one flush prints the whole log.
    tail = LogTail(logs, job_name, job["ResourceConfig"]["InstanceCount"])
    tail.flush()
    messages = [m for _, m in tail.printed]
    assert [m for m in messages if m.startswith("step ")] == [f"step {i}" for i in range(25)]
    assert "bad things happened" in messages
    # A second flush (the JOB_COMPLETE -> COMPLETE pass) prints nothing twice.
    before = len(tail.printed)
    tail.flush()
    assert len(tail.printed) == before
