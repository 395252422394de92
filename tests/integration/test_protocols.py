"""The protocol engine and SigV4 seen from real clients: validation, unknown and
unimplemented operations, errors in each protocol, tampered and unsigned requests."""
import contextlib
import datetime
import json
import shutil
import subprocess
import urllib.error
import urllib.request

from unittest import mock

import botocore.auth
import cbor2
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, ROOT_KEY, ROOT_SECRET, error_code


@contextlib.contextmanager
def signing_clock(when):
    """Makes botocore's signers believe that now is `when` (a datetime)."""

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    with mock.patch.object(botocore.auth.datetime, "datetime", Frozen):
        yield


def send(server, method, path, service, body=b"", headers=None, key=ROOT_KEY,
         secret=ROOT_SECRET, sign=True, mutate=None, timestamp=None):
    """Signs a raw request with botocore's SigV4 signer, lets `mutate` tamper with it,
    sends it, and returns (status, headers, body)."""
    url = server.endpoint + path
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if sign:
        signer = SigV4Auth(Credentials(key, secret), service, REGION)
        if timestamp:
            with signing_clock(timestamp):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
    prepared = req.prepare()
    hdrs = dict(prepared.headers)
    data = prepared.body or b""
    if isinstance(data, str):
        data = data.encode()
    if mutate:
        hdrs, data = mutate(hdrs, data)
    r = urllib.request.Request(url, data=data if method != "GET" else None, method=method,
                               headers=hdrs)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
STS_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"


def test_signed_raw_query_request_succeeds(server):
    status, headers, body = send(server, "POST", "/", "sts", STS_BODY, FORM)
    assert status == 200, body
    assert b"<GetCallerIdentityResponse" in body and b"arn:aws:iam::000000000000:root" in body
    assert headers.get("x-amzn-RequestId")


def test_tampered_body_is_refused(server):
    status, _, body = send(server, "POST", "/", "sts", STS_BODY, FORM,
                           mutate=lambda h, d: (h, d.replace(b"2011", b"2012")))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body


def test_tampered_signed_header_is_refused(server):
    def mutate(h, d):
        h["X-Amz-Date"] = h["X-Amz-Date"][:-3] + "00Z"
        return h, d
    status, _, body = send(server, "POST", "/", "sts", STS_BODY, FORM, mutate=mutate)
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_wrong_secret_and_unknown_key_are_refused(server):
    status, _, body = send(server, "POST", "/", "sts", STS_BODY, FORM, secret="x" * 40)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    status, _, body = send(server, "POST", "/", "sts", STS_BODY, FORM, key="AKIAUNKNOWNKEY000000")
    assert status == 403 and b"InvalidClientTokenId" in body


def test_unsigned_request_is_refused(server):
    status, _, body = send(server, "POST", "/", "sts", STS_BODY, FORM, sign=False)
    assert status == 403 and b"MissingAuthenticationToken" in body


def test_request_signed_twenty_minutes_ago_is_refused_as_skewed(server):
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    status, _, body = send(server, "POST", "/", "sts", STS_BODY, FORM, timestamp=old)
    assert status == 403 and b"Signature expired" in body


def test_presigned_get_caller_identity_url_works_with_curl(make_client):
    url = make_client("sts").generate_presigned_url("get_caller_identity", ExpiresIn=60,
                                                    HttpMethod="GET")
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True,
                         text=True, timeout=30)
    body, code = out.stdout.rsplit("\n", 1)
    assert code == "200", body
    assert "arn:aws:iam::000000000000:root" in body


def test_expired_presigned_url_is_refused(server):
    req = AWSRequest(method="GET", url=server.endpoint +
                     "/?Action=GetCallerIdentity&Version=2011-06-15")
    signer = SigV4QueryAuth(Credentials(ROOT_KEY, ROOT_SECRET), "sts", REGION, expires=1)
    with signing_clock(datetime.datetime.utcnow() - datetime.timedelta(seconds=30)):
        signer.add_auth(req)
    try:
        urllib.request.urlopen(req.url, timeout=30)
        pytest.fail("an expired presigned URL was accepted")
    except urllib.error.HTTPError as e:
        assert e.code in (400, 403)
        assert b"expired" in e.read().lower()


def test_missing_required_parameter_gives_validation_errors(make_client):
    iam = make_client("iam", parameter_validation=False)
    with pytest.raises(ClientError) as e:
        iam.create_user()
    assert error_code(e) == "ValidationError"
    assert "userName" in e.value.response["Error"]["Message"]
    sm = make_client("sagemaker", parameter_validation=False)
    with pytest.raises(ClientError) as e:
        sm.describe_training_job()
    assert error_code(e) == "ValidationException"
    assert "Member must not be null" in e.value.response["Error"]["Message"]


def test_constraint_violations_name_member_and_constraint(make_client):
    iam = make_client("iam", parameter_validation=False)
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="bad name with spaces")
    assert error_code(e) == "ValidationError"
    assert "regular expression pattern" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="x" * 65)
    assert "length less than or equal to 64" in e.value.response["Error"]["Message"]


