"""STS and IAM through boto3 and AWS CLI v2: identities, keys, policies, roles."""
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, error_code


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_cli_get_caller_identity_returns_the_root_identity(aws_cli):
    rc, out, err = aws_cli("sts", "get-caller-identity")
    assert rc == 0, err
    assert out["Account"] == ACCOUNT
    assert out["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_boto3_get_caller_identity(make_client):
    out = make_client("sts").get_caller_identity()
    assert out["Account"] == ACCOUNT and out["Arn"].endswith(":root")


def make_user(iam, policy=None):
    name = unique("user")
    user = iam.create_user(UserName=name)["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and key["Status"] == "Active"
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return name, key["AccessKeyId"], key["SecretAccessKey"]


def test_iam_user_round_trip_and_policy_enforcement(make_client):
    iam = make_client("iam")
    name, key, secret = make_user(iam, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:ListUsers", "iam:GetUser"],
                       "Resource": "*"}],
    })
    assert name in [u["UserName"] for u in iam.list_users()["Users"]]
    assert iam.get_user(UserName=name)["User"]["UserName"] == name
    assert [p for p in iam.list_user_policies(UserName=name)["PolicyNames"]] == ["inline"]

    as_user = make_client("iam", key=key, secret=secret)
    as_user.list_users()  # allowed
    with pytest.raises(ClientError) as e:
        as_user.create_user(UserName=unique("nope"))
    assert error_code(e) == "AccessDenied"
    assert "iam:CreateUser" in e.value.response["Error"]["Message"]
    me = make_client("sts", key=key, secret=secret).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"


def test_user_without_policies_is_denied_everything_but_get_caller_identity(make_client, aws_cli):
    iam = make_client("iam")
    name, key, secret = make_user(iam)
    rc, out, err = aws_cli("sts", "get-caller-identity", key=key, secret=secret)
    assert rc == 0 and out["Arn"].endswith(f":user/{name}"), err
    rc, out, err = aws_cli("iam", "list-users", key=key, secret=secret)
    assert rc != 0 and "AccessDenied" in err
    with pytest.raises(ClientError) as e:
        make_client("sagemaker", key=key, secret=secret).list_training_jobs()
    assert error_code(e) == "AccessDeniedException"


def test_explicit_deny_in_a_managed_policy_beats_allow(make_client):
    iam = make_client("iam")
    name, key, secret = make_user(iam, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]})
    arn = iam.create_policy(PolicyName=unique("deny"), PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "iam:List*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    assert arn in [p["PolicyArn"] for p in
                   iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]]
    as_user = make_client("iam", key=key, secret=secret)
    as_user.get_user(UserName=name)
    with pytest.raises(ClientError) as e:
        as_user.list_users()
    assert error_code(e) == "AccessDenied"
    assert "explicit deny" in e.value.response["Error"]["Message"]
    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    as_user.list_users()


def test_assume_role_gives_temporary_credentials_limited_to_the_role(make_client):
    iam = make_client("iam")
    name, key, secret = make_user(iam, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    role = unique("role")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}))

    sts = make_client("sts", key=key, secret=secret)
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s1"

    temp = dict(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                token=creds["SessionToken"])
    me = make_client("sts", **temp).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s1"
    make_client("iam", **temp).list_roles()
    with pytest.raises(ClientError) as e:
        make_client("iam", **temp).list_users()
    assert error_code(e) == "AccessDenied"
    # The session token is part of the credential: without it the key is refused.
    with pytest.raises(ClientError) as e:
        make_client("sts", key=temp["key"], secret=temp["secret"]).get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"


def test_assume_role_refused_when_the_trust_policy_does_not_name_the_caller(make_client):
    iam = make_client("iam")
    name, key, secret = make_user(iam, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=unique("svc"),
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    with pytest.raises(ClientError) as e:
        make_client("sts", key=key, secret=secret).assume_role(RoleArn=role_arn,
                                                               RoleSessionName="xx")
    assert error_code(e) == "AccessDenied"


def test_iam_errors_are_iams(make_client):
    iam = make_client("iam")
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName="does-not-exist")
    assert error_code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    name = unique("dup")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName=name)
    assert error_code(e) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument="{not json")
    assert error_code(e) == "MalformedPolicyDocument"
    iam.delete_user(UserName=name)


def test_cli_iam_user_and_key_lifecycle(aws_cli):
    name = unique("cli")
    rc, out, err = aws_cli("iam", "create-user", "--user-name", name)
    assert rc == 0, err
    rc, out, err = aws_cli("iam", "create-access-key", "--user-name", name)
    assert rc == 0, err
    key_id = out["AccessKey"]["AccessKeyId"]
    rc, out, err = aws_cli("iam", "list-access-keys", "--user-name", name)
    assert [k["AccessKeyId"] for k in out["AccessKeyMetadata"]] == [key_id]
    rc, out, err = aws_cli("iam", "delete-user", "--user-name", name)
    assert rc != 0 and "DeleteConflict" in err
    assert aws_cli("iam", "delete-access-key", "--user-name", name, "--access-key-id", key_id)[0] == 0
    assert aws_cli("iam", "delete-user", "--user-name", name)[0] == 0
    rc, out, err = aws_cli("iam", "get-user", "--user-name", name)
    assert rc != 0 and "NoSuchEntity" in err
