"""Application Auto Scaling through boto3, the AWS CLI and raw signed requests: scalable
targets, target-tracking policies (with their CloudWatch alarms), scaling activities,
tags and the errors AWS gives; then the scaling engine end to end, on a custom resource
(an HTTP resource served by this test, AWS's custom-resource contract) and on a SageMaker
endpoint variant."""
import json
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, ROOT_KEY, ROOT_SECRET, Server, error_code

CUSTOM_DIMENSION = "custom-resource:ResourceType:Property"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class CustomResource:
    """A scalable dimension as AWS's custom-resource contract has it: GET answers the
    capacity, PATCH {"desiredCapacity": n} changes it."""

    def __init__(self, capacity=1):
        self.capacity = float(capacity)
        self.patches = []
        resource = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = json.dumps({
                    "actualCapacity": resource.capacity,
                    "desiredCapacity": resource.capacity,
                    "dimensionName": "Workers",
                    "resourceName": "queue-workers",
                    "scalableTargetDimensionId": "1-23456789",
                    "scalingStatus": "Successful",
                    "version": "1",
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer()

            def do_PATCH(self):
                n = int(self.headers.get("Content-Length", "0"))
                desired = json.loads(self.rfile.read(n))["desiredCapacity"]
                resource.patches.append(desired)
                resource.capacity = float(desired)
                self._answer()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/scalableTargetDimensions/" \
                   f"{uuid.uuid4().hex[:8]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def resource():
    r = CustomResource()
    yield r
    r.close()


@pytest.fixture(scope="module")
def aas(make_client):
    return make_client("application-autoscaling")


@pytest.fixture(scope="module")
def cw(make_client):
    return make_client("cloudwatch")


def raw_call(endpoint, operation, body):
    """A signed JSON 1.1 call, for what this boto3's older model lacks (ScalableTargetARN,
    TagResource)."""
    request = AWSRequest(
        method="POST", url=endpoint + "/", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": f"AnyScaleFrontendService.{operation}"})
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "application-autoscaling", REGION) \
        .add_auth(request)
    http_request = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(http_request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def custom_target(resource):
    return {"ServiceNamespace": "custom-resource", "ResourceId": resource.url,
            "ScalableDimension": CUSTOM_DIMENSION}


def queue_policy(target_value, **extra):
    config = {
        "TargetValue": target_value,
        "CustomizedMetricSpecification": {
            "Namespace": "Nimbus/Test", "MetricName": "BacklogPerWorker",
            "Dimensions": [{"Name": "Queue", "Value": "jobs"}], "Statistic": "Average"},
    }
    config.update(extra)
    return config


# ---------------------------------------------------------------------------------------
# API


def test_register_describe_deregister(aas, server, resource):
    target = custom_target(resource)
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=5)
    described = aas.describe_scalable_targets(
        ServiceNamespace="custom-resource", ResourceIds=[resource.url])["ScalableTargets"]
    assert len(described) == 1
    t = described[0]
    assert (t["ResourceId"], t["ScalableDimension"]) == (resource.url, CUSTOM_DIMENSION)
    assert (t["MinCapacity"], t["MaxCapacity"]) == (1, 5)
    assert t["RoleARN"].endswith(
        "/custom-resource.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_CustomResource")
    assert t["SuspendedState"] == {"DynamicScalingInSuspended": False,
                                   "DynamicScalingOutSuspended": False,
                                   "ScheduledScalingSuspended": False}
    assert abs(t["CreationTime"].timestamp() - time.time()) < 60

    # Raising the minimum above the capacity moves the resource at once, as on AWS.
    aas.register_scalable_target(**target, MinCapacity=2)
    assert resource.patches == [2]
    activity = aas.describe_scaling_activities(
        ServiceNamespace="custom-resource", ResourceId=resource.url)["ScalingActivities"][0]
    assert activity["Cause"] == "minimum capacity was set to 2"
    assert activity["Description"] == "Setting desired capacity to 2."
    assert activity["StatusCode"] == "Successful"

    aas.deregister_scalable_target(**target)
    assert aas.describe_scalable_targets(
        ServiceNamespace="custom-resource", ResourceIds=[resource.url])["ScalableTargets"] == []
    with pytest.raises(ClientError) as e:
        aas.deregister_scalable_target(**target)
    assert error_code(e) == "ObjectNotFoundException"
    assert e.value.response["Error"]["Message"] == (
        f"No scalable target found for service namespace: custom-resource, resource ID: "
        f"{resource.url}, scalable dimension: {CUSTOM_DIMENSION}")


def test_scalable_target_arn_and_tags(server, resource):
    status, out = raw_call(server.endpoint, "RegisterScalableTarget", {
        **custom_target(resource), "MinCapacity": 1, "MaxCapacity": 3,
        "Tags": {"team": "ml"}})
    assert status == 200, out
    arn = out["ScalableTargetARN"]
    assert arn.startswith(f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/")
    status, _ = raw_call(server.endpoint, "TagResource",
                         {"ResourceARN": arn, "Tags": {"env": "test"}})
    assert status == 200
    status, _ = raw_call(server.endpoint, "UntagResource",
                         {"ResourceARN": arn, "TagKeys": ["team"]})
    assert status == 200
    status, out = raw_call(server.endpoint, "ListTagsForResource", {"ResourceARN": arn})
    assert (status, out) == (200, {"Tags": {"env": "test"}})
    status, out = raw_call(server.endpoint, "DescribeScalableTargets",
                           {"ServiceNamespace": "custom-resource", "ResourceIds": [resource.url]})
    assert out["ScalableTargets"][0]["ScalableTargetARN"] == arn
    status, out = raw_call(server.endpoint, "ListTagsForResource", {
        "ResourceARN": f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0abc"})
    assert status == 400 and out["__type"].endswith("ResourceNotFoundException")
    raw_call(server.endpoint, "DeregisterScalableTarget", custom_target(resource))


def test_register_errors(aas):
    # No service of Nimbus owns ECS services.
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(
            ServiceNamespace="ecs", ResourceId="service/default/web",
            ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=2)
    assert error_code(e) == "ValidationException"
    assert "ecs" in e.value.response["Error"]["Message"]
    # A variant of an endpoint that does not exist.
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=f"endpoint/{unique('none')}/variant/v",
            ScalableDimension=VARIANT_DIMENSION, MinCapacity=1, MaxCapacity=2)
    assert error_code(e) == "ValidationException"
    # A custom resource nobody answers for.
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(
            ServiceNamespace="custom-resource", ResourceId="http://127.0.0.1:1/nothing",
            ScalableDimension=CUSTOM_DIMENSION, MinCapacity=1, MaxCapacity=2)
    assert error_code(e) == "ValidationException"
    assert "http://127.0.0.1:1/nothing" in e.value.response["Error"]["Message"]


def test_register_bounds_errors(aas, resource):
    target = custom_target(resource)
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(**target, MinCapacity=1)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(**target, MinCapacity=4, MaxCapacity=2)
    assert e.value.response["Error"]["Message"] == \
        "Minimum capacity cannot be greater than maximum capacity"
    assert aas.describe_scalable_targets(
        ServiceNamespace="custom-resource", ResourceIds=[resource.url])["ScalableTargets"] == []


def test_put_describe_delete_policy_and_alarms(aas, cw, resource):
    target = custom_target(resource)
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=5)
    put = aas.put_scaling_policy(
        PolicyName="backlog", PolicyType="TargetTrackingScaling", **target,
        TargetTrackingScalingPolicyConfiguration=queue_policy(10.0, ScaleInCooldown=60))
    assert put["PolicyARN"].startswith(f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:")
    assert put["PolicyARN"].endswith(
        f":resource/custom-resource/{resource.url}:policyName/backlog")
    names = [a["AlarmName"] for a in put["Alarms"]]
    assert len(names) == 2
    assert names[0].startswith(f"TargetTracking-{resource.url}-AlarmHigh-")
    assert names[1].startswith(f"TargetTracking-{resource.url}-AlarmLow-")
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    high = alarms[names[0]]
    assert (high["Namespace"], high["MetricName"], high["Statistic"]) == \
        ("Nimbus/Test", "BacklogPerWorker", "Average")
    assert (high["ComparisonOperator"], high["Threshold"]) == ("GreaterThanThreshold", 10.0)
    assert high["AlarmActions"] == [put["PolicyARN"]]
    assert alarms[names[1]]["Threshold"] == pytest.approx(9.0)

    policies = aas.describe_scaling_policies(
        ServiceNamespace="custom-resource", ResourceId=resource.url)["ScalingPolicies"]
    assert len(policies) == 1
    p = policies[0]
    assert (p["PolicyName"], p["PolicyType"], p["PolicyARN"]) == \
        ("backlog", "TargetTrackingScaling", put["PolicyARN"])
    config = p["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 10.0 and config["ScaleInCooldown"] == 60
    assert config["CustomizedMetricSpecification"]["MetricName"] == "BacklogPerWorker"
    assert [a["AlarmName"] for a in p["Alarms"]] == names

    aas.delete_scaling_policy(PolicyName="backlog", **target)
    assert cw.describe_alarms(AlarmNames=names)["MetricAlarms"] == []
    with pytest.raises(ClientError) as e:
        aas.delete_scaling_policy(PolicyName="backlog", **target)
    assert error_code(e) == "ObjectNotFoundException"
    aas.deregister_scalable_target(**target)


def test_policy_errors(aas, resource):
    target = custom_target(resource)
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(PolicyName="p", PolicyType="TargetTrackingScaling", **target,
                               TargetTrackingScalingPolicyConfiguration=queue_policy(10.0))
    assert error_code(e) == "ObjectNotFoundException"
    assert "No scalable target registered for service namespace: custom-resource" in \
        e.value.response["Error"]["Message"]
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=5)
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(
            PolicyName="step", PolicyType="StepScaling", **target,
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    assert error_code(e) == "ValidationException"
    assert "not implemented by Nimbus" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(
            PolicyName="p", PolicyType="TargetTrackingScaling", **target,
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 10.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        aas.describe_scalable_targets(ServiceNamespace="custom-resource", MaxResults=51)
    assert error_code(e) == "ValidationException"
    aas.deregister_scalable_target(**target)


def test_aws_cli_describes_targets(aws_cli, aas, resource):
    aas.register_scalable_target(**custom_target(resource), MinCapacity=1, MaxCapacity=2)
    rc, out, err = aws_cli("application-autoscaling", "describe-scalable-targets",
                           "--service-namespace", "custom-resource",
                           "--resource-ids", resource.url)
    assert rc == 0, err
    assert [t["MaxCapacity"] for t in out["ScalableTargets"]] == [2]
    aas.deregister_scalable_target(**custom_target(resource))


# ---------------------------------------------------------------------------------------
# The engine, end to end


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory):
    """A server whose engine evaluates every second on 2-second windows, one datapoint
    to scale out and two to scale in."""
    s = Server(tmp_path_factory.mktemp("nimbus-autoscaling"), {
        "NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY,
        "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
    }, args=["--autoscaling-period", "1", "--autoscaling-window", "2",
             "--autoscaling-scale-out-datapoints", "1", "--autoscaling-scale-in-datapoints", "2"])
    yield s
    s.stop()


def fast_client(server, service):
    return boto3.client(service, endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
                        config=Config(retries={"max_attempts": 1}))


def feed_until(cw, value, done, timeout=30):
    """Puts the metric every 0.3 s (1-second resolution) until done() or timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        cw.put_metric_data(Namespace="Nimbus/Test", MetricData=[{
            "MetricName": "BacklogPerWorker", "Dimensions": [{"Name": "Queue", "Value": "jobs"}],
            "Value": value, "StorageResolution": 1}])
        if done():
            return True
        time.sleep(0.3)
    return done()


def test_custom_resource_scales_out_and_in(fast_server, resource):
    aas = fast_client(fast_server, "application-autoscaling")
    cw = fast_client(fast_server, "cloudwatch")
    target = custom_target(resource)
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=5)
    aas.put_scaling_policy(
        PolicyName="backlog", PolicyType="TargetTrackingScaling", **target,
        TargetTrackingScalingPolicyConfiguration=queue_policy(
            10.0, ScaleOutCooldown=0, ScaleInCooldown=0))

    # A backlog of 40 per worker against a target of 10: four workers.
    assert feed_until(cw, 40.0, lambda: resource.capacity >= 4), resource.patches
    assert resource.patches[0] == 4
    # Far above the target again: clamped to MaxCapacity.
    assert feed_until(cw, 400.0, lambda: resource.capacity == 5), resource.patches
    # Then the backlog drains: back to the minimum.
    assert feed_until(cw, 0.0, lambda: resource.capacity == 1), resource.patches

    activities = aas.describe_scaling_activities(
        ServiceNamespace="custom-resource", ResourceId=resource.url)["ScalingActivities"]
    assert [a["StatusCode"] for a in activities] == ["Successful"] * len(activities)
    assert activities[-1]["Description"] == "Setting desired capacity to 4."
    assert "AlarmHigh" in activities[-1]["Cause"] and \
        activities[-1]["Cause"].endswith("triggered policy backlog")
    assert activities[0]["Description"] == "Setting desired capacity to 1."
    assert "AlarmLow" in activities[0]["Cause"]
    assert activities[0]["StartTime"] >= activities[-1]["StartTime"]

    # Suspending scale-out holds the capacity whatever the metric says.
    aas.register_scalable_target(**target, SuspendedState={"DynamicScalingOutSuspended": True})
    feed_until(cw, 400.0, lambda: False, timeout=5)
    assert resource.capacity == 1
    aas.deregister_scalable_target(**target)


# ---------------------------------------------------------------------------------------
# SageMaker endpoint variants. Endpoints are the lead's work in progress
# (src/services/sagemaker/endpoints.cc): this test skips, saying so, while CreateEndpoint
# is not served or SageMaker has not registered its scalable-resource provider; it runs
# as soon as both are there.

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"


@pytest.fixture(scope="module")
def variant_server(tmp_path_factory):
    """One-minute windows, as AWS (SageMaker's Invocations may be stored per minute), but
    one datapoint each way and an evaluation every 2 s."""
    s = Server(tmp_path_factory.mktemp("nimbus-variants"), {
        "NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY,
        "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
    }, args=["--autoscaling-period", "2", "--autoscaling-window", "60",
             "--autoscaling-scale-out-datapoints", "1", "--autoscaling-scale-in-datapoints", "1"])
    yield s
    s.stop()


def train_xgboost(sm, s3, bucket):
    rows = "\n".join(f"{2 * i % 7},{i % 7},{i % 3}" for i in range(200)) + "\n"
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=rows.encode())
    name = unique("xgb")
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        RoleArn=ROLE, HyperParameters={"num_round": "10", "objective": "reg:squarederror"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/",
                             "S3DataDistributionType": "FullyReplicated"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job["ModelArtifacts"]["S3ModelArtifacts"]


def variant_count(sm, endpoint):
    d = sm.describe_endpoint(EndpointName=endpoint)
    return d["EndpointStatus"], d["ProductionVariants"][0].get("CurrentInstanceCount")


def wait_until(predicate, timeout, interval=1.0, during=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if during:
            during()
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_sagemaker_variant_scales_with_invocations(variant_server):
    sm = fast_client(variant_server, "sagemaker")
    s3 = fast_client(variant_server, "s3")
    runtime = fast_client(variant_server, "sagemaker-runtime")
    aas = fast_client(variant_server, "application-autoscaling")
    bucket = unique("autoscaling")
    s3.create_bucket(Bucket=bucket)
    artifact = train_xgboost(sm, s3, bucket)

    model, config, endpoint = unique("model"), unique("config"), unique("endpoint")
    try:
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": XGBOOST, "ModelDataUrl": artifact})
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    except ClientError as e:
        if error_code(e) in ("NotImplemented", "UnknownOperationException"):
            pytest.skip(f"SageMaker endpoints are not served yet ({error_code(e)})")
        raise
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 180})

    resource_id = f"endpoint/{endpoint}/variant/AllTraffic"
    target = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id,
              "ScalableDimension": VARIANT_DIMENSION}
    try:
        aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    except ClientError as e:
        if "ServiceNamespace sagemaker has no scalable resources" in \
                e.response["Error"]["Message"]:
            pytest.skip("SageMaker has not registered its ScalableResourceProvider yet")
        raise
    # A low target: 5 invocations per instance per minute.
    aas.put_scaling_policy(
        PolicyName="invocations", PolicyType="TargetTrackingScaling", **target,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})

    def invoke():
        for _ in range(5):
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,2")

    # Grows while it is busy (the first complete minute with traffic decides)...
    assert wait_until(lambda: variant_count(sm, endpoint) == ("InService", 2), timeout=240,
                      interval=2, during=invoke), variant_count(sm, endpoint)
    # ...and shrinks back once idle for a minute.
    assert wait_until(lambda: variant_count(sm, endpoint) == ("InService", 1), timeout=240,
                      interval=2), variant_count(sm, endpoint)
    causes = [a["Cause"] for a in aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingActivities"]]
    assert any("AlarmHigh" in c for c in causes) and any("AlarmLow" in c for c in causes)
    aas.deregister_scalable_target(**target)
    sm.delete_endpoint(EndpointName=endpoint)
