"""The SageMaker Python SDK's deploy path, replayed call for call with boto3 (the SDK itself
cannot be installed here), as test_training_sdk_path.py does for fit(). What is replayed, from
aws/sagemaker-python-sdk (src/sagemaker/):

  Built-in XGBoost: Estimator(image_uri=<xgboost image>).fit(...) then
  estimator.deploy(1, "ml.m5.large", serializer=CSVSerializer(), deserializer=CSVDeserializer())
    session.default_bucket()          sts GetCallerIdentity; s3 ListBuckets, CreateBucket when
                                      missing, HeadBucket with ExpectedBucketOwner
    session.upload_data()             s3 upload_file of the training CSV
    session.train() / wait_for_job()  CreateTrainingJob as _get_train_request builds it for an
                                      Estimator (string hyperparameters), then _train_done:
                                      DescribeTrainingJob until not InProgress; _check_job_status
    Estimator.model_data              DescribeTrainingJob ModelArtifacts.S3ModelArtifacts
    EstimatorBase.deploy              default_name = name_from_base(base_job_name): the name of
                                      the model, the endpoint config and the endpoint
    Model._create_sagemaker_model     prepare_container_def -> container_def(image, model_data,
                                      env={}); session.create_model -> _create_model_request:
                                      CreateModel {ModelName, ExecutionRoleArn, PrimaryContainer
                                      {Image, Environment: {}, ModelDataUrl}} (no Tags when empty)
    session.production_variant()      {VariantName AllTraffic, ModelName, InitialVariantWeight 1,
                                      InitialInstanceCount, InstanceType}
    endpoint_from_production_variants CreateEndpointConfig {EndpointConfigName, ProductionVariants}
    session.create_endpoint()         CreateEndpoint {EndpointName, EndpointConfigName, Tags: []}
    session.wait_for_endpoint()       _wait_until(_deploy_done): DescribeEndpoint while Creating or
                                      Updating, then the InService check (FailureReason otherwise)
    Predictor.predict()               _create_request_args: InvokeEndpoint {EndpointName,
                                      ContentType = serializer.CONTENT_TYPE, Accept = ", ".join(
                                      deserializer.ACCEPT), Body = serializer.serialize(data)};
                                      _handle_response: deserializer.deserialize(Body, ContentType)
                                      with CSVSerializer, CSVDeserializer and JSONDeserializer
    Predictor.delete_model()          _get_model_names: DescribeEndpoint (EndpointConfigName),
                                      DescribeEndpointConfig (ModelName of each variant);
                                      DeleteModel
    Predictor.delete_endpoint()       _delete_endpoint_config: DeleteEndpointConfig (the name kept
                                      from DescribeEndpoint), then DeleteEndpoint

  Script mode: SKLearnModel(model_data, role, entry_point="inference.py",
  framework_version="1.2-1").deploy(1, "ml.m5.large", serializer=JSONSerializer(),
  deserializer=JSONDeserializer()), then the SKLearnPredictor's own NumpySerializer and
  NumpyDeserializer
    SKLearnModel.prepare_container_def  image_uris.retrieve("sklearn", ...) image;
                                      model_code_key_prefix(None, None, image) =
                                      name_from_image(image); Model._upload_code ->
                                      fw_utils.tar_and_upload_dir: sourcedir.tar.gz holding
                                      inference.py, uploaded to <prefix>/sourcedir.tar.gz;
                                      _script_mode_env_vars: SAGEMAKER_PROGRAM,
                                      SAGEMAKER_SUBMIT_DIRECTORY (that object's s3:// URI),
                                      SAGEMAKER_CONTAINER_LOG_LEVEL "20", SAGEMAKER_REGION
    Model._ensure_base_name_if_needed / _set_model_name_if_needed  model name =
                                      name_from_base(base_name_from_image(image)); endpoint name =
                                      name_from_base(base_from_name(model name))
    then as above (CreateModel, CreateEndpointConfig, CreateEndpoint, wait, predict, deletes).

Only the SDK's sleeps are shortened (wait_for_job poll 5 s -> 0.3 s, wait_for_endpoint poll
30 s -> 0.3 s)."""
import codecs
import csv
import io
import json
import os
import re
import tarfile
import time

