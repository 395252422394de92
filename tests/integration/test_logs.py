"""CloudWatch Logs through boto3 and AWS CLI v2: groups, streams, events, filters,
retention, tags, pagination, errors and IAM resources."""
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, error_code

DAY_MS = 86400 * 1000


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def logs(make_client):
    return make_client("logs")


def make_stream(logs, group=None, stream="s"):
    group = group or "/test/" + unique("g")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def put(logs, group, stream, messages, base=None):
    base = base if base is not None else now_ms() - len(messages)
    events = [{"timestamp": base + i, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


# ---- log groups ------------------------------------------------------------------------

def test_log_group_lifecycle(logs):
    name = "/test/" + unique("group")
    logs.create_log_group(logGroupName=name, tags={"team": "ml"})
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=name)
    assert error_code(e) == "ResourceAlreadyExistsException"

    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert len(groups) == 1
    g = groups[0]
    assert g["logGroupName"] == name
    assert g["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    assert g["storedBytes"] == 0
    assert abs(g["creationTime"] - now_ms()) < 60_000
    assert "retentionInDays" not in g

    logs.delete_log_group(logGroupName=name)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName=name)
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log group does not exist."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_describe_log_groups_pages_with_the_boto3_paginator(logs):
    prefix = "/test/" + unique("many") + "/"
    names = [f"{prefix}{i:02d}" for i in range(7)]
    for n in names:
        logs.create_log_group(logGroupName=n)
    pages = list(logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=prefix, PaginationConfig={"PageSize": 3}))
    assert len(pages) == 3
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == names
    assert "nextToken" in pages[0] and "nextToken" not in pages[-1]

    # logGroupNamePattern: a case-insensitive substring.
    tag = prefix.split("/")[2].upper()
    found = logs.describe_log_groups(logGroupNamePattern=tag)["logGroups"]
    assert sorted(g["logGroupName"] for g in found) == names
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(logGroupNamePrefix=prefix, logGroupNamePattern="x")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(nextToken="forged-token")
    assert error_code(e) == "InvalidParameterException"


def test_retention_policy_values_and_errors(logs):
    name = "/test/" + unique("ret")
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=14)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["retentionInDays"] == 14
    for bad in (2, 0, 10000):
        with pytest.raises(ClientError) as e:
            logs.put_retention_policy(logGroupName=name, retentionInDays=bad)
        assert error_code(e) == "InvalidParameterException"
    logs.delete_retention_policy(logGroupName=name)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=name + "-missing", retentionInDays=7)
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.delete_retention_policy(logGroupName=name + "-missing")
    assert error_code(e) == "ResourceNotFoundException"


def test_retention_hides_events_older_than_the_period(logs):
    group, stream = make_stream(logs)
    t = now_ms()
    put(logs, group, stream, ["two days old"], base=t - 2 * DAY_MS)
    put(logs, group, stream, ["fresh"], base=t - 1000)
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["two days old", "fresh"]
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["fresh"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["fresh"]
    # New events past the retention are rejected as expired.
    r = put(logs, group, stream, ["expired", "ok"], base=t - DAY_MS - 60_000)
    # Both are more than a day old: both expired.
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}


def test_tags_by_name_and_by_arn(logs):
    name = "/test/" + unique("tags")
    logs.create_log_group(logGroupName=name, tags={"a": "1"})
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
    logs.tag_log_group(logGroupName=name, tags={"b": "2"})
    logs.tag_resource(resourceArn=arn, tags={"c": "3", "a": "one"})
    assert logs.list_tags_log_group(logGroupName=name)["tags"] == {"a": "one", "b": "2", "c": "3"}
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {
        "a": "one", "b": "2", "c": "3"}
    logs.untag_log_group(logGroupName=name, tags=["b"])
    logs.untag_resource(resourceArn=arn, tagKeys=["c"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "one"}

    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    assert error_code(e) == "TooManyTagsException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_for_resource(resourceArn=arn + "-missing")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_log_group(logGroupName=name + "-missing")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_for_resource(resourceArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:destination:d")
    assert error_code(e) == "InvalidParameterException"


