"""CloudWatch metrics and alarms through the real clients: boto3 (query protocol), the
AWS CLI v2, a raw Smithy RPC v2 CBOR request, the newest boto3 (JSON 1.0), and the
server's own Prometheus /metrics."""
import datetime
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import cbor2
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, ROOT_KEY, ROOT_SECRET, error_code

UTC = datetime.timezone.utc


def now():
    return datetime.datetime.now(UTC)


def minute(delta_minutes=0):
    """The start of the current minute, shifted by delta_minutes."""
    t = now().replace(second=0, microsecond=0)
    return t + datetime.timedelta(minutes=delta_minutes)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cw(make_client):
    return make_client("cloudwatch")


def test_put_metric_data_then_get_metric_statistics(cw):
    ns = unique("Nimbus/Stats")
    t = minute(-3) + datetime.timedelta(seconds=10)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "Timestamp": t, "Values": [float(v) for v in range(1, 101)], "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "Timestamp": t, "StatisticValues": {"SampleCount": 2, "Sum": 400, "Minimum": 200,
                                             "Maximum": 200}, "Unit": "Milliseconds"},
    ])
    out = cw.get_metric_statistics(
        Namespace=ns, MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}],
        StartTime=minute(-10), EndTime=minute(1), Period=60,
        Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
        ExtendedStatistics=["p50", "p99"])
    assert out["Label"] == "Latency"
    [p] = out["Datapoints"]
    assert p["Timestamp"] == minute(-3)
    assert p["Unit"] == "Milliseconds"
    assert p["SampleCount"] == 102
    assert p["Sum"] == 5050 + 400
    assert p["Minimum"] == 1 and p["Maximum"] == 200
    assert abs(p["ExtendedStatistics"]["p50"] - 51) <= 0.51
    assert abs(p["ExtendedStatistics"]["p99"] - 200) <= 2

    # Another unit of the same metric is filtered out by Unit.
    only_seconds = cw.get_metric_statistics(
        Namespace=ns, MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}],
        StartTime=minute(-10), EndTime=minute(1), Period=60, Statistics=["Sum"],
        Unit="Seconds")
    assert only_seconds["Datapoints"] == []


def test_validation_errors_match_cloudwatch(cw):
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[{"MetricName": "X", "Value": 1}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "X", "Value": 1e200}])
    assert error_code(e) == "InvalidParameterValue"
    assert "MetricData.member.1.Value" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="App", MetricData=[
            {"MetricName": "X", "Value": 1,
             "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert error_code(e) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="App",
                           MetricData=[{"MetricName": "X", "Value": 1}] * 1001)
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        cw.get_metric_statistics(Namespace="App", MetricName="X", StartTime=minute(-1441),
                                 EndTime=minute(0), Period=60, Statistics=["Sum"])
    assert error_code(e) == "InvalidParameterCombination"
    assert "1,441 datapoints" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        cw.get_metric_statistics(Namespace="App", MetricName="X", StartTime=minute(-10),
                                 EndTime=minute(0), Period=90, Statistics=["Sum"])
    assert error_code(e) == "InvalidParameterValue"


def test_get_metric_data_with_math_and_pages(cw):
    ns = unique("Nimbus/Math")
    data = []
    for i in range(5):
        t = minute(-6 + i)
        data.append({"MetricName": "Requests", "Timestamp": t, "Value": 10.0 * (i + 1)})
        data.append({"MetricName": "Errors", "Timestamp": t, "Value": float(i)})
    cw.put_metric_data(Namespace=ns, MetricData=data)

    def stat(qid, name, return_data=False):
        return {"Id": qid, "ReturnData": return_data,
                "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name},
                               "Period": 60, "Stat": "Sum"}}

    out = cw.get_metric_data(
        MetricDataQueries=[stat("req", "Requests"), stat("err", "Errors", True),
                           {"Id": "rate", "Expression": "100 * err / req", "Label": "Rate"},
                           {"Id": "both", "Expression": "SUM(METRICS())"}],
        StartTime=minute(-10), EndTime=minute(1), ScanBy="TimestampAscending")
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert set(results) == {"err", "rate", "both"}
    assert results["err"]["Label"] == "Errors"
    assert results["err"]["Values"] == [0, 1, 2, 3, 4]
    assert results["err"]["Timestamps"][0] == minute(-6)
    assert results["err"]["StatusCode"] == "Complete"
    assert results["rate"]["Label"] == "Rate"
    assert [round(v, 6) for v in results["rate"]["Values"]] == [0, 5, 6.666667, 7.5, 8]
    assert results["both"]["Values"] == [10, 21, 32, 43, 54]

    # Two datapoints per page, followed with NextToken (and by the paginator).
    pages = cw.get_paginator("get_metric_data").paginate(
        MetricDataQueries=[stat("err", "Errors", True)], StartTime=minute(-10),
        EndTime=minute(1), ScanBy="TimestampDescending", MaxDatapoints=2)
    values = [v for page in pages for r in page["MetricDataResults"] for v in r["Values"]]
    assert values == [4, 3, 2, 1, 0]

    with pytest.raises(ClientError) as e:
        cw.get_metric_data(MetricDataQueries=[{"Id": "e1", "Expression": "NOPE(m1)"}],
                           StartTime=minute(-10), EndTime=minute(0))
    assert error_code(e) == "ValidationError"