import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from conftest import ACCOUNT, REGION, error_code

XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
INSTANCE_TYPE = "ml.m5.large"
POLL = 0.3  # the SDK's wait_for_job poll=5 and wait_for_endpoint poll=30 (seconds)
TIMEOUT = 300


@pytest.fixture(scope="module")
def clients(make_client):
    # Session._initialize: the runtime client is "runtime.sagemaker" with read_timeout=80.
    clients = {name: make_client(name) for name in ("sts", "s3", "sagemaker")}
    clients["runtime"] = make_client("runtime.sagemaker", read_timeout=80)
    return clients


# ----------------------------------------------------------------------------- sagemaker.utils

def sagemaker_timestamp():
    moment = time.time()
    moment_ms = repr(moment).split(".")[1][:3]
    return time.strftime("%Y-%m-%d-%H-%M-%S-{}".format(moment_ms), time.gmtime(moment))


def name_from_base(base, max_length=63):
    timestamp = sagemaker_timestamp()
    return "{}-{}".format(base[: max_length - len(timestamp) - 1], timestamp)


def base_name_from_image(image):
    m = re.match("^(.+/)?([^:/]+)(:[^:]+)?$", image)
    return m.group(2) if m else image


def base_from_name(name):
    m = re.match(r"^(.+)-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}|\d{6}-\d{4})", name)
    return m.group(1) if m else name


def name_from_image(image):
    return name_from_base(base_name_from_image(image))


# ----------------------------------------------------------------------------- sagemaker.session

def default_bucket(clients):
    account = clients["sts"].get_caller_identity()["Account"]
    assert account == ACCOUNT
    name = f"sagemaker-{REGION}-{account}"
    s3 = clients["s3"]
    existing = {b["Name"]: b["CreationDate"] for b in s3.list_buckets()["Buckets"]}
    if existing.get(name) is None:
        s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
    return name


def upload_data(clients, path, bucket, key_prefix):
    key = f"{key_prefix}/{os.path.basename(path)}"
    clients["s3"].upload_file(path, bucket, key)
    return f"s3://{bucket}/{key}"


def wait_until(fn, poll=POLL, timeout=TIMEOUT):
    """session._wait_until: call fn until it returns something other than None."""
    deadline = time.time() + timeout
    result = fn()
    while result is None:
        assert time.time() < deadline, "the SDK would still be waiting"
        time.sleep(poll)
        result = fn()
    return result


def wait_for_job(sm, job_name):
    """session.wait_for_job: _train_done until the job leaves InProgress/Created, then
    _check_job_status."""
    def train_done():
        desc = sm.describe_training_job(TrainingJobName=job_name)
        return None if desc["TrainingJobStatus"] in ("InProgress", "Created") else desc

    desc = wait_until(train_done)
    assert desc["TrainingJobStatus"] in ("Completed", "Stopped"), desc.get("FailureReason")
    return desc


def container_def(image_uri, model_data_url=None, env=None):
    c_def = {"Image": image_uri, "Environment": {} if env is None else env}
    if model_data_url:
        c_def["ModelDataUrl"] = model_data_url
    return c_def


def create_model(sm, name, role, container):
    """session.create_model -> _create_model_request; an existing model is reused."""
    request = {"ModelName": name, "ExecutionRoleArn": role, "PrimaryContainer": container}
    try:
        sm.create_model(**request)
    except ClientError as e:
        error = e.response["Error"]
        if not (error["Code"] == "ValidationException" and
                "Cannot create already existing model" in error["Message"]):
            raise
    return name


