#!/usr/bin/env python3
"""Real-time inference: an XGBoost model trained by a Nimbus training job, served two ways on
this machine and driven by the same load generator (wrk), one target at a time:

  nimbus        InvokeEndpoint end to end: HTTP server, SigV4 verification, the sagemaker-runtime
                handler, the router and the `serve` worker's built-in XGBoost handler (endpoint
                on one ml.m5.large instance, i.e. 2 model-server threads).
  peer gthread  the architecture of SageMaker's XGBoost container: gunicorn + Flask + Debian's
                xgboost Python package answering /invocations (bench/serving_peer.py), with
                2 gthread workers of 8 threads each, that stack's strongest setting on 2 cores.
  peer sync     the same app with 2 sync workers.
  peer gevent   the same app with 2 gevent workers, the worker class the container's gunicorn
                path passes (sagemaker_containers_patch/server.py); run only when gevent is
                importable (Debian's python3-gevent).
The peers run with OMP_NUM_THREADS=1 (their best setting: xgboost's DMatrix otherwise starts
an OpenMP team per request that spins, ~9 ms of CPU per 1-row request on this machine) and
without an access log; Nimbus runs as shipped (--log-level info: one JSON line per request)
unless --nimbus-log-level says otherwise.

For each payload (1 CSV row, 100 CSV rows) and each number of connections (1, 16, 64) it runs
`wrk -t min(2, c) -c c -d <seconds> --latency --timeout 30s` with bench/serving_wrk.lua, and
prints requests/s, p50 and p99 latency, the responses that were not 2xx/3xx and the socket
errors (both must be 0), and the CPU each side used. Nimbus requests are SigV4-signed once per
run with botocore (SigV4Auth, service "sagemaker", on POST /endpoints/<name>/invocations with
the body); wrk sends the same signed headers on every request and Nimbus verifies the
signature on every one of them. Before any load, each payload sent once to each target
(urllib; signed for Nimbus) must answer 200 with the predictions python-xgboost computes from
the same model file. The load average is printed before and after: on a shared machine, the
figures are only as good as it is quiet.

Repetitions: the whole sequence (nimbus, then each peer) runs --repeat times (default 3),
and every cell reports the run with the median requests/s, the req/s of each run beside
it: this machine's speed drifts by as much as a third over minutes, which a single run per
target cannot tell apart from a difference between the targets.

Equal CPU: the targets run one at a time on the same cores (all of the machine's: nproc; the
Nimbus server stays up, idle, while the peers run, and each peer is stopped before the next
starts), and wrk runs with the same settings against every target. The CPU time of each target's processes (the nimbus server and its workers; the
gunicorn master and its workers) and of wrk is read from /proc and getrusage around every run
and printed per request, so "faster" can be told apart from "used more cores".

Targets (issue 7): nimbus >= 5x the throughput of peer gthread and <= 1/5 of its p99, and the
router's OverheadLatency p50 < 200 us, read back from CloudWatch (GetMetricStatistics,
AWS/SageMaker, ExtendedStatistics p50/p99 over the nimbus runs).

Usage: /usr/bin/python3 bench/serving_bench.py [BINARY] [--quick] [--seconds N] [--repeat N]
           [--connections 1,16,64] [--rows 1,100] [--targets nimbus,gthread,sync,gevent]
           [--nimbus-log-level LEVEL] [--keep] [--json FILE]
"""
import argparse
import io
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (DEFAULT_BINARY, REGION, ROOT_KEY, ROOT_SECRET, client,  # noqa: E402
                      start_server)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
WRK_SCRIPT = os.path.join(BENCH_DIR, "serving_wrk.lua")
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/bench"
INSTANCE_TYPE = "ml.m5.large"
FEATURES = 20
PARAMS = {"objective": "binary:logistic", "num_round": 100, "max_depth": 6, "eta": 0.3,
          "tree_method": "hist"}
PEERS = {
    "gthread": ["-k", "gthread", "--workers", "2", "--threads", "8"],
    "sync": ["-k", "sync", "--workers", "2"],
    "gevent": ["-k", "gevent", "--workers", "2"],
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- data and model

def make_data(rows, seed):
    """A binary task with interactions, so 100 trees of depth 6 are all used."""
    rng = np.random.RandomState(seed)
    X = rng.randn(rows, FEATURES).astype(np.float32)
    logit = np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2] + np.abs(X[:, 3]) - 0.8 + 0.5 * X[:, 4]
    y = (logit + rng.logistic(scale=0.5, size=rows) > 0).astype(np.float32)
    return X, y


def csv_rows(X):
    return "".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in X)


