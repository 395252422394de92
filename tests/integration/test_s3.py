"""S3 through AWS CLI v2 and boto3: buckets, objects, listings, copies, multipart uploads,
tagging, versioning, conditional and ranged reads, checksums, hostile keys, and every error
code of issue 4 with S3's XML error body."""
import base64
import datetime
import hashlib
import json
import os
import subprocess
import urllib.request
import uuid

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import AWS_CLI_V2, REGION, ROOT_KEY, ROOT_SECRET, error_code

MIB = 1024 * 1024


def unique(prefix="bkt"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def s3(make_client):
    return make_client("s3")


@pytest.fixture
def bucket(s3):
    name = unique()
    s3.create_bucket(Bucket=name)
    yield name
    # Best-effort cleanup so that buckets do not pile up in the shared server.
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


@pytest.fixture(scope="module")
def aws_s3(server, tmp_path_factory):
    """aws_s3(*args) runs an `aws s3 ...` command of AWS CLI v2 (plain-text output) and
    returns (returncode, stdout, stderr)."""
    home = tmp_path_factory.mktemp("awss3home")

    def run(*args):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "AWS_ACCESS_KEY_ID": ROOT_KEY, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET,
               "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": ""}
        proc = subprocess.run([AWS_CLI_V2, "--endpoint-url", server.endpoint, "s3", *args],
                              capture_output=True, text=True, env=env, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr

    return run


def raw_request(server, method, path, body=b"", headers=None, key=ROOT_KEY, secret=ROOT_SECRET,
                declared_body=None):
    """A SigV4-signed request sent with urllib; returns (status, headers, body). When
    declared_body is given, the signature (and x-amz-content-sha256) covers declared_body
    while `body` is what is actually sent."""
    url = server.endpoint + path
    headers = {"Content-Type": "application/octet-stream", **(headers or {})}
    signed = AWSRequest(method=method, url=url,
                        data=declared_body if declared_body is not None else body,
                        headers=headers)
    S3SigV4Auth(Credentials(key, secret), "s3", REGION).add_auth(signed)
    req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None,
                                 method=method, headers=dict(signed.headers.items()))
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# --- AWS CLI v2 ------------------------------------------------------------------------------