def production_variant(model_name, instance_type, initial_instance_count=1,
                       variant_name="AllTraffic", initial_weight=1):
    return {"VariantName": variant_name, "ModelName": model_name,
            "InitialVariantWeight": initial_weight,
            "InitialInstanceCount": initial_instance_count, "InstanceType": instance_type}


def deploy_done(sm, endpoint_name):
    desc = sm.describe_endpoint(EndpointName=endpoint_name)
    return None if desc["EndpointStatus"] in ("Creating", "Updating") else desc


def endpoint_from_production_variants(sm, name, production_variants):
    """session.endpoint_from_production_variants(wait=True) and create_endpoint()."""
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=production_variants)
    arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=[])["EndpointArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name.lower()}"
    desc = wait_until(lambda: deploy_done(sm, name))
    assert desc["EndpointStatus"] == "InService", (
        f"Error hosting endpoint {name}: {desc['EndpointStatus']}. "
        f"Reason: {desc.get('FailureReason')}.")
    return desc


# ----------------------------------------------------------------------------- serializers

class CSVSerializer:
    CONTENT_TYPE = "text/csv"

    def serialize(self, data):
        if hasattr(data, "read"):
            return data.read()
        is_mutable_sequence_like = self._is_sequence_like(data) and hasattr(data, "__setitem__")
        has_multiple_rows = len(data) > 0 and self._is_sequence_like(data[0])
        if is_mutable_sequence_like and has_multiple_rows:
            return "\n".join([self._serialize_row(row) for row in data])
        return self._serialize_row(data)

    @staticmethod
    def _serialize_row(data):
        if isinstance(data, str):
            return data
        if isinstance(data, np.ndarray):
            data = np.ndarray.flatten(data)
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=",").writerow(data)
        return buffer.getvalue().rstrip("\r\n")

    @staticmethod
    def _is_sequence_like(data):
        return hasattr(data, "__iter__") and hasattr(data, "__getitem__")


class JSONSerializer:
    CONTENT_TYPE = "application/json"

    def serialize(self, data):
        if isinstance(data, dict):
            return json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                               for k, v in data.items()})
        if isinstance(data, np.ndarray):
            return json.dumps(data.tolist())
        return json.dumps(data)


class NumpySerializer:
    CONTENT_TYPE = "application/x-npy"

    def serialize(self, data):
        buffer = io.BytesIO()
        np.save(buffer, np.array(data) if isinstance(data, list) else data)
        return buffer.getvalue()


class CSVDeserializer:
    ACCEPT = ("text/csv",)

    def deserialize(self, stream, content_type):
        try:
            return list(csv.reader(stream.read().decode("utf-8").splitlines()))
        finally:
            stream.close()


class JSONDeserializer:
    ACCEPT = ("application/json",)

    def deserialize(self, stream, content_type):
        try:
            return json.load(codecs.getreader("utf-8")(stream))
        finally:
            stream.close()


class NumpyDeserializer:
    ACCEPT = ("application/x-npy",)

    def deserialize(self, stream, content_type):
        try:
            if content_type == "text/csv":
                return np.genfromtxt(io.StringIO(stream.read().decode("utf-8")), delimiter=",")
            if content_type == "application/json":
                return np.array(json.loads(stream.read().decode("utf-8")))
            if content_type == "application/x-npy":
                return np.load(io.BytesIO(stream.read()), allow_pickle=True)
        finally:
            stream.close()
        raise ValueError(f"NumpyDeserializer cannot read content type {content_type}.")