def train_and_deploy(sm, s3, work):
    """Trains with CreateTrainingJob, deploys the artifact; returns (endpoint, model dir)."""
    X, y = make_data(20_000, 21)
    bucket = f"serving-bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    body = "".join(f"{label:g},{row}" for label, row in zip(y, csv_rows(X).splitlines(True)))
    s3.put_object(Bucket=bucket, Key="train/train.csv", Body=body.encode())
    job = f"serving-bench-{uuid.uuid4().hex[:8]}"
    began = time.time()
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE, HyperParameters={k: str(v) for k, v in PARAMS.items()},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": INSTANCE_TYPE, "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 900})
    while True:
        described = sm.describe_training_job(TrainingJobName=job)
        if described["TrainingJobStatus"] not in ("InProgress", "Stopping"):
            break
        if time.time() - began > 900:
            sys.exit(f"training job {job} did not finish")
        time.sleep(0.2)
    if described["TrainingJobStatus"] != "Completed":
        sys.exit(f"training job {job} ended {described['TrainingJobStatus']}: "
                 f"{described.get('FailureReason')}")
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"trained {job}: {len(X)} x {FEATURES}, {PARAMS}, {time.time() - began:.1f} s -> {uri}",
          flush=True)

    # The peer serves the xgboost-model of the very same model.tar.gz.
    b, key = uri[len("s3://"):].split("/", 1)
    archive = s3.get_object(Bucket=b, Key=key)["Body"].read()
    model_dir = os.path.join(work, "peer-model")
    os.makedirs(model_dir)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        with open(os.path.join(model_dir, "xgboost-model"), "wb") as f:
            f.write(tar.extractfile("xgboost-model").read())

    model = f"serving-bench-{uuid.uuid4().hex[:8]}"
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": uri})
    sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": INSTANCE_TYPE, "InitialVariantWeight": 1.0}])
    began = time.time()
    sm.create_endpoint(EndpointName=model, EndpointConfigName=model)
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=model,
                                                  WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except Exception:
        delete_endpoint(sm, model)
        raise
    print(f"endpoint {model} InService after {time.time() - began:.1f} s", flush=True)
    return model, model_dir


def delete_endpoint(sm, endpoint):
    """Model servers outlive a server restart by design: the endpoint must go first."""
    sm.delete_endpoint(EndpointName=endpoint)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint,
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    sm.delete_endpoint_config(EndpointConfigName=endpoint)
    sm.delete_model(ModelName=endpoint)


def reference_predictions(model_dir, X):
    import xgboost as xgb
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster.predict(xgb.DMatrix(X))


def parse_predictions(body):
    return [float(v) for v in body.decode().replace("\n", ",").split(",") if v.strip()]


# ----------------------------------------------------------------------------- requests