# ---- log streams -----------------------------------------------------------------------

def test_log_stream_lifecycle_and_errors(logs):
    group, stream = make_stream(logs, stream="app/1")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName="app/1")
    assert error_code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group + "-missing", logStreamName="x")
    assert error_code(e) == "ResourceNotFoundException"
    put(logs, group, stream, ["hello", "world"])
    s = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
    assert s["logStreamName"] == "app/1"
    assert s["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:app/1"
    assert s["storedBytes"] == 10
    assert s["firstEventTimestamp"] <= s["lastEventTimestamp"]
    assert abs(s["lastIngestionTime"] - now_ms()) < 60_000
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 10

    logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log stream does not exist."
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group + "-missing")
    assert error_code(e) == "ResourceNotFoundException"


def test_describe_log_streams_orders_and_pages(logs):
    group = "/test/" + unique("streams")
    logs.create_log_group(logGroupName=group)
    t = now_ms()
    # Last event times: s3 oldest, s1 newest; s0 and s4 have none.
    for name in ("s0", "s1", "s2", "s3", "s4"):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    put(logs, group, "s3", ["x"], base=t - 3000)
    put(logs, group, "s2", ["x"], base=t - 2000)
    put(logs, group, "s1", ["x"], base=t - 1000)

    paginator = logs.get_paginator("describe_log_streams")
    pages = list(paginator.paginate(logGroupName=group, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == [
        "s0", "s1", "s2", "s3", "s4"]
    by_time = [s["logStreamName"] for p in paginator.paginate(
        logGroupName=group, orderBy="LastEventTime", descending=True,
        PaginationConfig={"PageSize": 2}) for s in p["logStreams"]]
    assert by_time[:3] == ["s1", "s2", "s3"]
    assert sorted(by_time[3:]) == ["s0", "s4"]
    desc = logs.describe_log_streams(logGroupName=group, descending=True, limit=1)
    assert desc["logStreams"][0]["logStreamName"] == "s4" and "nextToken" in desc
    assert [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group, logStreamNamePrefix="s2")["logStreams"]] == ["s2"]
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                  logStreamNamePrefix="s")
    assert error_code(e) == "InvalidParameterException"


# ---- events ----------------------------------------------------------------------------

def test_put_log_events_validates_like_aws(logs):
    group, stream = make_stream(logs)
    t = now_ms()
    r = logs.put_log_events(logGroupName=group, logStreamName=stream, sequenceToken="ignored",
                            logEvents=[{"timestamp": t, "message": "m"}])
    assert r["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in r

    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}])
    assert error_code(e) == "InvalidParameterException"
    assert "chronological" in e.value.response["Error"]["Message"]

    # 1 MiB counting 26 bytes per event.
    size = 1048576 // 4 - 26
    ok = [{"timestamp": t, "message": "x" * size} for _ in range(4)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=ok)
    ok[-1]["message"] += "x"
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=ok)
    assert error_code(e) == "InvalidParameterException"

    too_old = t - 14 * DAY_MS - 3600 * 1000
    r = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": too_old, "message": "old"},
        {"timestamp": too_old + 1, "message": "old2"},
        {"timestamp": too_old + 2 * 3600 * 1000, "message": "kept"}])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    r = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": t, "message": "kept too"},
        {"timestamp": t + 3 * 3600 * 1000, "message": "future"}])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    messages = [e["message"] for e in logs.filter_log_events(
        logGroupName=group, filterPattern="kept")["events"]]
    assert messages == ["kept", "kept too"]

    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName="missing",
                            logEvents=[{"timestamp": t, "message": "m"}])
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log stream does not exist."