def test_list_metrics_filters_and_paginates(cw):
    ns = unique("Nimbus/List")
    data = [{"MetricName": "CPU", "Value": 1.0,
             "Dimensions": [{"Name": "Host", "Value": f"h{i}"}]} for i in range(12)]
    data.append({"MetricName": "Disk", "Value": 1.0,
                 "Dimensions": [{"Name": "Host", "Value": "h1"}, {"Name": "Mount", "Value": "/"}]})
    cw.put_metric_data(Namespace=ns, MetricData=data)
    metrics = [m for page in cw.get_paginator("list_metrics").paginate(Namespace=ns)
               for m in page["Metrics"]]
    assert len(metrics) == 13
    h1 = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Host", "Value": "h1"}])["Metrics"]
    assert sorted(m["MetricName"] for m in h1) == ["CPU", "Disk"]
    mount = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Mount"}])["Metrics"]
    assert mount == [{"Namespace": ns, "MetricName": "Disk",
                      "Dimensions": [{"Name": "Host", "Value": "h1"},
                                     {"Name": "Mount", "Value": "/"}]}]
    recent = cw.list_metrics(Namespace=ns, MetricName="Disk", RecentlyActive="PT3H")["Metrics"]
    assert len(recent) == 1


def test_alarm_lifecycle(cw):
    ns = unique("Nimbus/Alarm")
    name = unique("latency-high")
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Timestamp": minute(-2) + datetime.timedelta(seconds=5),
         "Value": 5.0}])
    cw.put_metric_alarm(
        AlarmName=name, Namespace=ns, MetricName="Latency", Statistic="Maximum", Period=60,
        EvaluationPeriods=3, DatapointsToAlarm=1, Threshold=3.0,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
        AlarmActions=["arn:aws:sns:us-east-1:000000000000:ops"],
        Tags=[{"Key": "team", "Value": "ml"}])
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    arn = f"arn:aws:cloudwatch:{REGION}:000000000000:alarm:{name}"
    assert alarm["AlarmArn"] == arn
    # Evaluated at once: the datapoint of two minutes ago breaches.
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith(
        "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (")
    assert "were greater than the threshold (3.0)" in alarm["StateReason"] or \
        "was greater than the threshold (3.0)" in alarm["StateReason"]
    reason_data = json.loads(alarm["StateReasonData"])
    assert reason_data["recentDatapoints"] == [5.0]
    assert alarm["AlarmActions"] == ["arn:aws:sns:us-east-1:000000000000:ops"]

    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "dev"}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]

    for_metric = cw.describe_alarms_for_metric(Namespace=ns, MetricName="Latency")
    assert [a["AlarmName"] for a in for_metric["MetricAlarms"]] == [name]
    assert cw.describe_alarms(AlarmNamePrefix=name, StateValue="OK")["MetricAlarms"] == []

    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="by hand")
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    if alarm["StateValue"] == "OK":  # unless the evaluator has run since
        assert alarm["StateReason"] == "by hand"
    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")
    summaries = [h["HistorySummary"] for h in history["AlarmHistoryItems"]]  # newest first
    assert summaries[-2:] == ["Alarm updated from ALARM to OK",
                              "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    actions = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")
    assert actions["AlarmHistoryItems"][0]["HistorySummary"].startswith("Failed to execute action")

    # The server's evaluator (every 10 s) puts it back where the data says.
    deadline = time.time() + 25
    while time.time() < deadline:
        if cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM":
            break
        time.sleep(1)
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM"

    cw.disable_alarm_actions(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["ActionsEnabled"] is False
    with pytest.raises(ClientError) as e:
        cw.delete_alarms(AlarmNames=[name, "no-such-alarm"])
    assert error_code(e) == "ResourceNotFound"
    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="x")
    assert error_code(e) == "ResourceNotFound"