def test_cli_mb_cp_ls_sync_rm_rb(aws_cli, aws_s3, tmp_path):
    name = unique("cli")
    rc, _, err = aws_s3("mb", f"s3://{name}")
    assert rc == 0, err
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    rc, _, err = aws_s3("cp", str(src / "a.txt"), f"s3://{name}/one/a.txt")
    assert rc == 0, err
    rc, _, err = aws_s3("sync", str(src), f"s3://{name}/tree")
    assert rc == 0, err
    proc = subprocess.run([AWS_CLI_V2, "--version"], capture_output=True, text=True)
    assert proc.stdout.startswith("aws-cli/2"), proc.stdout
    rc, out, err = aws_s3("ls", f"s3://{name}/", "--recursive")
    assert rc == 0, err
    assert "one/a.txt" in out and "tree/sub/b.bin" in out
    rc, out, err = aws_cli("s3api", "list-objects-v2", "--bucket", name)
    assert rc == 0, err
    assert sorted(o["Key"] for o in out["Contents"]) == [
        "one/a.txt", "tree/a.txt", "tree/sub/b.bin"]

    dest = tmp_path / "dest"
    rc, _, err = aws_s3("sync", f"s3://{name}/tree", str(dest))
    assert rc == 0, err
    assert (dest / "a.txt").read_text() == "alpha\n"
    assert (dest / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    rc, _, err = aws_s3("cp", f"s3://{name}/one/a.txt", str(tmp_path / "back.txt"))
    assert rc == 0, err
    assert (tmp_path / "back.txt").read_text() == "alpha\n"

    rc, _, err = aws_s3("rb", f"s3://{name}")
    assert rc != 0 and "BucketNotEmpty" in err
    rc, _, err = aws_s3("rm", f"s3://{name}", "--recursive")
    assert rc == 0, err
    rc, _, err = aws_s3("rb", f"s3://{name}")
    assert rc == 0, err
    rc, out, err = aws_cli("s3api", "list-buckets")
    assert rc == 0, err
    assert name not in [b["Name"] for b in out["Buckets"]]


def test_cli_s3_ls_shows_prefixes_and_objects(aws_s3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/x.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="top.txt", Body=b"top")
    rc, out, err = aws_s3("ls", f"s3://{bucket}/")
    assert rc == 0, err
    assert "PRE dir/" in out and "top.txt" in out


def test_cli_s3api_object_round_trip_with_metadata(aws_cli, bucket, tmp_path):
    body = tmp_path / "doc.json"
    body.write_text('{"a": 1}')
    rc, out, err = aws_cli("s3api", "put-object", "--bucket", bucket, "--key", "docs/doc.json",
                           "--body", str(body), "--content-type", "application/json",
                           "--cache-control", "max-age=60", "--content-disposition",
                           "attachment", "--metadata", "Owner=team-a,stage=dev",
                           "--tagging", "k1=v1&k2=v%202")
    assert rc == 0, err
    assert out["ETag"] == '"%s"' % hashlib.md5(b'{"a": 1}').hexdigest()
    rc, out, err = aws_cli("s3api", "head-object", "--bucket", bucket, "--key", "docs/doc.json")
    assert rc == 0, err
    assert out["ContentType"] == "application/json"
    assert out["CacheControl"] == "max-age=60"
    assert out["ContentDisposition"] == "attachment"
    assert out["Metadata"] == {"owner": "team-a", "stage": "dev"}
    assert out["ContentLength"] == 8
    rc, out, err = aws_cli("s3api", "get-object-tagging", "--bucket", bucket, "--key",
                           "docs/doc.json")
    assert rc == 0, err
    assert {t["Key"]: t["Value"] for t in out["TagSet"]} == {"k1": "v1", "k2": "v 2"}
    rc, out, err = aws_cli("s3api", "get-object", "--bucket", bucket, "--key", "docs/doc.json",
                           str(tmp_path / "out.json"))
    assert rc == 0, err
    assert out["TagCount"] == 2
    assert (tmp_path / "out.json").read_text() == '{"a": 1}'


def test_bucket_location_head_and_listing(s3):
    name = unique("loc")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
        head = s3.head_bucket(Bucket=name)
        assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
        listed = s3.list_buckets()
        assert name in [b["Name"] for b in listed["Buckets"]]
        assert len(listed["Owner"]["ID"]) == 64
    finally:
        s3.delete_bucket(Bucket=name)
    default = unique("loc")
    s3.create_bucket(Bucket=default)
    assert s3.get_bucket_location(Bucket=default)["LocationConstraint"] is None
    s3.delete_bucket(Bucket=default)


# --- boto3 transfers ---------------------------------------------------------------------------

def test_boto3_threaded_multipart_upload_and_download(s3, bucket, tmp_path):
    data = os.urandom(11 * MIB + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB,
                            max_concurrency=4)
    s3.upload_file(str(src), bucket, "big/object.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big/object.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    dst = tmp_path / "down.bin"
    s3.download_file(bucket, "big/object.bin", str(dst),
                     Config=TransferConfig(multipart_threshold=1 * MIB,
                                           multipart_chunksize=1 * MIB, max_concurrency=8))
    assert dst.read_bytes() == data


BOTO3_LATEST_SCRIPT = r"""
import os, sys, hashlib, zlib, base64
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
endpoint, key, secret, bucket, workdir = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key, aws_secret_access_key=secret,
                  config=Config(retries={"max_attempts": 1}))
body = b"checksummed body " * 1000
put = s3.put_object(Bucket=bucket, Key="latest/put.txt", Body=body)
crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
assert put.get("ChecksumCRC32") == crc, put
got = s3.get_object(Bucket=bucket, Key="latest/put.txt", ChecksumMode="ENABLED")
assert got["Body"].read() == body
assert got["ChecksumCRC32"] == crc, got
data = os.urandom(6 * 1024 * 1024 + 7)
path = os.path.join(workdir, "latest.bin")
open(path, "wb").write(data)
s3.upload_file(path, bucket, "latest/multipart.bin",
               Config=TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                     multipart_chunksize=5 * 1024 * 1024))
out = os.path.join(workdir, "latest.out")
s3.download_file(bucket, "latest/multipart.bin", out)
assert open(out, "rb").read() == data
print("OK")
"""


def test_default_python3_boto3_with_crc32_checksums(server, bucket, tmp_path):
    script = tmp_path / "latest.py"
    script.write_text(BOTO3_LATEST_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(["python3", str(script), server.endpoint, ROOT_KEY, ROOT_SECRET, bucket,
                           str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def test_aws_chunked_upload_with_crc32_trailer_is_verified(server, s3, bucket):
    import zlib
    payload = b"chunk-data-" * 5000
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    chunks = b""
    for i in range(0, len(payload), 16384):
        piece = payload[i:i + 16384]
        chunks += b"%x\r\n" % len(piece) + piece + b"\r\n"

    def send(trailer_value):
        body = chunks + b"0\r\n" + b"x-amz-checksum-crc32:" + trailer_value.encode() + b"\r\n\r\n"
        headers = {"Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
                   "x-amz-decoded-content-length": str(len(payload)),
                   "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "x-amz-sdk-checksum-algorithm": "CRC32"}
        url = f"{server.endpoint}/{bucket}/chunked.bin"
        req = AWSRequest(method="PUT", url=url, data=b"", headers=headers)
        auth = S3SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", REGION)
        auth._should_sha256_sign_payload = lambda request: False
        auth.payload = lambda request: "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        auth.add_auth(req)
        hdrs = dict(req.headers.items())
        hdrs["Content-Length"] = str(len(body))
        r = urllib.request.Request(url, data=body, method="PUT", headers=hdrs)
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, text = send("AAAAAA==")
    assert status == 400 and b"BadDigest" in text, text
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="chunked.bin")
    assert error_code(e) == "404"
    status, text = send(crc)
    assert status == 200, text
    got = s3.get_object(Bucket=bucket, Key="chunked.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == payload
    assert got["ChecksumCRC32"] == crc
    assert "ContentEncoding" not in got


# --- Reads: ranges, conditions, overrides -------------------------------------------------------

def test_range_conditions_and_response_overrides(s3, bucket):
    body = bytes(range(256)) * 4
    etag = s3.put_object(Bucket=bucket, Key="r.bin", Body=body)["ETag"]
    part = s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=10-19")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == "bytes 10-19/1024"
    assert part["Body"].read() == body[10:20]
    tail = s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=-5")
    assert tail["Body"].read() == body[-5:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=5000-6000")
    assert error_code(e) == "InvalidRange"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416

    assert s3.get_object(Bucket=bucket, Key="r.bin", IfMatch=etag)["Body"].read() == body
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r.bin", IfMatch='"0000"')
    assert error_code(e) == "PreconditionFailed"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r.bin", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r.bin", IfModifiedSince=future)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r.bin", IfUnmodifiedSince=past)
    assert error_code(e) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="r.bin", IfModifiedSince=past)["ContentLength"] == 1024
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="r.bin", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304

    over = s3.get_object(Bucket=bucket, Key="r.bin", ResponseContentType="text/csv",
                         ResponseContentDisposition="inline; filename=r.csv",
                         ResponseCacheControl="no-cache")
    assert over["ContentType"] == "text/csv"
    assert over["ContentDisposition"] == "inline; filename=r.csv"
    assert over["CacheControl"] == "no-cache"
    assert over["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert over["ResponseMetadata"]["HTTPHeaders"]["last-modified"].endswith("GMT")


# --- Copy -------------------------------------------------------------------------------------

def test_copy_object_directives_versions_and_conditions(s3, bucket):
    src_key = "src dir/ä+b?.txt"
    first = s3.put_object(Bucket=bucket, Key=src_key, Body=b"one", ContentType="text/plain",
                          Metadata={"m": "1"})
    out = s3.copy_object(Bucket=bucket, Key="copy1", CopySource={"Bucket": bucket, "Key": src_key})
    assert out["CopyObjectResult"]["ETag"] == first["ETag"]
    head = s3.head_object(Bucket=bucket, Key="copy1")
    assert head["Metadata"] == {"m": "1"} and head["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": src_key},
                   MetadataDirective="REPLACE", Metadata={"n": "2"}, ContentType="text/csv")
    head = s3.head_object(Bucket=bucket, Key="copy2")
    assert head["Metadata"] == {"n": "2"} and head["ContentType"] == "text/csv"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": src_key},
                       CopySourceIfMatch='"nope"')
    assert error_code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": src_key},
                       CopySourceIfNoneMatch=first["ETag"])
    assert error_code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_code(e) == "NoSuchKey"

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="ver", Body=b"v1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="ver", Body=b"v2")
    out = s3.copy_object(Bucket=bucket, Key="from-v1",
                         CopySource={"Bucket": bucket, "Key": "ver", "VersionId": v1})
    assert out["CopySourceVersionId"] == v1
    assert s3.get_object(Bucket=bucket, Key="from-v1")["Body"].read() == b"v1"


def test_bodies_on_both_sides_of_the_inline_limit_round_trip(s3, bucket):
    """Bodies up to 64 KiB live in the metadata database, longer ones in files: reads,
    ranges, copies and part copies work the same across the boundary, in both directions."""
    limit = 64 * 1024
    sizes = [0, 1, limit - 1, limit, limit + 1, 3 * limit]
    bodies = {n: os.urandom(n) for n in sizes}
    for n, body in bodies.items():
        put = s3.put_object(Bucket=bucket, Key=f"b{n}", Body=body)
        assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    for n, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=f"b{n}")["Body"].read() == body
        if n > 10:
            part = s3.get_object(Bucket=bucket, Key=f"b{n}", Range=f"bytes={n - 10}-")
            assert part["ContentRange"] == f"bytes {n - 10}-{n - 1}/{n}"
            assert part["Body"].read() == body[-10:]
        copied = s3.copy_object(Bucket=bucket, Key=f"c{n}",
                                CopySource={"Bucket": bucket, "Key": f"b{n}"},
                                ChecksumAlgorithm="SHA256")
        assert copied["CopyObjectResult"]["ChecksumSHA256"] == \
            base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert s3.get_object(Bucket=bucket, Key=f"c{n}")["Body"].read() == body

    # A part copied from an inline object assembles with an uploaded one.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=1,
                           Body=b"a" * (5 * MIB))["ETag"]
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": f"b{limit}"},
                                 CopySourceRange="bytes=1-100")["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first},
                                                            {"PartNumber": 2, "ETag": second}]})
    got = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert got == b"a" * (5 * MIB) + bodies[limit][1:101]


