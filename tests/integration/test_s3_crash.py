"""Crash safety of S3 writes: `kill -9` of the server in the middle of a stream of PUTs,
DELETEs and multipart uploads from several clients, then a restart on the same data dir.

Every write the server acknowledged must be intact, nothing may be torn, listings show
no partial object, and multipart uploads are either listed with their acknowledged parts or
gone cleanly. Each client thread owns its keys, so the writes to one key are totally ordered
and the state each key may be in after the crash is known exactly:

  - its last acknowledged write, or
  - a write attempted after it that was in flight when the server died (never acknowledged).

The oracle (Oracle / check_objects / check_uploads) is plain Python, exercised on made-up
crash outcomes by the test_oracle_* tests, so it is known to catch a lost write, a torn
body, a resurrected delete and a partial object without breaking the product to see it.

Set NIMBUS_CRASH_SEED to replay a run; the seed is in every failure message.
"""
import hashlib
import os
import random
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, ROOT_KEY, ROOT_SECRET, Server

BUCKET = "crash-test"
THREADS = 4
KEYS_PER_THREAD = 5
CYCLES = 3
MIN_PART = 5 * 1024 * 1024
SIZES = [0, 1, 1000, 4096, 65536, 300_000, 1_500_000]
ABSENT = None  # the "value" of a deleted or never-written key


def md5(data):
    return hashlib.md5(data).hexdigest()


class Attempt:
    """One write to a key: md5 of the body sent (ABSENT for a delete), and whether the
    server acknowledged it. multipart: the body was assembled by CompleteMultipartUpload."""

    def __init__(self, value, size, multipart=False):
        self.value = value
        self.size = size
        self.multipart = multipart
        self.acked = False


class Upload:
    """A multipart upload the client created (the server acknowledged the create)."""

    def __init__(self, key, upload_id):
        self.key = key
        self.upload_id = upload_id
        self.parts = {}  # part number -> (etag without quotes, acked)
        self.complete_sent = False
        self.complete_acked = False
        self.aborted = False