def test_unsupported_alarms_are_refused_cleanly(cw):
    with pytest.raises(ClientError) as e:
        cw.put_metric_alarm(AlarmName="anomaly", Namespace="X", MetricName="Y",
                            Statistic="Sum", Period=60, EvaluationPeriods=1,
                            ComparisonOperator="GreaterThanUpperThreshold",
                            ThresholdMetricId="ad1")
    assert error_code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        cw.put_metric_alarm(AlarmName="bad-period", Namespace="X", MetricName="Y",
                            Statistic="Sum", Period=45, EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanThreshold")
    assert error_code(e) == "ValidationError"


def test_aws_cli_v2(aws_cli):
    ns = unique("Nimbus/Cli")
    rc, _, err = aws_cli("cloudwatch", "put-metric-data", "--namespace", ns,
                         "--metric-name", "Jobs", "--value", "7", "--unit", "Count",
                         "--dimensions", "Queue=train")
    assert rc == 0, err
    rc, out, err = aws_cli("cloudwatch", "list-metrics", "--namespace", ns)
    assert rc == 0, err
    assert out["Metrics"] == [{"Namespace": ns, "MetricName": "Jobs",
                               "Dimensions": [{"Name": "Queue", "Value": "train"}]}]
    start = (minute(-5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (minute(2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rc, out, err = aws_cli("cloudwatch", "get-metric-statistics", "--namespace", ns,
                           "--metric-name", "Jobs", "--dimensions", "Name=Queue,Value=train",
                           "--start-time", start, "--end-time", end, "--period", "60",
                           "--statistics", "Sum", "SampleCount")
    assert rc == 0, err
    [p] = out["Datapoints"]
    assert p["Sum"] == 7 and p["SampleCount"] == 1 and p["Unit"] == "Count"
    queries = json.dumps([{"Id": "j", "MetricStat": {
        "Metric": {"Namespace": ns, "MetricName": "Jobs",
                   "Dimensions": [{"Name": "Queue", "Value": "train"}]},
        "Period": 60, "Stat": "Sum"}}, {"Id": "d", "Expression": "j * 2"}])
    rc, out, err = aws_cli("cloudwatch", "get-metric-data", "--metric-data-queries", queries,
                           "--start-time", start, "--end-time", end)
    assert rc == 0, err
    values = {r["Id"]: r["Values"] for r in out["MetricDataResults"]}
    assert values == {"j": [7.0], "d": [14.0]}

    name = unique("cli-alarm")
    rc, _, err = aws_cli("cloudwatch", "put-metric-alarm", "--alarm-name", name,
                         "--namespace", ns, "--metric-name", "Jobs",
                         "--dimensions", "Name=Queue,Value=train", "--statistic", "Sum",
                         "--period", "60", "--evaluation-periods", "1", "--threshold", "100",
                         "--comparison-operator", "GreaterThanOrEqualToThreshold")
    assert rc == 0, err
    rc, out, err = aws_cli("cloudwatch", "describe-alarms", "--alarm-names", name)
    assert rc == 0, err
    [alarm] = out["MetricAlarms"]
    assert alarm["Threshold"] == 100 and alarm["ComparisonOperator"].startswith("GreaterThanOr")
    assert alarm["StateValue"] in ("OK", "INSUFFICIENT_DATA")
    rc, _, err = aws_cli("cloudwatch", "delete-alarms", "--alarm-names", name)
    assert rc == 0, err
    rc, out, _ = aws_cli("cloudwatch", "describe-alarms", "--alarm-names", name)
    assert out["MetricAlarms"] == []


def cbor_call(server, operation, payload):
    """A raw, SigV4-signed Smithy RPC v2 CBOR request to CloudWatch."""
    url = f"{server.endpoint}/service/GraniteServiceVersion20100801/operation/{operation}"
    req = AWSRequest(method="POST", url=url, data=cbor2.dumps(payload), headers={
        "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
        "Accept": "application/cbor"})
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "monitoring", REGION).add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(url, data=prepared.body, method="POST",
                               headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), cbor2.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), cbor2.loads(e.read())


def test_raw_cbor_requests(server):
    ns = unique("Nimbus/Cbor")
    t = minute(-2)
    status, headers, body = cbor_call(server, "PutMetricData", {
        "Namespace": ns,
        "MetricData": [{"MetricName": "Bytes", "Value": 512.0, "Unit": "Bytes",
                        "Timestamp": cbor2.CBORTag(1, t.timestamp())}]})
    assert status == 200, body
    assert headers.get("smithy-protocol") == "rpc-v2-cbor"
    status, _, body = cbor_call(server, "ListMetrics", {"Namespace": ns})
    assert status == 200, body
    assert [m["MetricName"] for m in body["Metrics"]] == ["Bytes"]
    status, _, body = cbor_call(server, "GetMetricStatistics", {
        "Namespace": ns, "MetricName": "Bytes", "Period": 60, "Statistics": ["Sum"],
        "StartTime": cbor2.CBORTag(1, minute(-10).timestamp()),
        "EndTime": cbor2.CBORTag(1, minute(1).timestamp())})
    assert status == 200, body
    [p] = body["Datapoints"]
    assert p["Sum"] == 512 and p["Unit"] == "Bytes"
    ts = p["Timestamp"]
    ts = ts.timestamp() if isinstance(ts, datetime.datetime) else ts
    assert ts == t.timestamp()
    status, _, body = cbor_call(server, "PutMetricData", {
        "Namespace": ns, "MetricData": [{"MetricName": "Bytes", "Value": float("nan")}]})
    assert status == 400
    assert body["__type"].endswith("InvalidParameterValue")


def test_cloudwatch_with_the_newest_boto3(server):
    """python3 on PATH may carry a boto3 >= 1.36, whose CloudWatch client speaks JSON 1.0
    (query-compatible) or CBOR; it must work the same."""
    python = shutil.which("python3")
    probe = subprocess.run([python, "-c", "import botocore,sys;"
                            "v=tuple(map(int,botocore.__version__.split('.')[:2]));"
                            "sys.exit(0 if v>=(1,36) else 1)"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no boto3 >= 1.36 on this machine")
    ns = unique("Nimbus/Json")
    script = f"""
import boto3, datetime, json
c = boto3.client("cloudwatch", endpoint_url="{server.endpoint}", region_name="{REGION}",
                 aws_access_key_id="{ROOT_KEY}", aws_secret_access_key="{ROOT_SECRET}")
t = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
c.put_metric_data(Namespace="{ns}", MetricData=[{{"MetricName": "M", "Value": 3.0,
    "Timestamp": t - datetime.timedelta(minutes=1)}}])
out = c.get_metric_statistics(Namespace="{ns}", MetricName="M", Period=60,
    StartTime=t - datetime.timedelta(minutes=10), EndTime=t, Statistics=["Sum"])
names = [m["MetricName"] for m in c.list_metrics(Namespace="{ns}")["Metrics"]]
try:
    c.put_metric_data(Namespace="AWS/X", MetricData=[{{"MetricName": "M", "Value": 1.0}}])
    code = None
except c.exceptions.ClientError as e:
    code = e.response["Error"]["Code"]
print(json.dumps({{"sums": [p["Sum"] for p in out["Datapoints"]], "names": names,
                  "code": code}}))
"""
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sums"] == [3.0]
    assert result["names"] == ["M"]
    assert result["code"] == "InvalidParameterValue"


def test_prometheus_metrics_endpoint(server, cw):
    cw.list_metrics(Namespace="Nimbus/Prom")
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    assert "# TYPE nimbus_http_requests_total counter" in text
    assert 'nimbus_http_requests_total{method="POST",code="200"}' in text
    assert "# TYPE nimbus_http_request_duration_seconds histogram" in text
    assert 'nimbus_http_request_duration_seconds_bucket{method="POST",le="+Inf"}' in text
    uptime = [line for line in text.splitlines() if line.startswith("nimbus_uptime_seconds ")]
    assert len(uptime) == 1 and float(uptime[0].split()[1]) > 0

    def get_count():
        with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as resp:
            body = resp.read().decode()
        for line in body.splitlines():
            if line.startswith('nimbus_http_requests_total{method="GET",code="200"}'):
                return float(line.split()[1])
        return 0.0

    before = get_count()
    after = get_count()
    assert after >= before + 1  # the first scrape was counted