def test_unimplemented_operation_is_a_clean_501(make_client):
    with pytest.raises(ClientError) as e:
        make_client("sagemaker").list_hyper_parameter_tuning_jobs()
    assert error_code(e) == "NotImplemented"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "ListHyperParameterTuningJobs" in e.value.response["Error"]["Message"]


def test_unknown_operation_names_the_operation(server):
    status, _, body = send(server, "POST", "/", "sagemaker", b"{}", {
        "X-Amz-Target": "SageMaker.FlyToTheMoon", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400
    err = json.loads(body)
    assert err["__type"].endswith("UnknownOperationException")
    assert "FlyToTheMoon" in err["message"]


BAD_PERIOD = "The parameter Period must be 1, 5, 10, 30, or a multiple of 60."


def test_cloudwatch_over_query_with_aws_cli_v2(aws_cli):
    rc, out, err = aws_cli("cloudwatch", "list-metrics", "--namespace", "Nimbus/ProtoQuery")
    assert rc == 0, err
    assert out["Metrics"] == []
    rc, out, err = aws_cli("cloudwatch", "get-metric-statistics", "--namespace", "A",
                           "--metric-name", "B", "--start-time", "2026-01-01T00:00:00Z",
                           "--end-time", "2026-01-02T00:00:00Z", "--period", "7",
                           "--statistics", "Average")
    assert rc != 0
    assert "InvalidParameterValue" in err and BAD_PERIOD in err


def test_cloudwatch_over_cbor(server):
    cbor_headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                    "Accept": "application/cbor"}
    path = "/service/GraniteServiceVersion20100801/operation/"
    status, headers, resp = send(server, "POST", path + "ListMetrics", "monitoring",
                                 cbor2.dumps({"Namespace": "Nimbus/ProtoCbor"}), cbor_headers)
    assert status == 200
    assert headers.get("smithy-protocol") == "rpc-v2-cbor"
    assert cbor2.loads(resp)["Metrics"] == []
    body = cbor2.dumps({"Namespace": "A", "MetricName": "B", "Period": 7,
                        "Statistics": ["Average"],
                        "StartTime": cbor2.CBORTag(1, 1767225600),
                        "EndTime": cbor2.CBORTag(1, 1767312000)})
    status, headers, resp = send(server, "POST", path + "GetMetricStatistics", "monitoring",
                                 body, cbor_headers)
    assert status == 400
    err = cbor2.loads(resp)
    assert err["__type"].endswith("InvalidParameterValue") and err["message"] == BAD_PERIOD


def test_cloudwatch_with_the_newest_boto3(server):
    """The default python3 of these machines carries boto3 1.43, whose CloudWatch model
    lists smithy-rpc-v2-cbor, json and query; it speaks JSON 1.0 in query-compatible mode
    (Debian's older boto3 speaks query). Runs as a separate process."""
    python = shutil.which("python3")
    probe = subprocess.run([python, "-c", "import botocore,sys;"
                            "v=tuple(map(int,botocore.__version__.split('.')[:2]));"
                            "sys.exit(0 if v>=(1,36) else 1)"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no boto3 >= 1.36 on this machine")
    script = f"""
import boto3, datetime, json
from botocore.exceptions import ClientError
c = boto3.client("cloudwatch", endpoint_url="{server.endpoint}", region_name="us-east-1",
                 aws_access_key_id="{ROOT_KEY}", aws_secret_access_key="{ROOT_SECRET}")
sent = []
c.meta.events.register("before-send", lambda request, **kw: sent.append(
    {{k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}}))
c.put_metric_data(Namespace="Nimbus/ProtoJson", MetricData=[{{"MetricName": "M", "Value": 1}}])
# Over 10 KB: botocore gzips PutMetricData bodies (the requestcompression trait).
c.put_metric_data(Namespace="Nimbus/ProtoJson", MetricData=[
    {{"MetricName": "M", "Value": float(i), "Dimensions": [{{"Name": "Host", "Value": "h%d" % i}}]}}
    for i in range(300)])
names = [m["MetricName"] for m in c.list_metrics(Namespace="Nimbus/ProtoJson")["Metrics"]]
try:
    c.get_metric_statistics(Namespace="A", MetricName="B", Period=7, Statistics=["Average"],
                            StartTime=datetime.datetime(2026, 1, 1),
                            EndTime=datetime.datetime(2026, 1, 2))
    error = None
except ClientError as e:
    error = {{"code": e.response["Error"]["Code"], "msg": e.response["Error"]["Message"],
             "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}}
print(json.dumps({{"names": names, "error": error, "sent": sent}}))
"""
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    headers = result["sent"][0]
    assert (headers.get("X-Amz-Target") == "GraniteServiceVersion20100801.PutMetricData"
            or headers.get("smithy-protocol") == "rpc-v2-cbor")
    assert result["sent"][1].get("Content-Encoding") == "gzip"
    assert len(result["names"]) == 301 and set(result["names"]) == {"M"}
    assert result["error"] == {"code": "InvalidParameterValue", "msg": BAD_PERIOD,
                               "status": 400}