def test_get_log_events_pages_forward_and_backward(logs):
    group, stream = make_stream(logs)
    t = now_ms() - 10_000
    messages = [f"line {i}" for i in range(25)]
    put(logs, group, stream, messages, base=t)

    # The classic loop: follow nextForwardToken until it comes back unchanged.
    seen, token, calls = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        r = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10, **kwargs)
        calls += 1
        seen += [e["message"] for e in r["events"]]
        if r["nextForwardToken"] == token:
            break
        token = r["nextForwardToken"]
        assert token.startswith("f/")
    assert seen == messages and calls == 4

    # From the tail backwards.
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10)
    assert [e["message"] for e in r["events"]] == messages[15:]
    assert r["nextBackwardToken"].startswith("b/")
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10,
                            nextToken=r["nextBackwardToken"])
    assert [e["message"] for e in r["events"]] == messages[5:15]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in r["events"])

    # Time window: startTime inclusive, endTime exclusive.
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True,
                            startTime=t + 3, endTime=t + 6)
    assert [e["message"] for e in r["events"]] == messages[3:6]

    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken="f/1234")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName="missing")
    assert error_code(e) == "ResourceNotFoundException"


def test_filter_log_events_patterns_and_paginator(logs):
    group = "/test/" + unique("filter")
    logs.create_log_group(logGroupName=group)
    for s in ("web-1", "web-2", "worker"):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t = now_ms() - 100_000
    for i in range(30):
        stream = ("web-1", "web-2", "worker")[i % 3]
        body = {"level": "error" if i % 2 == 0 else "info", "latency": i * 10, "i": i}
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t + i, "message": json.dumps(body)}])

    everything = logs.filter_log_events(logGroupName=group)
    assert len(everything["events"]) == 30
    times = [e["timestamp"] for e in everything["events"]]
    assert times == sorted(times)
    assert {s["logStreamName"] for s in everything["searchedLogStreams"]} == {
        "web-1", "web-2", "worker"}
    first = everything["events"][0]
    assert first["logStreamName"] == "web-1" and first["eventId"] and first["ingestionTime"]

    paginator = logs.get_paginator("filter_log_events")
    pages = list(paginator.paginate(logGroupName=group, logStreamNamePrefix="web-",
                                    filterPattern='{ $.level = "error" && $.latency >= 100 }',
                                    PaginationConfig={"PageSize": 2}))
    got = [json.loads(e["message"])["i"] for p in pages for e in p["events"]]
    assert got == [i for i in range(10, 30) if i % 2 == 0 and i % 3 != 2]
    assert len(pages) >= 3

    terms = logs.filter_log_events(logGroupName=group, logStreamNames=["worker"],
                                   filterPattern='info -"\\"latency\\": 50,"')
    assert [json.loads(e["message"])["i"] for e in terms["events"]] == [11, 17, 23, 29]
    any_of = logs.filter_log_events(logGroupName=group, filterPattern='?"\\"i\\": 3}" ?"\\"i\\": 4}"')
    assert sorted(json.loads(e["message"])["i"] for e in any_of["events"]) == [3, 4]
    window = logs.filter_log_events(logGroupName=group, startTime=t + 5, endTime=t + 8)
    assert [json.loads(e["message"])["i"] for e in window["events"]] == [5, 6, 7]

    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.latency > }")
    assert error_code(e) == "InvalidParameterException"
    assert "Invalid filter pattern" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, nextToken="AAAAAAAAAAAA")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group + "-missing")
    assert error_code(e) == "ResourceNotFoundException"


def test_delete_log_group_removes_streams_and_events(logs):
    group, stream = make_stream(logs)
    put(logs, group, stream, ["a", "b"])
    logs.delete_log_group(logGroupName=group)
    logs.create_log_group(logGroupName=group)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    assert logs.filter_log_events(logGroupName=group)["events"] == []


# ---- authorization ---------------------------------------------------------------------