class Predictor:
    """base_predictor.Predictor: predict, delete_model, delete_endpoint."""

    def __init__(self, endpoint_name, clients, serializer, deserializer):
        self.endpoint_name = endpoint_name
        self.clients = clients
        self.serializer, self.deserializer = serializer, deserializer
        self._endpoint_config_name = None
        self._model_names = None
        self.last_request = None

    def predict(self, data):
        args = {"EndpointName": self.endpoint_name,
                "ContentType": self.serializer.CONTENT_TYPE,
                "Accept": ", ".join(self.deserializer.ACCEPT),
                "Body": self.serializer.serialize(data)}
        self.last_request = args
        response = self.clients["runtime"].invoke_endpoint(**args)
        content_type = response.get("ContentType", "application/octet-stream")
        return self.deserializer.deserialize(response["Body"], content_type)

    def _get_endpoint_config_name(self):
        if self._endpoint_config_name is None:
            self._endpoint_config_name = self.clients["sagemaker"].describe_endpoint(
                EndpointName=self.endpoint_name)["EndpointConfigName"]
        return self._endpoint_config_name

    def _get_model_names(self):
        if self._model_names is None:
            config = self.clients["sagemaker"].describe_endpoint_config(
                EndpointConfigName=self._get_endpoint_config_name())
            self._model_names = [v["ModelName"] for v in config["ProductionVariants"]
                                 if "ModelName" in v]
        return self._model_names

    def delete_model(self):
        for name in self._get_model_names():
            self.clients["sagemaker"].delete_model(ModelName=name)

    def delete_endpoint(self, delete_endpoint_config=True):
        if delete_endpoint_config:
            self.clients["sagemaker"].delete_endpoint_config(
                EndpointConfigName=self._get_endpoint_config_name())
        self.clients["sagemaker"].delete_endpoint(EndpointName=self.endpoint_name)


def assert_endpoint_goes_away(clients, name, config_name, model_names):
    sm = clients["sagemaker"]
    deadline = time.time() + 60
    while True:
        try:
            status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ValidationException"
            assert "Could not find endpoint" in e.response["Error"]["Message"]
            break
        assert status == "Deleting", status
        assert time.time() < deadline, "the endpoint was never deleted"
        time.sleep(POLL)
    for call, kwargs, what in (
            (sm.describe_endpoint_config, {"EndpointConfigName": config_name},
             "Could not find endpoint configuration"),
            *((sm.describe_model, {"ModelName": m}, "Could not find model") for m in model_names)):
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert error_code(e) == "ValidationException" and what in str(e.value)
    with pytest.raises(ClientError) as e:
        clients["runtime"].invoke_endpoint(EndpointName=name, ContentType="text/csv", Body="1,2")
    assert error_code(e) == "ValidationError"


# ----------------------------------------------------------------------------- XGBoost

def regression_frame(rows, seed):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(rows, 3))
    y = 3 * X[:, 0] - 2 * X[:, 1] + 0.5 * X[:, 2] * X[:, 0] + 1 + rng.normal(0, 0.05, rows)
    return X, y