# --- Listings ---------------------------------------------------------------------------------

def test_list_objects_v1_and_v2_pagination_delimiters_and_url_encoding(s3, bucket):
    keys = ["a/1", "a/2", "b/1", "c", "d e+f", "z/ü"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    v2 = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["a/", "b/", "z/"]
    assert [o["Key"] for o in v2["Contents"]] == ["c", "d e+f"]
    assert v2["KeyCount"] == 5

    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=2, **kw)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys) and pages == 3
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="c", FetchOwner=True)
    assert [o["Key"] for o in after["Contents"]] == ["d e+f", "z/ü"]
    assert "Owner" in after["Contents"][0]
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="a/")["Contents"]] == [
        "a/1", "a/2"]

    v1 = s3.list_objects(Bucket=bucket, MaxKeys=3)
    assert v1["IsTruncated"] and [o["Key"] for o in v1["Contents"]] == ["a/1", "a/2", "b/1"]
    rest = s3.list_objects(Bucket=bucket, Marker="b/1")
    assert [o["Key"] for o in rest["Contents"]] == ["c", "d e+f", "z/ü"]

    # An explicit encoding-type=url is not decoded by botocore: the wire form shows.
    enc = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Prefix="d")
    assert enc["EncodingType"] == "url"
    assert [o["Key"] for o in enc["Contents"]] == ["d%20e%2Bf"]
    enc = s3.list_objects(Bucket=bucket, EncodingType="url", Prefix="z")
    assert [o["Key"] for o in enc["Contents"]] == ["z/%C3%BC"]


