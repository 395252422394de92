"""S3 through the other real clients: s3cmd and rclone (Debian), presigned GET and PUT URLs
fetched with curl, and virtual-hosted-style addressing (Host: <bucket>.localhost)."""
import os
import subprocess
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, ROOT_KEY, ROOT_SECRET, have


def unique(prefix="cl"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def s3(make_client):
    # SigV4 presigning (botocore 1.29 presigns S3 URLs with SigV2 unless told otherwise).
    return make_client("s3", signature_version="s3v4")


def run(cmd, env=None, timeout=60):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def curl(*args):
    proc = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
                          capture_output=True, timeout=60)
    body, _, code = proc.stdout.rpartition(b"\n")
    return int(code), body


# --- s3cmd ------------------------------------------------------------------------------------

@pytest.mark.skipif(not have("s3cmd"), reason="s3cmd is not installed")
def test_s3cmd_bucket_and_object_lifecycle(server, tmp_path):
    host = f"127.0.0.1:{server.port}"
    config = tmp_path / "s3cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {ROOT_KEY}\n"
        f"secret_key = {ROOT_SECRET}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        f"bucket_location = {REGION}\n"
        "use_https = False\n"
        "signature_v2 = False\n")
    base = ["s3cmd", "-c", str(config)]
    name = unique("s3cmd")
    src = tmp_path / "file.txt"
    src.write_text("from s3cmd\n" * 100)
    rc, out, err = run(base + ["mb", f"s3://{name}"])
    assert rc == 0, out + err
    rc, out, err = run(base + ["put", str(src), f"s3://{name}/dir/file.txt"])
    assert rc == 0, out + err
    rc, out, err = run(base + ["ls", "-r", f"s3://{name}"])
    assert rc == 0 and f"s3://{name}/dir/file.txt" in out, out + err
    rc, out, err = run(base + ["info", f"s3://{name}/dir/file.txt"])
    assert rc == 0 and "File size: 1100" in out, out + err
    dst = tmp_path / "back.txt"
    rc, out, err = run(base + ["get", f"s3://{name}/dir/file.txt", str(dst)])
    assert rc == 0, out + err
    assert dst.read_text() == src.read_text()
    rc, out, err = run(base + ["del", f"s3://{name}/dir/file.txt"])
    assert rc == 0, out + err
    rc, out, err = run(base + ["rb", f"s3://{name}"])
    assert rc == 0, out + err


# --- rclone -----------------------------------------------------------------------------------

@pytest.mark.skipif(not have("rclone"), reason="rclone is not installed")
def test_rclone_copy_list_cat_and_purge(server, s3, tmp_path):
    name = unique("rclone")
    s3.create_bucket(Bucket=name)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path),
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_NIMBUS_TYPE": "s3",
        "RCLONE_CONFIG_NIMBUS_PROVIDER": "Other",
        "RCLONE_CONFIG_NIMBUS_ENV_AUTH": "false",
        "RCLONE_CONFIG_NIMBUS_ACCESS_KEY_ID": ROOT_KEY,
        "RCLONE_CONFIG_NIMBUS_SECRET_ACCESS_KEY": ROOT_SECRET,
        "RCLONE_CONFIG_NIMBUS_ENDPOINT": server.endpoint,
        "RCLONE_CONFIG_NIMBUS_REGION": REGION,
        "RCLONE_CONFIG_NIMBUS_FORCE_PATH_STYLE": "true",
    }
    (tmp_path / "rclone.conf").write_text("")
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "one.txt").write_text("one")
    (src / "nested" / "two.bin").write_bytes(os.urandom(300_000))
    rc, out, err = run(["rclone", "copy", str(src), f"nimbus:{name}/data"], env=env)
    assert rc == 0, out + err
    rc, out, err = run(["rclone", "ls", f"nimbus:{name}"], env=env)
    assert rc == 0, out + err
    assert "data/one.txt" in out and "data/nested/two.bin" in out
    rc, out, err = run(["rclone", "cat", f"nimbus:{name}/data/one.txt"], env=env)
    assert rc == 0 and out == "one", out + err
    rc, out, err = run(["rclone", "check", str(src), f"nimbus:{name}/data"], env=env)
    assert rc == 0, out + err
    rc, out, err = run(["rclone", "purge", f"nimbus:{name}"], env=env)
    assert rc == 0, out + err
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


# --- presigned URLs and virtual hosts ----------------------------------------------------------

def test_presigned_get_and_put_with_curl(s3, tmp_path):
    name = unique("pre")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="dir/hello.txt", Body=b"presigned hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "dir/hello.txt"},
                                    ExpiresIn=300)
    code, body = curl(url)
    assert code == 200 and body == b"presigned hello"

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "up.bin"},
                                        ExpiresIn=300)
    payload = os.urandom(100_000)
    (tmp_path / "up.bin").write_bytes(payload)
    code, body = curl("-X", "PUT", "--upload-file", str(tmp_path / "up.bin"), put_url)
    assert code == 200, body
    assert s3.get_object(Bucket=name, Key="up.bin")["Body"].read() == payload
    # curl --data-binary sends Content-Type: application/x-www-form-urlencoded; the body is
    # still the object's.
    form_url = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "form.txt"},
                                         ExpiresIn=300)
    code, body = curl("-X", "PUT", "--data-binary", "a=1&b=2", form_url)
    assert code == 200, body
    assert s3.get_object(Bucket=name, Key="form.txt")["Body"].read() == b"a=1&b=2"

    code, body = curl(url.replace("Signature=", "Signature=0"))
    assert code == 403 and b"SignatureDoesNotMatch" in body
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "up.bin"},
                                        ExpiresIn=1)
    time.sleep(2)
    code, body = curl(expired)
    assert code == 403 and b"AccessDenied" in body


def test_virtual_hosted_style_addressing(server, make_client):
    name = unique("vhost")
    s3 = make_client("s3", signature_version="s3v4")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a b/c.txt", Body=b"virtual")
    vhost = boto3.client(
        "s3", endpoint_url=f"http://localhost:{server.port}", region_name=REGION,
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
        config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4"))
    resolve = f"{name}.localhost:{server.port}:127.0.0.1"

    get_url = vhost.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "a b/c.txt"})
    assert get_url.startswith(f"http://{name}.localhost:{server.port}/")
    code, body = curl("--resolve", resolve, get_url)
    assert code == 200 and body == b"virtual"

    list_url = vhost.generate_presigned_url("list_objects_v2", Params={"Bucket": name})
    code, body = curl("--resolve", resolve, list_url)
    # botocore asks for encoding-type=url on its own.
    assert code == 200 and b"<Key>a%20b/c.txt</Key>" in body

    put_url = vhost.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "v.txt"})
    code, body = curl("--resolve", resolve, "-X", "PUT", "--data-binary", "via vhost", put_url)
    assert code == 200, body
    assert s3.get_object(Bucket=name, Key="v.txt")["Body"].read() == b"via vhost"