def test_xgboost_estimator_fit_deploy_predict_delete(clients, tmp_path):
    import xgboost
    s3, sm = clients["s3"], clients["sagemaker"]
    bucket = default_bucket(clients)

    # The notebook's data, label first as the built-in algorithm wants it.
    X, y = regression_frame(500, 3)
    train_csv = tmp_path / "train.csv"
    np.savetxt(train_csv, np.column_stack([y, X]), delimiter=",", fmt="%.6f")
    prefix = f"xgboost-hosting-sdk/{time.time_ns()}"
    train_uri = upload_data(clients, str(train_csv), bucket, f"{prefix}/train")

    # Estimator(image_uri=XGBOOST_IMAGE, ...).set_hyperparameters(...).fit({"train": ...})
    base_job_name = base_name_from_image(XGBOOST_IMAGE)
    job_name = name_from_base(base_job_name)
    output_path = f"s3://{bucket}/{prefix}/output"
    hyperparameters = {"objective": "reg:squarederror", "num_round": 40, "max_depth": 4}
    sm.create_training_job(
        AlgorithmSpecification={"TrainingInputMode": "File", "TrainingImage": XGBOOST_IMAGE},
        OutputDataConfig={"S3OutputPath": output_path}, TrainingJobName=job_name,
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
        ResourceConfig={"InstanceCount": 1, "InstanceType": INSTANCE_TYPE, "VolumeSizeInGB": 30},
        RoleArn=ROLE,
        InputDataConfig=[{"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": train_uri,
            "S3DataDistributionType": "FullyReplicated"}},
            "ContentType": "text/csv", "ChannelName": "train"}],
        HyperParameters={str(k): str(v) for k, v in hyperparameters.items()},
        DebugHookConfig={"S3OutputPath": output_path, "CollectionConfigurations": []},
        ProfilerConfig={"S3OutputPath": output_path, "DisableProfiler": False})
    wait_for_job(sm, job_name)
    model_data = sm.describe_training_job(TrainingJobName=job_name)[
        "ModelArtifacts"]["S3ModelArtifacts"]
    assert model_data == f"{output_path}/{job_name}/output/model.tar.gz"

    # The reference: the notebook's own xgboost on the same artifact.
    archive = s3.get_object(Bucket=bucket, Key=model_data[len(f"s3://{bucket}/"):])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        (tmp_path / "xgboost-model").write_bytes(tar.extractfile("xgboost-model").read())
    booster = xgboost.Booster(model_file=str(tmp_path / "xgboost-model"))

    # estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
    #                  serializer=CSVSerializer(), deserializer=CSVDeserializer())
    default_name = name_from_base(base_job_name)
    model_name = endpoint_name = default_name
    create_model(sm, model_name, ROLE, container_def(XGBOOST_IMAGE, model_data, {}))
    described_model = sm.describe_model(ModelName=model_name)
    assert described_model["PrimaryContainer"]["ModelDataUrl"] == model_data
    desc = endpoint_from_production_variants(
        sm, endpoint_name, [production_variant(model_name, INSTANCE_TYPE, 1)])
    assert desc["EndpointConfigName"] == endpoint_name
    [variant] = desc["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic" and variant["CurrentInstanceCount"] == 1
    predictor = Predictor(endpoint_name, clients, CSVSerializer(), CSVDeserializer())

    # predictor.predict(test_rows): a 2-D array, and one row as a list.
    X_test, _ = regression_frame(25, 4)
    got = predictor.predict(X_test)
    assert predictor.last_request["ContentType"] == "text/csv"
    assert predictor.last_request["Accept"] == "text/csv"
    assert predictor.last_request["Body"].count("\n") == len(X_test) - 1
    want = booster.predict(xgboost.DMatrix(X_test))
    values = [float(v) for row in got for v in row]
    assert len(values) == len(X_test)
    assert np.allclose(values, want, atol=1e-4)
    one = predictor.predict([0.5, -0.25, 0.75])
    assert predictor.last_request["Body"] == "0.5,-0.25,0.75"
    assert abs(float(one[0][0]) - booster.predict(
        xgboost.DMatrix(np.array([[0.5, -0.25, 0.75]])))[0]) < 1e-4

    # predictor.deserializer = JSONDeserializer(): the container's JSON answer.
    predictor.deserializer = JSONDeserializer()
    answer = predictor.predict(X_test[:3])
    assert predictor.last_request["Accept"] == "application/json"
    assert [round(p["score"], 4) for p in answer["predictions"]] == \
        [round(float(w), 4) for w in want[:3]]

    # A row the model cannot read: the SDK surfaces invoke_endpoint's ModelError.
    with pytest.raises(ClientError) as e:
        predictor.predict("1,abc,2")
    assert error_code(e) == "ModelError"

    # predictor.delete_model(): the running endpoint keeps serving, as on SageMaker.
    predictor.delete_model()
    assert predictor._get_model_names() == [model_name]
    with pytest.raises(ClientError) as e:
        sm.describe_model(ModelName=model_name)
    assert "Could not find model" in str(e.value)
    predictor.deserializer = CSVDeserializer()
    assert len(predictor.predict(X_test[:2])) == 2

    # predictor.delete_endpoint(): its endpoint config first, then the endpoint.
    predictor.delete_endpoint()
    assert_endpoint_goes_away(clients, endpoint_name, endpoint_name, [model_name])


# ----------------------------------------------------------------------------- scikit-learn

INFERENCE_PY = '''
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(input_data, model):
    return {"classes": model.predict(input_data),
            "probabilities": model.predict_proba(input_data)}
'''


def tar_and_upload_dir(clients, bucket, s3_key_prefix, script, tmp):
    """fw_utils.tar_and_upload_dir(session, bucket, prefix, script) with no source_dir."""
    key = f"{s3_key_prefix}/sourcedir.tar.gz"
    tar_path = os.path.join(tmp, "sourcedir.tar.gz")
    with tarfile.open(tar_path, mode="w:gz") as t:
        t.add(script, arcname=os.path.basename(script))
    clients["s3"].upload_file(tar_path, bucket, key)
    return f"s3://{bucket}/{key}"


def test_sklearn_model_with_entry_point_deploys_and_predicts(clients, tmp_path):
    sm = clients["sagemaker"]
    bucket = default_bucket(clients)

    # The notebook's model, packed as model.tar.gz and uploaded with session.upload_data().
    X, y = datasets.load_iris(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0)
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    joblib.dump(model, tmp_path / "model.joblib")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "model.joblib", arcname="model.joblib")
    model_data = upload_data(clients, str(tmp_path / "model.tar.gz"), bucket,
                             f"sklearn-hosting-sdk/{time.time_ns()}")
    (tmp_path / "inference.py").write_text(INFERENCE_PY)

    # SKLearnModel(model_data, ROLE, entry_point="inference.py", framework_version="1.2-1")
    #     .deploy(1, "ml.m5.large", serializer=JSONSerializer(), deserializer=JSONDeserializer())
    key_prefix = name_from_image(SKLEARN_IMAGE)  # model_code_key_prefix(None, None, image)
    submit_dir = tar_and_upload_dir(clients, bucket, key_prefix, str(tmp_path / "inference.py"),
                                    str(tmp_path))
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": submit_dir,
           "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": REGION}
    model_name = name_from_base(base_name_from_image(SKLEARN_IMAGE))
    create_model(sm, model_name, ROLE, container_def(SKLEARN_IMAGE, model_data, env))
    assert sm.describe_model(ModelName=model_name)["PrimaryContainer"]["Environment"] == env
    endpoint_name = name_from_base(base_from_name(model_name))
    endpoint_from_production_variants(sm, endpoint_name,
                                      [production_variant(model_name, INSTANCE_TYPE, 1)])
    predictor = Predictor(endpoint_name, clients, JSONSerializer(), JSONDeserializer())

    answer = predictor.predict(X_test)
    assert predictor.last_request["ContentType"] == "application/json"
    assert predictor.last_request["Accept"] == "application/json"
    assert answer["classes"] == model.predict(X_test).tolist()
    assert np.allclose(answer["probabilities"], model.predict_proba(X_test), atol=1e-6)

    # SKLearnPredictor's defaults: NumpySerializer / NumpyDeserializer (application/x-npy).
    npy = Predictor(endpoint_name, clients, NumpySerializer(), NumpyDeserializer())
    got = npy.predict(X_test[:4])
    assert npy.last_request["ContentType"] == "application/x-npy"
    assert got.item()["classes"].tolist() == model.predict(X_test[:4]).tolist()

    # A request the user's code fails on is a ModelError carrying the script's error.
    with pytest.raises(ClientError) as e:
        predictor.predict([[1.0, 2.0]])  # two features instead of four
    assert error_code(e) == "ModelError"
    assert "features" in str(e.value)

    predictor.delete_model()
    predictor.delete_endpoint()
    assert_endpoint_goes_away(clients, endpoint_name, endpoint_name, [model_name])