# --- Multipart --------------------------------------------------------------------------------

def test_multipart_lifecycle_copy_part_listing_and_errors(s3, bucket):
    part1 = os.urandom(5 * MIB)
    s3.put_object(Bucket=bucket, Key="source", Body=b"0123456789" * 100)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/x-mp",
                                    Metadata={"kind": "mp"})
    uid = up["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [("mp", uid)]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    cp = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "source"},
                             CopySourceRange="bytes=10-29")
    e2 = cp["CopyPartResult"]["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MIB), (2, 20)]

    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                       {"PartNumber": 1, "ETag": e1}]})
    assert error_code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"ffff"'}]})
    assert error_code(e) == "InvalidPart"

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    md5s = hashlib.md5(part1).digest() + hashlib.md5(b"0123456789" * 2).digest()
    assert done["ETag"] == '"%s-2"' % hashlib.md5(md5s).hexdigest()
    assert done["Key"] == "mp" and done["Bucket"] == bucket
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == part1 + b"0123456789" * 2
    assert got["ContentType"] == "text/x-mp" and got["Metadata"] == {"kind": "mp"}

    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert error_code(e) == "NoSuchUpload"

    small = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    a = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=1, Body=b"a")["ETag"]
    b = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=small,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": a}, {"PartNumber": 2, "ETag": b}]})
    assert error_code(e) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=3, Body=b"c")
    assert error_code(e) == "NoSuchUpload"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