def test_iam_policies_apply_to_log_group_arns(make_client):
    iam = make_client("iam")
    user = unique("logger")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    allowed = "/allowed/" + unique("g")
    iam.put_user_policy(UserName=user, PolicyName="logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:*",
                       "Resource": f"arn:aws:logs:*:*:log-group:{allowed}:*"}]}))
    as_user = make_client("logs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    as_user.create_log_group(logGroupName=allowed)
    as_user.create_log_stream(logGroupName=allowed, logStreamName="s")
    put(as_user, allowed, "s", ["permitted"])
    r = as_user.get_log_events(logGroupName=allowed, logStreamName="s")
    assert [e["message"] for e in r["events"]] == ["permitted"]
    with pytest.raises(ClientError) as e:
        as_user.create_log_group(logGroupName="/denied/" + unique("g"))
    assert error_code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        as_user.describe_log_groups()
    assert error_code(e) == "AccessDeniedException"


# ---- AWS CLI v2 ------------------------------------------------------------------------

def test_cli_round_trip(aws_cli, logs):
    group = "/cli/" + unique("g")
    rc, _, err = aws_cli("logs", "create-log-group", "--log-group-name", group,
                         "--tags", "team=ml")
    assert rc == 0, err
    rc, _, err = aws_cli("logs", "create-log-group", "--log-group-name", group)
    assert rc != 0 and "ResourceAlreadyExistsException" in err
    rc, _, err = aws_cli("logs", "create-log-stream", "--log-group-name", group,
                         "--log-stream-name", "a")
    assert rc == 0, err
    # Streams b and c come from boto3, to keep the number of (slow) CLI starts down.
    for s in ("b", "c"):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t = now_ms() - 10_000
    for i, s in enumerate(("a", "b", "c")):
        events = [{"timestamp": t + 10 * i + j,
                   "message": f"{s} ERROR {j}" if j % 2 else f"{s} INFO {j}"} for j in range(4)]
        if s == "a":
            rc, out, err = aws_cli("logs", "put-log-events", "--log-group-name", group,
                                   "--log-stream-name", s, "--log-events", json.dumps(events))
            assert rc == 0, err
            assert out["nextSequenceToken"]
        else:
            logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=events)
    rc, out, err = aws_cli("logs", "put-log-events", "--log-group-name", group,
                           "--log-stream-name", "a",
                           "--log-events", f"timestamp={t + 100},message=shorthand")
    assert rc == 0, err

    rc, out, err = aws_cli("logs", "get-log-events", "--log-group-name", group,
                           "--log-stream-name", "a", "--start-from-head")
    assert rc == 0, err
    assert [e["message"] for e in out["events"]] == [
        "a INFO 0", "a ERROR 1", "a INFO 2", "a ERROR 3", "shorthand"]
    assert out["nextForwardToken"].startswith("f/")

    # The CLI follows nextToken itself: a page size of 2 forces several pages.
    rc, out, err = aws_cli("logs", "filter-log-events", "--log-group-name", group,
                           "--filter-pattern", "ERROR", "--page-size", "2")
    assert rc == 0, err
    assert [e["message"] for e in out["events"]] == [
        "a ERROR 1", "a ERROR 3", "b ERROR 1", "b ERROR 3", "c ERROR 1", "c ERROR 3"]

    rc, out, err = aws_cli("logs", "describe-log-streams", "--log-group-name", group,
                           "--order-by", "LastEventTime", "--descending", "--page-size", "1")
    assert rc == 0, err
    assert [s["logStreamName"] for s in out["logStreams"]] == ["a", "c", "b"]

    rc, _, err = aws_cli("logs", "put-retention-policy", "--log-group-name", group,
                         "--retention-in-days", "30")
    assert rc == 0, err
    rc, _, err = aws_cli("logs", "put-retention-policy", "--log-group-name", group,
                         "--retention-in-days", "31")
    assert rc != 0 and "InvalidParameterException" in err
    rc, out, err = aws_cli("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert rc == 0, err
    assert out["logGroups"][0]["retentionInDays"] == 30
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"team": "ml"}
    rc, _, err = aws_cli("logs", "delete-log-group", "--log-group-name", group)
    assert rc == 0, err
    rc, _, err = aws_cli("logs", "get-log-events", "--log-group-name", group,
                         "--log-stream-name", "a")
    assert rc != 0 and "ResourceNotFoundException" in err