def signed_headers(port, endpoint, body):
    """The headers boto3's invoke_endpoint sends, signed once with botocore's SigV4Auth."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    request = AWSRequest(method="POST",
                         url=f"http://127.0.0.1:{port}/endpoints/{endpoint}/invocations",
                         data=body, headers={"Content-Type": "text/csv"})
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "sagemaker", REGION).add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "host"}


class Target:
    """Something wrk can load: its URL, how to make the request headers, its processes: the
    main one, its descendants and, when `marker` is set, every process whose command line
    holds it and their descendants (Nimbus's model servers run under bubblewrap, which
    leaves them children of init, and by design outlive a server restart)."""

    def __init__(self, name, url, pid, headers_for, marker=None):
        self.name, self.url, self.pid, self.headers_for = name, url, pid, headers_for
        self.marker = marker

    def cpu_seconds(self):
        """utime + stime of the main process and of all the others, as a pair."""
        parents = {}
        ticks = {}
        roots = {self.pid}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if self.marker:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        if self.marker.encode() in f.read():
                            roots.add(int(entry))
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
        tree, frontier = set(roots), list(roots)
        while frontier:
            parent = frontier.pop()
            for child, ppid in parents.items():
                if ppid == parent and child not in tree:
                    tree.add(child)
                    frontier.append(child)
        own = ticks.get(self.pid, 0)
        return own / CLK_TCK, (sum(ticks.get(p, 0) for p in tree) - own) / CLK_TCK


def post(url, headers, body):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def check_answers(target, payloads, reference):
    for rows, body in payloads.items():
        status, answer = post(target.url, target.headers_for(body), body)
        if status != 200:
            sys.exit(f"{target.name}: {rows}-row request answered {status}: {answer[:500]!r}")
        got = parse_predictions(answer)
        want = reference[rows]
        if len(got) != len(want) or max(abs(g - w) for g, w in zip(got, want)) > 1e-4:
            sys.exit(f"{target.name}: {rows}-row predictions differ from python-xgboost's:\n"
                     f"  got  {got[:5]}\n  want {list(want[:5])}")


def run_wrk(target, body, connections, seconds, work):
    request_file = os.path.join(work, "request.txt")
    with open(request_file, "wb") as f:
        for name, value in target.headers_for(body).items():
            f.write(f"{name}: {value}\n".encode())
        f.write(b"\n" + body)
    threads = min(2, connections)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
           "--timeout", "30s", "-s", WRK_SCRIPT, target.url]
    env = dict(os.environ, SERVING_BENCH_REQUEST=request_file)
    cpu_before = target.cpu_seconds()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - began
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after = target.cpu_seconds()
    own, children = (a - b for a, b in zip(cpu_after, cpu_before))
    cpu = own + children
    if done.returncode != 0:
        sys.exit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    lines = [l for l in done.stdout.splitlines() if l.startswith("SERVING_BENCH_RESULT ")]
    if not lines:
        sys.exit(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    result = json.loads(lines[-1].split(" ", 1)[1])
    requests = max(1, result["requests"])
    result.update({
        "target": target.name, "rows": None, "connections": connections, "wrk_threads": threads,
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "socket_errors": result["connect_errors"] + result["read_errors"] +
        result["write_errors"] + result["timeouts"],
        "target_cpu_s": cpu, "target_cores": cpu / wall,
        "main_process_cpu_us_per_req": own / requests * 1e6,
        "child_processes_cpu_us_per_req": children / requests * 1e6,
        "target_cpu_us_per_req": cpu / requests * 1e6,
        "wrk_cpu_us_per_req": ((wrk_after.ru_utime - wrk_before.ru_utime) +
                               (wrk_after.ru_stime - wrk_before.ru_stime)) / requests * 1e6,
        "started": began, "ended": began + wall,
    })
    return result


# ----------------------------------------------------------------------------- peers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_peer(kind, model_dir, work):
    port = free_port()
    log = open(os.path.join(work, f"gunicorn-{kind}.log"), "w")
    # One OpenMP thread per worker thread: DMatrix's default team on a worker's main thread
    # (sync and gevent workers run requests there) spins, and cost the peer ~9 ms of CPU
    # per 1-row request here instead of ~0.15 ms. The peer gets its best setting.
    env = dict(os.environ, SM_MODEL_DIR=model_dir, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        ["/usr/bin/gunicorn", *PEERS[kind], "--chdir", BENCH_DIR, "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "serving_peer:app"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 60
    answered = 0
    while answered < 4:  # several answers: each worker has loaded the model
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            sys.exit(f"gunicorn {kind} did not start:\n" +
                     open(os.path.join(work, f"gunicorn-{kind}.log")).read())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                answered += r.status == 200
        except OSError:
            time.sleep(0.1)
    return proc, log, port


def stop(proc, log):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


# ----------------------------------------------------------------------------- CloudWatch

def overhead_from_cloudwatch(port, endpoint, began, ended):
    """OverheadLatency and ModelLatency (microseconds) over the nimbus runs, one datapoint."""
    cw = client("cloudwatch", port)
    start = math.floor(began / 60) * 60
    end = math.ceil((ended + 5) / 60) * 60 + 60
    out = {}
    for metric in ("OverheadLatency", "ModelLatency"):
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": "AllTraffic"}],
            StartTime=start, EndTime=end, Period=end - start,
            Statistics=["SampleCount", "Average", "Minimum", "Maximum"],
            ExtendedStatistics=["p50", "p99"])["Datapoints"]
        out[metric] = points
    return out


# ----------------------------------------------------------------------------- report

def median_run(rs):
    """The run with the median requests/s (the lower middle one of an even count), with the
    spread of all runs."""
    ordered = sorted(rs, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rps_runs"] = [r["rps"] for r in rs]
    return chosen


def print_table(results, rows_list, connections_list, targets):
    head = (f"{'payload':<8} {'conns':>5}  {'target':<13} {'req/s':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'non-2xx':>7} {'sock err':>8} {'cores':>5} {'cpu us/req':>10} "
            f"{'wrk us/req':>10} {'main/children':>13}  req/s of each run")
    print(head)
    print("-" * len(head))
    for rows in rows_list:
        for c in connections_list:
            for t in targets:
                r = results.get((t, rows, c))
                if r is None:
                    continue
                print(f"{rows:>3} row{'s' if rows > 1 else ' '} {c:>5}  {t:<13} {r['rps']:>9.0f} "
                      f"{r['p50_us'] / 1000:>8.3f} {r['p99_us'] / 1000:>8.3f} "
                      f"{r['status_errors']:>7} {r['socket_errors']:>8} {r['target_cores']:>5.2f} "
                      f"{r['target_cpu_us_per_req']:>10.0f} {r['wrk_cpu_us_per_req']:>10.0f} "
                      f"{r['main_process_cpu_us_per_req']:>6.0f}/"
                      f"{r['child_processes_cpu_us_per_req']:<6.0f}  "
                      + " ".join(f"{x:.0f}" for x in r["rps_runs"]))
        print()


def print_ratios(results, rows_list, connections_list, peers):
    print("ratios: throughput = nimbus req/s / peer req/s (target >= 5x vs gthread); "
          "p99 = peer p99 / nimbus p99 (target >= 5x);\n  cpu = peer CPU per request / nimbus CPU per "
          "request, i.e. the throughput ratio at equal CPU")
    head = (f"{'payload':<8} {'conns':>5}  {'vs peer':<13} {'throughput':>10} {'p99':>8} "
            f"{'cpu':>7}  result")
    print(head)
    print("-" * len(head))
    verdicts = []
    for rows in rows_list:
        for c in connections_list:
            n = results.get(("nimbus", rows, c))
            for peer in peers:
                p = results.get((peer, rows, c))
                if n is None or p is None:
                    continue
                tput = n["rps"] / p["rps"]
                p99 = p["p99_us"] / max(1, n["p99_us"])
                cpu = p["target_cpu_us_per_req"] / max(1e-9, n["target_cpu_us_per_req"])
                verdict = ""
                if peer == "peer gthread":
                    missed = [w for w, ok in (("throughput", tput >= 5), ("p99", p99 >= 5))
                              if not ok]
                    verdict = "ok" if not missed else "MISSED (" + ", ".join(missed) + ")"
                    verdicts.append(not missed)
                print(f"{rows:>3} row{'s' if rows > 1 else ' '} {c:>5}  {peer:<13} {tput:>9.2f}x "
                      f"{p99:>7.2f}x {cpu:>6.2f}x  {verdict}")
    return verdicts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", nargs="?", default=DEFAULT_BINARY)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--quick", action="store_true", help="3 s per run, 1 repetition")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of the whole sequence of targets (default 3); each "
                        "cell reports its median run")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--rows", default="1,100")
    parser.add_argument("--targets", default="nimbus,gthread,sync,gevent")
    parser.add_argument("--nimbus-log-level", help="nimbus serve --log-level (default: the "
                        "server's, info, which writes one JSON line per request; the peers "
                        "write no access log)")
    parser.add_argument("--keep", action="store_true", help="keep the data and work dirs")
    parser.add_argument("--json", help="also write every run's numbers here")
    args = parser.parse_args()
    seconds = 3 if args.quick else args.seconds
    if args.quick:
        args.repeat = 1
    seconds = int(seconds) if float(seconds).is_integer() else seconds
    connections_list = [int(c) for c in args.connections.split(",")]
    rows_list = [int(r) for r in args.rows.split(",")]
    wanted = args.targets.split(",")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (scripts/install-deps.sh)")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} not found: build nimbus or pass its path")
    peers = [k for k in ("gthread", "sync", "gevent") if k in wanted]
    if "gevent" in peers:
        try:
            import gevent  # noqa: F401
        except ImportError:
            print("peer gevent skipped: gevent is not installed (Debian python3-gevent)")
            peers.remove("gevent")
    if peers and not os.path.exists("/usr/bin/gunicorn"):
        sys.exit("gunicorn is not installed (scripts/install-deps.sh)")

    import flask
    import gunicorn
    import xgboost
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{(wrk_version.stdout + wrk_version.stderr).splitlines()[0].strip()}; "
          f"gunicorn {gunicorn.__version__}, flask {flask.__version__}, "
          f"xgboost {xgboost.__version__}; {seconds} s per run", flush=True)

    work = tempfile.mkdtemp(prefix="nimbus-serving-bench-")
    data_dir = os.path.join(work, "nimbus-data")
    os.makedirs(data_dir)
    server_args = ["--log-level", args.nimbus_log_level] if args.nimbus_log_level else []
    proc, log, port = start_server(args.binary, data_dir, server_args)
    results = {}
    cloudwatch = None
    endpoint = None
    try:
        sm, s3 = client("sagemaker", port), client("s3", port)
        endpoint, model_dir = train_and_deploy(sm, s3, work)
        Xtest, _ = make_data(100, 22)
        payloads = {rows: csv_rows(Xtest[:rows]).encode() for rows in rows_list}
        reference = {rows: reference_predictions(model_dir, Xtest[:rows]) for rows in rows_list}
        plain = {"Content-Type": "text/csv"}

        targets = []
        if "nimbus" in wanted:
            targets.append(("nimbus", None))
        targets += [(f"peer {k}", k) for k in peers]
        nimbus_window = None
        runs = {}
        for rep in range(1, args.repeat + 1):
            for name, kind in targets:
                peer = None
                if kind is None:
                    url = f"http://127.0.0.1:{port}/endpoints/{endpoint}/invocations"
                    target = Target(name, url, proc.pid,
                                    lambda body: signed_headers(port, endpoint, body),
                                    marker=data_dir)
                else:
                    peer_proc, peer_log, peer_port = start_peer(kind, model_dir, work)
                    peer = (peer_proc, peer_log)
                    target = Target(name, f"http://127.0.0.1:{peer_port}/invocations",
                                    peer_proc.pid, lambda body: plain)
                try:
                    check_answers(target, payloads, reference)
                    run_wrk(target, payloads[rows_list[0]], 16, 1, work)  # warm-up, not counted
                    for rows in rows_list:
                        for c in connections_list:
                            r = run_wrk(target, payloads[rows], c, seconds, work)
                            r["rows"] = rows
                            r["repeat"] = rep
                            runs.setdefault((name, rows, c), []).append(r)
                            print(f"  {rep}/{args.repeat} {name:<13} {rows:>3} rows  c={c:<3} "
                                  f"{r['rps']:>8.0f} req/s  "
                                  f"p50 {r['p50_us'] / 1000:.3f} ms  "
                                  f"p99 {r['p99_us'] / 1000:.3f} ms"
                                  f"  non-2xx {r['status_errors']}  errors {r['socket_errors']}",
                                  flush=True)
                            if kind is None:
                                began = nimbus_window[0] if nimbus_window else r["started"]
                                nimbus_window = (began, r["ended"])
                finally:
                    if peer:
                        stop(*peer)
        results = {key: median_run(rs) for key, rs in runs.items()}
        if nimbus_window:
            time.sleep(2.5)  # the runtime writes its metrics once a second
            cloudwatch = overhead_from_cloudwatch(port, endpoint, *nimbus_window)
    finally:
        if endpoint:
            delete_endpoint(client("sagemaker", port), endpoint)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        if args.keep:
            print("work dir kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    names = [n for n in ["nimbus"] + [f"peer {k}" for k in peers] if n == "nimbus" or n in
             {k[0] for k in results}]
    print()
    print(f"wrk -t min(2,c) -c c -d {seconds}s --latency --timeout 30s, same request every time; "
          "cores = target CPU s / wall s; cpu us/req = target CPU per request; "
          "wrk us/req = load generator CPU per request; main/children = cpu us/req of the "
          "server (nimbus serve, gunicorn master) / of its child processes (serve worker, "
          "gunicorn workers)")
    print_table(results, rows_list, connections_list, names)
    verdicts = print_ratios(results, rows_list, connections_list,
                            [n for n in names if n != "nimbus"])
    if cloudwatch is not None:
        print()
        print("CloudWatch AWS/SageMaker over the nimbus runs (microseconds):")
        for metric, points in cloudwatch.items():
            for p in points:
                ext = p.get("ExtendedStatistics", {})
                p50 = f"{ext['p50']:.0f}" if "p50" in ext else "n/a"
                p99 = f"{ext['p99']:.0f}" if "p99" in ext else "n/a"
                print(f"  {metric:<16} samples {p['SampleCount']:.0f}  p50 {p50}  p99 {p99}  "
                      f"avg {p['Average']:.0f}  min {p['Minimum']:.0f}  max {p['Maximum']:.0f}")
            if not points:
                print(f"  {metric:<16} no datapoints")
        overhead = cloudwatch.get("OverheadLatency") or []
        p50s = [p["ExtendedStatistics"]["p50"] for p in overhead
                if "p50" in p.get("ExtendedStatistics", {})]
        if p50s:
            verdict = "ok" if max(p50s) < 200 else "MISSED"
            print(f"  OverheadLatency p50 {max(p50s):.0f} us, target < 200 us: {verdict}")
        else:
            print("  OverheadLatency p50: not reported by CloudWatch (no percentiles for the "
                  "published data), target < 200 us: UNCHECKED")
    if verdicts:
        print(f"\nthroughput/p99 targets met in {sum(verdicts)} of {len(verdicts)} "
              "payload x connections cells")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": [dict(v) for v in results.values()],
                       "runs": [dict(r) for rs in runs.values() for r in rs],
                       "cloudwatch": cloudwatch}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