# --- Tagging, versioning, notifications --------------------------------------------------------

def test_object_and_bucket_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"t", Tagging="a=1&b=2")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []

    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ml"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == "NoSuchTagSet"


def test_versioning_versions_and_delete_markers(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"two" and got["VersionId"] == v2
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["ContentLength"] == 3

    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_code(e) == "NoSuchKey"
    versions = s3.list_object_versions(Bucket=bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions["Versions"]] == [
        (v2, False), (v1, False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in versions["DeleteMarkers"]] == [(marker, True)]
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_delete_objects_quiet_and_verbose(s3, bucket):
    for k in ("d1", "d2", "d3"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"d")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d1"}, {"Key": "d2"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["d1", "d2"]
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d3"}], "Quiet": True})
    assert "Deleted" not in out and "Errors" not in out
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_bucket_notification_configuration_is_stored(s3, bucket):
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    config = {"LambdaFunctionConfigurations": [{
        "Id": "on-upload",
        "LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}}]}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["LambdaFunctionConfigurations"] == config["LambdaFunctionConfigurations"]


# --- Integrity ----------------------------------------------------------------------------------

def test_content_md5_and_checksum_headers_are_verified(s3, bucket):
    good = base64.b64encode(hashlib.md5(b"body").digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=b"body", ContentMD5=good)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"body", ContentMD5=wrong)
    assert error_code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"body", ContentMD5="not-base64!")
    assert error_code(e) == "InvalidDigest"
    sha = base64.b64encode(hashlib.sha256(b"body").digest()).decode()
    out = s3.put_object(Bucket=bucket, Key="sha", Body=b"body", ChecksumSHA256=sha)
    assert out["ChecksumSHA256"] == sha
    assert s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"body",
                      ChecksumSHA256=base64.b64encode(hashlib.sha256(b"x").digest()).decode())
    assert error_code(e) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_streamed_body_with_wrong_declared_sha256_is_refused_and_not_stored(server, s3, bucket):
    status, _, text = raw_request(server, "PUT", f"/{bucket}/sha-mismatch", body=b"evil-body",
                                  declared_body=b"good-body")
    assert status == 400 and b"XAmzContentSHA256Mismatch" in text, text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="sha-mismatch")
    status, _, _ = raw_request(server, "PUT", f"/{bucket}/sha-ok", body=b"good-body")
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="sha-ok")["Body"].read() == b"good-body"