class Oracle:
    """What the clients did, and so what the server may show after a crash."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = {}  # key -> [Attempt], in order; settled to one entry after a check
        self.ever_sent = {}  # key -> every value ever attempted (a torn body matches none)
        self.uploads = {}  # upload id -> Upload
        self.creating = set()  # keys with a CreateMultipartUpload in flight

    def attempt(self, key, value, size, multipart=False):
        a = Attempt(value, size, multipart)
        with self.lock:
            self.attempts.setdefault(key, []).append(a)
            self.ever_sent.setdefault(key, {ABSENT}).add(value)
        return a

    def allowed(self, key):
        """The values key may hold now: the last acknowledged one and every later attempt.
        With no acknowledged write at all, the key may also be absent."""
        history = self.attempts.get(key, [])
        acked = [i for i, a in enumerate(history) if a.acked]
        start = acked[-1] if acked else 0
        values = {a.value for a in history[start:]}
        if not acked:
            values.add(ABSENT)
        return values

    def attempt_for(self, key, value):
        """The latest attempt on key that sent value (None if none did)."""
        for a in reversed(self.attempts.get(key, [])):
            if a.value == value:
                return a
        return None

    def settle(self, observed):
        """After a successful check, what the server shows becomes the acknowledged state:
        a later crash must not bring back a write that did not survive this one."""
        for key, value in observed.items():
            prior = self.attempt_for(key, value) if value is not ABSENT else None
            settled = Attempt(value, prior.size if prior else 0,
                              prior.multipart if prior else False)
            settled.acked = True
            self.attempts[key] = [settled]


def check_objects(oracle, observed, listed, etags):
    """observed: key -> md5 of the body GET returned (ABSENT on NoSuchKey), for every key the
    clients ever wrote; listed: key -> size as ListObjectsV2 shows it; etags: key -> ETag
    that GET returned. Returns the list of problems found."""
    problems = []
    for key, value in observed.items():
        if value not in oracle.ever_sent.get(key, {ABSENT}):
            problems.append(f"{key}: torn body (md5 {value} was never sent)")
        elif value not in oracle.allowed(key):
            history = ", ".join(f"{a.value}{'' if a.acked else ' (in flight)'}"
                                for a in oracle.attempts.get(key, []))
            problems.append(f"{key}: holds {value}, but after the last acknowledged write only "
                            f"{sorted(map(str, oracle.allowed(key)))} are possible; "
                            f"writes, oldest first: {history}")
        if value is ABSENT and key in listed:
            problems.append(f"{key}: listed but GET says NoSuchKey")
        if value is not ABSENT:
            attempt = oracle.attempt_for(key, value)
            if key not in listed:
                problems.append(f"{key}: readable but not listed")
            elif attempt is not None and listed[key] != attempt.size:
                problems.append(f"{key}: listed with size {listed[key]}, body has {attempt.size}")
            etag = etags.get(key, "").strip('"')
            if attempt is not None and not attempt.multipart and etag != value:
                problems.append(f"{key}: ETag {etag} does not match the body's md5 {value}")
    for key in listed:
        if key not in observed:
            problems.append(f"{key}: listed but never written by any client")
    return problems


def check_uploads(oracle, listed_uploads, parts_of):
    """listed_uploads: {upload id: key} from ListMultipartUploads; parts_of(upload id) ->
    {part number: etag} from ListParts, or None when the upload is NoSuchUpload. Returns
    the problems found."""
    problems = []
    for upload_id, key in listed_uploads.items():
        upload = oracle.uploads.get(upload_id)
        if upload is None:
            if key not in oracle.creating:
                problems.append(f"{upload_id} ({key}): listed but never created by a client")
            continue
        if upload.complete_acked:
            problems.append(f"{upload_id} ({key}): completion was acknowledged, still listed")
            continue
        if upload.aborted:
            problems.append(f"{upload_id} ({key}): abort was acknowledged, still listed")
            continue
        parts = parts_of(upload_id)
        if parts is None:
            problems.append(f"{upload_id} ({key}): listed, but ListParts says NoSuchUpload")
            continue
        for number, (etag, acked) in upload.parts.items():
            if acked and parts.get(number) != etag:
                problems.append(f"{upload_id} part {number}: acknowledged with ETag {etag}, "
                                f"listed as {parts.get(number)}")
        for number, etag in parts.items():
            sent = upload.parts.get(number)
            if sent is None or sent[0] != etag:
                problems.append(f"{upload_id} part {number}: ETag {etag} was never uploaded")
    for upload_id, upload in oracle.uploads.items():
        if upload_id in listed_uploads or upload.complete_acked or upload.aborted:
            continue
        if not upload.complete_sent:
            problems.append(f"{upload_id} ({upload.key}): created and acknowledged, but gone")
        elif parts_of(upload_id) is not None:
            problems.append(f"{upload_id} ({upload.key}): not listed, but ListParts finds it")
    return problems


# ---------------------------------------------------------------------------------------
# The oracle on made-up outcomes: each kind of damage must be reported.


def _oracle_with_history():
    oracle = Oracle()
    oracle.attempt("a", md5(b"a1"), 2).acked = True
    oracle.attempt("a", md5(b"a2"), 2)  # in flight at the crash
    oracle.attempt("b", md5(b"b1"), 2).acked = True
    oracle.attempt("b", ABSENT, 0).acked = True  # deleted
    oracle.attempt("c", md5(b"c1"), 2)  # never acknowledged
    return oracle


def test_oracle_accepts_every_outcome_a_crash_allows():
    oracle = _oracle_with_history()
    for a_value in (md5(b"a1"), md5(b"a2")):
        for c_value in (ABSENT, md5(b"c1")):
            observed = {"a": a_value, "b": ABSENT, "c": c_value}
            listed = {k: 2 for k, v in observed.items() if v is not ABSENT}
            etags = {k: f'"{v}"' for k, v in observed.items() if v is not ABSENT}
            assert check_objects(oracle, observed, listed, etags) == []


def test_oracle_reports_lost_torn_resurrected_and_partial_objects():
    oracle = _oracle_with_history()
    torn = md5(b"a1"[:1] + b"a2"[1:] + b"x")
    cases = {
        "lost": ({"a": ABSENT, "b": ABSENT, "c": ABSENT}, {}, {}),
        "torn": ({"a": torn, "b": ABSENT, "c": ABSENT}, {"a": 2}, {"a": f'"{torn}"'}),
        "resurrected": ({"a": md5(b"a1"), "b": md5(b"b1"), "c": ABSENT},
                        {"a": 2, "b": 2}, {"a": f'"{md5(b"a1")}"', "b": f'"{md5(b"b1")}"'}),
        "partial listed": ({"a": md5(b"a1"), "b": ABSENT, "c": ABSENT},
                           {"a": 2, "c": 1}, {"a": f'"{md5(b"a1")}"'}),
        "short listing": ({"a": md5(b"a1"), "b": ABSENT, "c": ABSENT},
                          {"a": 1}, {"a": f'"{md5(b"a1")}"'}),
        "stale etag": ({"a": md5(b"a2"), "b": ABSENT, "c": ABSENT},
                       {"a": 2}, {"a": f'"{md5(b"a1")}"'}),
    }
    for name, (observed, listed, etags) in cases.items():
        assert check_objects(oracle, observed, listed, etags), name


def test_oracle_settles_so_a_later_crash_cannot_bring_back_an_old_write():
    oracle = _oracle_with_history()
    oracle.settle({"a": md5(b"a1"), "b": ABSENT, "c": ABSENT})
    oracle.attempt("a", md5(b"a3"), 2)  # in flight at the next crash
    assert oracle.allowed("a") == {md5(b"a1"), md5(b"a3")}
    observed = {"a": md5(b"a2"), "b": ABSENT, "c": ABSENT}
    assert check_objects(oracle, observed, {"a": 2}, {"a": f'"{md5(b"a2")}"'})


def test_oracle_reports_lost_uploads_and_parts():
    oracle = Oracle()
    open_upload = Upload("k", "u1")
    open_upload.parts = {1: ("e1", True), 2: ("e2", False)}
    completed = Upload("k", "u2")
    completed.complete_sent = completed.complete_acked = True
    completing = Upload("k", "u3")
    completing.complete_sent = True
    oracle.uploads = {"u1": open_upload, "u2": completed, "u3": completing}

    def parts(listing):
        return lambda upload_id: listing.get(upload_id)

    fine = check_uploads(oracle, {"u1": "k"}, parts({"u1": {1: "e1"}}))
    assert fine == []
    assert check_uploads(oracle, {"u1": "k", "u3": "k"}, parts({"u1": {1: "e1", 2: "e2"},
                                                                  "u3": {}})) == []
    assert check_uploads(oracle, {}, parts({}))  # an acknowledged upload vanished
    assert check_uploads(oracle, {"u1": "k"}, parts({"u1": {}}))  # acknowledged part lost
    assert check_uploads(oracle, {"u1": "k"}, parts({"u1": {1: "zz"}}))  # torn part
    assert check_uploads(oracle, {"u1": "k", "u2": "k"}, parts({"u1": {1: "e1"}, "u2": {}}))
    assert check_uploads(oracle, {"u1": "k", "u9": "k"}, parts({"u1": {1: "e1"}}))


# ---------------------------------------------------------------------------------------
# The real thing.


def _client(endpoint):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ROOT_KEY,
        aws_secret_access_key=ROOT_SECRET,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=20,
                      s3={"addressing_style": "path"}))


class Writer(threading.Thread):
    """One client: PUTs, overwrites, DELETEs and multipart uploads on the keys it owns,
    until the first error (the server is gone). Errors before the kill are recorded."""

    def __init__(self, index, endpoint, oracle, seed, killed):
        super().__init__(daemon=True)
        self.keys = [f"t{index}/key-{k}" for k in range(KEYS_PER_THREAD)]
        self.client = _client(endpoint)
        self.oracle = oracle
        self.rng = random.Random(seed)
        self.killed = killed
        self.acked = 0
        self.unexpected = None

    def run(self):
        try:
            while True:
                self.step()
                self.acked += 1
        except Exception as e:  # noqa: BLE001 - any failure ends the stream
            if not self.killed.is_set():
                self.unexpected = repr(e)

    def step(self):
        key = self.rng.choice(self.keys)
        roll = self.rng.random()
        if roll < 0.1:
            self.multipart(key)
        elif roll < 0.2:
            attempt = self.oracle.attempt(key, ABSENT, 0)
            self.client.delete_object(Bucket=BUCKET, Key=key)
            attempt.acked = True
        else:
            body = self.rng.randbytes(self.rng.choice(SIZES))
            attempt = self.oracle.attempt(key, md5(body), len(body))
            etag = self.client.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
            assert etag == md5(body), f"PutObject of {len(body)} bytes answered ETag {etag}"
            attempt.acked = True

    def multipart(self, key):
        with self.oracle.lock:
            self.oracle.creating.add(key)
        upload_id = self.client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        upload = Upload(key, upload_id)
        with self.oracle.lock:
            self.oracle.uploads[upload_id] = upload
            self.oracle.creating.discard(key)
        bodies = [self.rng.randbytes(MIN_PART), self.rng.randbytes(self.rng.randint(1, 200_000))]
        for number, body in enumerate(bodies, start=1):
            upload.parts[number] = (md5(body), False)
            etag = self.client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                           PartNumber=number, Body=body)["ETag"].strip('"')
            assert etag == md5(body), f"UploadPart ETag {etag} is not the part's md5"
            upload.parts[number] = (etag, True)
        if self.rng.random() < 0.25:
            return  # left open: it must survive the crash
        whole = b"".join(bodies)
        attempt = self.oracle.attempt(key, md5(whole), len(whole), multipart=True)
        upload.complete_sent = True
        self.client.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{e}"'}
                                       for n, (e, _) in sorted(upload.parts.items())]})
        upload.complete_acked = True
        attempt.acked = True


def _observe(client, oracle):
    """GET every key any client wrote, list the bucket, and return (observed, listed, etags)."""
    listed = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            listed[item["Key"]] = item["Size"]
    observed, etags = {}, {}
    for key in oracle.attempts:
        try:
            response = client.get_object(Bucket=BUCKET, Key=key)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NoSuchKey", f"{key}: {e}"
            observed[key] = ABSENT
            continue
        observed[key] = md5(response["Body"].read())
        etags[key] = response["ETag"]
    return observed, listed, etags


def _observe_uploads(client):
    listed = {}
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
        for item in page.get("Uploads", []):
            listed[item["UploadId"]] = item["Key"]
    return listed


def _parts_reader(client, listed_uploads, oracle):
    def parts_of(upload_id):
        key = listed_uploads.get(upload_id) or oracle.uploads[upload_id].key
        try:
            response = client.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NoSuchUpload", f"{upload_id}: {e}"
            return None
        return {p["PartNumber"]: p["ETag"].strip('"') for p in response.get("Parts", [])}

    return parts_of


def _kill(server):
    server.proc.kill()  # SIGKILL: no chance to flush or finish anything
    server.proc.wait()
    server.log.close()


def test_kill_9_mid_stream_loses_no_acknowledged_write_and_tears_nothing(tmp_path):
    seed = int(os.environ.get("NIMBUS_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    env = {"NIMBUS_ROOT_ACCESS_KEY_ID": ROOT_KEY, "NIMBUS_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET}
    data_dir = tmp_path / "data"
    oracle = Oracle()
    server = Server(data_dir, env)
    try:
        _client(server.endpoint).create_bucket(Bucket=BUCKET)
        for cycle in range(CYCLES):
            where = f"(seed {seed}, cycle {cycle})"
            killed = threading.Event()
            writers = [Writer(t, server.endpoint, oracle, rng.randrange(1 << 30), killed)
                       for t in range(THREADS)]
            for w in writers:
                w.start()
            # Let every client get a few writes acknowledged, then kill at a random moment.
            deadline = time.time() + 10
            while time.time() < deadline and any(w.acked < 3 and w.is_alive() for w in writers):
                time.sleep(0.01)
            stalled = [i for i, w in enumerate(writers) if w.is_alive() and w.acked < 3]
            if stalled:
                killed.set()
                _kill(server)
                pytest.fail(f"the server stopped answering: clients {stalled} got fewer than "
                            f"3 writes acknowledged in 10 s {where}")
            time.sleep(rng.uniform(0, 0.6))
            killed.set()
            _kill(server)
            for w in writers:
                w.join(30)
            unexpected = [w.unexpected for w in writers if w.unexpected]
            assert not unexpected, f"requests failed before the kill {where}: {unexpected}"
            assert all(not w.is_alive() for w in writers), f"a client hung {where}"

            server = Server(data_dir, env)
            client = _client(server.endpoint)
            observed, listed, etags = _observe(client, oracle)
            problems = check_objects(oracle, observed, listed, etags)
            listed_uploads = _observe_uploads(client)
            parts_of = _parts_reader(client, listed_uploads, oracle)
            problems += check_uploads(oracle, listed_uploads, parts_of)
            assert not problems, f"after kill -9 {where}:\n" + "\n".join(problems)

            # Settle: uploads that survived are aborted (and must then be gone), objects'
            # current state becomes the acknowledged baseline of the next cycle.
            for upload_id, key in listed_uploads.items():
                client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
            assert _observe_uploads(client) == {}, f"aborted uploads still listed {where}"
            oracle.uploads.clear()
            oracle.creating.clear()
            oracle.settle(observed)
    finally:
        server.stop()