# --- Hostile keys -------------------------------------------------------------------------------

def test_hostile_keys_round_trip_exactly(s3, bucket, server):
    keys = ["../x", "../../etc/passwd", "/etc/passwd", "a/./b/../c", "ключ/日本語 ✓ 🚀",
            "sp ace+plus%percent&amp?q=1#frag", "k" * 1024, "dir//double", "\\back\\slash"]
    for i, k in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=k, Body=f"body-{i}".encode())
    for i, k in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == f"body-{i}".encode(), k
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in p.get("Contents", [])]
    assert sorted(listed) == sorted(keys)
    # Nothing landed outside the data dir's object area.
    assert not os.path.exists(os.path.join(server.data_dir, "..", "x"))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_code(e) == "KeyTooLongError"


# --- Errors -------------------------------------------------------------------------------------

def test_bucket_error_codes(s3, bucket):
    for bad in ("UPPER", "ab", "bad_name", "-dash", "192.168.1.1"):
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=bad)
        assert error_code(e) == "InvalidBucketName", bad
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket)
    assert error_code(e) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=unique("missing"))
    assert error_code(e) == "NoSuchBucket"
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(e) == "BucketNotEmpty"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="absent")
    assert error_code(e) == "NoSuchKey"


def test_errors_use_the_s3_xml_error_body(server, bucket):
    status, headers, body = raw_request(server, "GET", f"/{bucket}/absent")
    assert status == 404
    assert headers["x-amz-request-id"]
    assert headers["Content-Type"] == "application/xml"
    assert b"<Error><Code>NoSuchKey</Code>" in body
    assert b"<RequestId>" in body


def test_wrong_secret_is_signature_does_not_match(make_client):
    bad = make_client("s3", secret="wrong-secret-wrong-secret-wrong-secret00")
    with pytest.raises(ClientError) as e:
        bad.list_buckets()
    assert error_code(e) == "SignatureDoesNotMatch"


def test_user_without_s3_permissions_is_access_denied(make_client, bucket):
    iam = make_client("iam")
    name = unique("nos3")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = make_client("s3", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        user.list_buckets()
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        user.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert error_code(e) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*",
                       "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
    user.put_object(Bucket=bucket, Key="allowed", Body=b"ok")
    assert user.get_object(Bucket=bucket, Key="allowed")["Body"].read() == b"ok"
    with pytest.raises(ClientError) as e:
        user.create_bucket(Bucket=unique("other"))
    assert error_code(e) == "AccessDenied"


def test_policies_use_s3s_own_action_names(make_client, bucket):
    """A read-only policy written as AWS documents it: s3:ListBucket on the bucket,
    s3:GetObject on its objects. HeadObject and ListObjectsV2 are authorized as those
    actions; writes and copies out of an unreadable bucket are refused."""
    root = make_client("s3")
    root.put_object(Bucket=bucket, Key="doc.txt", Body=b"hello")
    secret_bucket = unique("secret")
    root.create_bucket(Bucket=secret_bucket)
    root.put_object(Bucket=secret_bucket, Key="s.txt", Body=b"secret")

    iam = make_client("iam")
    name = unique("reader")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"arn:aws:s3:::{bucket}/*"},
        ]}))
    user = make_client("s3", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert "doc.txt" in [o["Key"] for o in user.list_objects_v2(Bucket=bucket)["Contents"]]
    assert user.head_object(Bucket=bucket, Key="doc.txt")["ContentLength"] == 5
    assert user.get_object(Bucket=bucket, Key="doc.txt")["Body"].read() == b"hello"
    user.copy_object(Bucket=bucket, Key="copy.txt",
                     CopySource={"Bucket": bucket, "Key": "doc.txt"})
    with pytest.raises(ClientError) as e:
        user.copy_object(Bucket=bucket, Key="stolen.txt",
                         CopySource={"Bucket": secret_bucket, "Key": "s.txt"})
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        user.list_objects_v2(Bucket=secret_bucket)
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        user.delete_object(Bucket=bucket, Key="doc.txt")
    assert error_code(e) == "AccessDenied"
