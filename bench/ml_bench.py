#!/usr/bin/env python3
"""Training time of the built-in algorithms against scikit-learn and xgboost, same data, same
machine, same run (issue: ">= 2x faster at equal quality"; XGBoost job overhead < 1 s).

For each algorithm the data is generated with fixed seeds and written as CSV; bench/ml_train
times the algorithm's Train in-process (reading the CSV included; it also times one read of
the train channel alone, so the fitting share is known), and the scikit-learn estimator with
matching settings is timed on the same data already in memory. Quality is computed here, by
the same numpy code for both models, on a held-out set:
  linear-learner  vs SGDClassifier(log_loss) and LogisticRegression   test accuracy
  kmeans          vs KMeans(k-means++, n_init=1)                       test mean sq. distance
  pca             vs PCA(svd_solver='randomized', iterated_power=2)    test explained variance
  knn (queries/s) vs KNeighborsClassifier(algorithm='brute')           test accuracy
The speed ratio is reference fit seconds / Nimbus fit seconds (Train from the moment its CSV
is read, as ml_train measures it);
"e2e" also charges both sides their CSV read (ml_train's reader vs pandas.read_csv). A row is
ok when the ratio is >= 2 and the quality is within tolerance of the reference's. Both sides run
with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (the script re-executes itself with it), the malloc
setting Nimbus's executor gives every worker.

XGBoost: starts `nimbus serve` (benchlib.start_server), uploads the data to S3 and runs a
training job end to end with boto3 (CreateTrainingJob -> model.tar.gz present in S3, polled
every 20 ms), and trains the python xgboost package with the same parameters on the same data
(DMatrix from numpy + xgb.train, train error evaluated each round as the
container does). overhead = job seconds - xgboost seconds (target < 1 s); it
also prints the job minus ml_train's in-process xgboost time (the job machinery alone) and the
test accuracy of the job's own model.tar.gz next to the python model's.

Usage: bench/ml_bench.py [BUILD_DIR] [--nimbus BINARY] [--threads N] [--only NAME,...]
                         [--repeat N] [--jobs N] [--keep] [--json FILE]
  BUILD_DIR (default build/) holds bench/ml_train and nimbus; --nimbus overrides the latter.
"""
import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import client, start_server  # noqa: E402

XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/bench"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


# ----------------------------------------------------------------------------- data

def write_csv(path, X, y=None):
    """CSV as SageMaker's algorithms read it: the label (if any) first, no header."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frame = pd.DataFrame(X)
    if y is not None:
        frame.insert(0, "label", y)
    frame.to_csv(path, header=False, index=False, float_format="%.6g")


def linear_data():
    rng = np.random.RandomState(11)
    n, d = 250_000, 50
    X = rng.randn(n, d).astype(np.float32)
    w = rng.randn(d)
    margin = X @ w / np.sqrt(d) + 0.3
    y = (margin + rng.logistic(scale=0.3, size=n) > 0).astype(np.float32)
    return X[:200_000], y[:200_000], X[200_000:], y[200_000:]


def kmeans_data():
    rng = np.random.RandomState(12)
    n, d, k = 220_000, 50, 10
    centers = rng.randn(k, d) * 2.0
    labels = rng.randint(k, size=n)
    X = (centers[labels] + rng.randn(n, d) * rng.uniform(0.8, 1.6, size=k)[labels, None])
    X = X.astype(np.float32)
    return X[:200_000], X[200_000:]


def pca_data():
    rng = np.random.RandomState(13)
    n, d, rank = 220_000, 50, 10
    latent = rng.randn(n, rank) * np.linspace(6, 1.5, rank)
    mixing = np.linalg.qr(rng.randn(d, rank))[0].T
    X = (latent @ mixing + rng.randn(n, d) * 0.7 + rng.randn(d) * 3).astype(np.float32)
    return X[:200_000], X[200_000:]


def knn_data():
    rng = np.random.RandomState(14)
    n, q, d, classes = 50_000, 5_000, 32, 10
    centers = rng.randn(classes, d) * 0.4  # overlapping classes: accuracy about 0.7
    labels = rng.randint(classes, size=n + q)
    X = (centers[labels] + rng.randn(n + q, d)).astype(np.float32)
    y = labels.astype(np.float32)
    return X[:n], y[:n], X[n:], y[n:]


def xgboost_data():
    rng = np.random.RandomState(15)
    n, d = 120_000, 20
    X = rng.randn(n, d).astype(np.float32)
    logit = np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2] + np.abs(X[:, 3]) - 0.8 + 0.5 * X[:, 4]
    y = (logit + rng.logistic(scale=0.5, size=n) > 0).astype(np.float32)
    return X[:100_000], y[:100_000], X[100_000:], y[100_000:]


# ----------------------------------------------------------------------------- running

class Runner:
    def __init__(self, ml_train, threads, work, repeat):
        self.ml_train, self.threads, self.work, self.repeat = ml_train, threads, work, repeat
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                        OPENBLAS_NUM_THREADS=str(threads))

    def train(self, algorithm, train_dir, hyperparameters, **channels):
        model_dir = tempfile.mkdtemp(prefix=f"{algorithm}-model-", dir=self.work)
        cmd = [self.ml_train, algorithm, train_dir, "--threads", str(self.threads),
               "--repeat", str(self.repeat),
               "--content-type", "text/csv", "--model-dir", model_dir]
        for name, path in channels.items():
            cmd += [f"--{name}", path]
        for name, value in hyperparameters.items():
            cmd += ["--hp", f"{name}={value}"]
        return self._run(cmd), model_dir

    def query(self, algorithm, model_dir, queries_csv):
        return self._run([self.ml_train, algorithm, "--query", queries_csv,
                          "--model-dir", model_dir, "--content-type", "text/csv",
                          "--repeat", str(self.repeat)])

    def _run(self, cmd):
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def timed(fn, repeat=1):
    """fn's last result and its fastest run of `repeat` (as ml_train --repeat reports)."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    return out, best


def fit_seconds(out):
    """Train's time once the train channel is read: measured by ml_train from the algorithm's
    "Read N records from the train channel" log line, else Train minus a separate read."""
    return out.get("fit_seconds", out["seconds"] - out["read_seconds"])


def pandas_read_seconds(path, repeat):
    _, seconds = timed(lambda: pd.read_csv(path, header=None, dtype=np.float32).to_numpy(),
                       repeat)
    return seconds


class Table:
    def __init__(self):
        self.rows = []

    def add(self, name, metric, nimbus_s, nimbus_fit_s, ref_s, ref_read_s, q_nimbus, q_ref,
            quality_ok, higher_is_better_time=False):
        if higher_is_better_time:  # throughput rows: the numbers are per second
            ratio = nimbus_fit_s / ref_s
            e2e = ratio
        else:
            ratio = ref_s / nimbus_fit_s
            e2e = (ref_s + ref_read_s) / nimbus_s
        verdict = "ok" if ratio >= 2 and quality_ok else \
            "MISSED" + (" (speed)" if ratio < 2 else "") + ("" if quality_ok else " (quality)")
        self.rows.append((name, metric, nimbus_s, nimbus_fit_s, ref_s, ratio, e2e, q_nimbus,
                          q_ref, verdict))

    def print(self):
        head = (f"{'benchmark':<36} {'quality metric':<20} {'nimbus s':>9} {'fit s':>8} "
                f"{'ref s':>8} {'ratio':>7} {'e2e':>6} {'q nimbus':>9} {'q ref':>9} "
                f"{'target':>7}  result")
        print(head)
        print("-" * len(head))
        for name, metric, ns, nf, rs, ratio, e2e, qn, qr, verdict in self.rows:
            print(f"{name:<36} {metric:<20} {ns:>9.3f} {nf:>8.3f} {rs:>8.3f} {ratio:>6.2f}x "
                  f"{e2e:>5.2f}x {qn:>9.4f} {qr:>9.4f} {'>= 2x':>7}  {verdict}")


# ----------------------------------------------------------------------------- benchmarks

def bench_linear(runner, table, work):
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    Xtr, ytr, Xte, yte = linear_data()
    train_csv = os.path.join(work, "linear", "train", "train.csv")
    write_csv(train_csv, Xtr, ytr)
    epochs = 5
    out, model_dir = runner.train("linear-learner", os.path.dirname(train_csv), {
        "predictor_type": "binary_classifier", "feature_dim": Xtr.shape[1], "epochs": epochs,
        "num_models": 1, "mini_batch_size": 1000})
    model = json.load(open(os.path.join(model_dir, "linear-learner-model.json")))
    w, b = np.asarray(model["weights"], dtype=np.float64), model["bias"][0]
    score = 1 / (1 + np.exp(-(Xte.astype(np.float64) @ w + b)))
    acc_nimbus = float(np.mean((score > model["threshold"]) == (yte > 0.5)))
    fit = fit_seconds(out)
    read = pandas_read_seconds(train_csv, runner.repeat)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd, sgd_s = timed(lambda: SGDClassifier(
            loss="log_loss", max_iter=epochs, tol=None, random_state=0,
            n_jobs=runner.threads).fit(Xtr, ytr), runner.repeat)
    acc_sgd = sgd.score(Xte, yte)
    table.add("linear-learner vs SGDClassifier", "test accuracy", out["seconds"], fit,
              sgd_s, read, acc_nimbus, acc_sgd, acc_nimbus >= acc_sgd - 0.01)
    lr, lr_s = timed(lambda: LogisticRegression(max_iter=100, n_jobs=runner.threads)
                     .fit(Xtr, ytr), runner.repeat)
    acc_lr = lr.score(Xte, yte)
    table.add("linear-learner vs LogisticRegression", "test accuracy", out["seconds"], fit,
              lr_s, read, acc_nimbus, acc_lr, acc_nimbus >= acc_lr - 0.01)
    return {"linear-learner": out}


def msd(X, centers):
    X = X.astype(np.float64)
    c = np.asarray(centers, dtype=np.float64)
    d = (X * X).sum(1)[:, None] - 2 * X @ c.T + (c * c).sum(1)[None, :]
    return float(np.maximum(d.min(1), 0).mean())


def bench_kmeans(runner, table, work):
    from sklearn.cluster import KMeans
    Xtr, Xte = kmeans_data()
    train_csv = os.path.join(work, "kmeans", "train", "train.csv")
    write_csv(train_csv, Xtr)
    k = 10
    out, model_dir = runner.train("kmeans", os.path.dirname(train_csv), {
        "k": k, "feature_dim": Xtr.shape[1], "mini_batch_size": 5000, "epochs": 1,
        "init_method": "kmeans++"})
    centers = json.load(open(os.path.join(model_dir, "kmeans-model.json")))["centers"]
    msd_nimbus = msd(Xte, centers)
    read = pandas_read_seconds(train_csv, runner.repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km, km_s = timed(lambda: KMeans(n_clusters=k, init="k-means++", n_init=1,
                                        algorithm="lloyd", random_state=0).fit(Xtr),
                          runner.repeat)
    msd_ref = msd(Xte, km.cluster_centers_)
    table.add("kmeans vs KMeans", "test msd (lower)", out["seconds"],
              fit_seconds(out), km_s, read, msd_nimbus, msd_ref,
              msd_nimbus <= msd_ref * 1.02)
    return {"kmeans": out}


def explained_variance(X, mean, components):
    """Share of X's variance (around its own mean) that the projection on components keeps."""
    X = X.astype(np.float64)
    centered = X - np.asarray(mean, dtype=np.float64)
    V = np.linalg.qr(np.asarray(components, dtype=np.float64))[0]  # d x c, orthonormalized
    residual = centered - (centered @ V) @ V.T
    total = ((X - X.mean(0)) ** 2).sum()
    return float(1 - (residual ** 2).sum() / total)


def bench_pca(runner, table, work):
    from sklearn.decomposition import PCA
    Xtr, Xte = pca_data()
    train_csv = os.path.join(work, "pca", "train", "train.csv")
    write_csv(train_csv, Xtr)
    c = 10
    out, model_dir = runner.train("pca", os.path.dirname(train_csv), {
        "feature_dim": Xtr.shape[1], "num_components": c, "mini_batch_size": 1000,
        "algorithm_mode": "randomized", "subtract_mean": "true"})
    model = json.load(open(os.path.join(model_dir, "pca-model.json")))
    ev_nimbus = explained_variance(Xte, model["mean"], model["v"])
    read = pandas_read_seconds(train_csv, runner.repeat)
    pca, pca_s = timed(lambda: PCA(n_components=c, svd_solver="randomized", iterated_power=2,
                                   n_oversamples=10, random_state=0).fit(Xtr),
                       runner.repeat)
    ev_ref = explained_variance(Xte, pca.mean_, pca.components_.T)
    table.add("pca (randomized) vs PCA(randomized)", "test expl. variance", out["seconds"],
              fit_seconds(out), pca_s, read, ev_nimbus, ev_ref,
              ev_nimbus >= ev_ref - 0.005)
    return {"pca": out}


def bench_knn(runner, table, work):
    from sklearn.neighbors import KNeighborsClassifier
    Xtr, ytr, Xq, yq = knn_data()
    train_csv = os.path.join(work, "knn", "train", "train.csv")
    query_csv = os.path.join(work, "knn", "queries.csv")
    write_csv(train_csv, Xtr, ytr)
    write_csv(query_csv, Xq, yq)
    k = 10
    out, model_dir = runner.train("knn", os.path.dirname(train_csv), {
        "k": k, "feature_dim": Xtr.shape[1], "predictor_type": "classifier",
        "sample_size": len(Xtr), "index_type": "faiss.Flat"})
    q = runner.query("knn", model_dir, query_csv)
    knn = KNeighborsClassifier(n_neighbors=k, algorithm="brute", n_jobs=runner.threads)
    knn.fit(Xtr, ytr)
    predicted, seconds = timed(lambda: knn.predict(Xq), runner.repeat)
    ref_qps = len(Xq) / seconds
    acc_ref = float(np.mean(predicted == yq))
    acc_nimbus = q["metrics"]["accuracy"]
    table.add("knn queries/s vs KNeighbors(brute)", "query accuracy", q["queries_per_second"],
              q["queries_per_second"], ref_qps, 0, acc_nimbus, acc_ref,
              acc_nimbus >= acc_ref - 0.005, higher_is_better_time=True)
    return {"knn": out, "knn-query": q}


def wait_for_key(s3, bucket, key, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return time.time()
        except s3.exceptions.ClientError:
            time.sleep(0.02)
    raise SystemExit(f"s3://{bucket}/{key} never appeared")


def bench_xgboost(runner, work, binary, jobs, keep):
    import xgboost as xgb
    Xtr, ytr, Xte, yte = xgboost_data()
    train_csv = os.path.join(work, "xgboost", "train", "train.csv")
    write_csv(train_csv, Xtr, ytr)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.3,
              "tree_method": "hist", "eval_metric": "error"}
    num_round = 100

    in_process, _ = runner.train("xgboost", os.path.dirname(train_csv),
                                 dict(params, num_round=num_round))

    def python_train():
        dtrain = xgb.DMatrix(Xtr, label=ytr, nthread=runner.threads)
        # evals: the container (and ml_train) evaluates eval_metric on train every round.
        return xgb.train(dict(params, nthread=runner.threads), dtrain, num_boost_round=num_round,
                         evals=[(dtrain, "train")], verbose_eval=False)
    python_train()  # warm-up: the first call pays for loading and thread-pool start-up
    python_times = []
    for _ in range(jobs):
        booster, seconds = timed(python_train)
        python_times.append(seconds)
    python_s = statistics.median(python_times)
    acc_python = float(np.mean((booster.predict(xgb.DMatrix(Xte)) > 0.5) == (yte > 0.5)))

    data_dir = tempfile.mkdtemp(prefix="nimbus-ml-bench-")
    proc, log, port = start_server(binary, data_dir)
    try:
        sm, s3 = client("sagemaker", port), client("s3", port)
        bucket = f"ml-bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.upload_file(train_csv, bucket, "xgboost/train/train.csv")
        job_times, job_models = [], []
        for i in range(jobs):
            name = f"xgb-bench-{i}-{uuid.uuid4().hex[:6]}"
            request = {
                "TrainingJobName": name,
                "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE,
                                           "TrainingInputMode": "File"},
                "RoleArn": ROLE,
                "HyperParameters": {k: str(v) for k, v in
                                    dict(params, num_round=num_round).items()},
                "InputDataConfig": [{
                    "ChannelName": "train", "ContentType": "text/csv",
                    "DataSource": {"S3DataSource": {
                        "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/xgboost/train/",
                        "S3DataDistributionType": "FullyReplicated"}}}],
                "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                   "VolumeSizeInGB": 5},
                "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            }
            key = f"output/{name}/output/model.tar.gz"
            sent = time.time()
            sm.create_training_job(**request)
            done = wait_for_key(s3, bucket, key)
            job_times.append(done - sent)
            job = sm.describe_training_job(TrainingJobName=name)
            if job["TrainingJobStatus"] == "Failed":
                raise SystemExit(f"{name} failed: {job.get('FailureReason')}")
            job_models.append(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
        if keep:
            print("server data dir kept:", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    with tarfile.open(fileobj=io.BytesIO(job_models[-1])) as tar:
        raw = tar.extractfile("xgboost-model").read()
    job_booster = xgb.Booster()
    job_booster.load_model(bytearray(raw))
    acc_job = float(np.mean((job_booster.predict(xgb.DMatrix(Xte)) > 0.5) == (yte > 0.5)))

    job_s = statistics.median(job_times)
    overhead = job_s - python_s
    print()
    print(f"XGBoost training job end to end ({len(Xtr)} x {Xtr.shape[1]}, {num_round} rounds, "
          f"hist, depth 6, {jobs} jobs, ml.m5.large = 2 threads)")
    print(f"  job: CreateTrainingJob -> model.tar.gz in S3   median {job_s:7.3f} s   "
          f"(each: {', '.join(f'{t:.3f}' for t in job_times)})")
    print(f"  python xgboost {xgb.__version__} (DMatrix + train)   median {python_s:7.3f} s   "
          f"(each: {', '.join(f'{t:.3f}' for t in python_times)})")
    print(f"  ml_train xgboost in-process (CSV read + train)   {in_process['seconds']:7.3f} s   "
          f"(CSV read alone {in_process['read_seconds']:.3f} s)")
    verdict = "ok" if overhead < 1 else f"MISSED by {overhead - 1:.3f} s"
    print(f"  overhead = job - python xgboost               {overhead:7.3f} s   target < 1 s: "
          f"{verdict}")
    print(f"  job machinery alone = job - ml_train in-process {job_s - in_process['seconds']:7.3f}"
          f" s")
    print(f"  test accuracy: job's model {acc_job:.4f}   python xgboost {acc_python:.4f}")
    return {"xgboost-in-process": in_process, "xgboost-job-seconds": job_times,
            "xgboost-python-seconds": python_times}


# The malloc settings Nimbus's executor gives every worker (src/control/local_executor.cc):
# large blocks on transparent huge pages. The benchmark runs under them, so ml_train measures
# the allocator a training job has, and the Python peers get the same one.
GLIBC_TUNABLES = "glibc.malloc.hugetlb=1"


def main():
    if os.environ.get("GLIBC_TUNABLES") != GLIBC_TUNABLES:
        os.execve(sys.executable, [sys.executable] + sys.argv,
                  dict(os.environ, GLIBC_TUNABLES=GLIBC_TUNABLES))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", nargs="?", default=os.path.join(ROOT, "build"))
    parser.add_argument("--nimbus", help="the nimbus binary (default BUILD_DIR/nimbus)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", default="linear,kmeans,pca,knn,xgboost")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each timing; the fastest counts (the machine is shared)")
    parser.add_argument("--jobs", type=int, default=3, help="XGBoost training jobs to run")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", help="also write the raw ml_train outputs here")
    args = parser.parse_args()

    ml_train = os.path.join(args.build_dir, "bench", "ml_train")
    binary = args.nimbus or os.path.join(args.build_dir, "nimbus")
    only = set(args.only.split(","))
    if not os.access(ml_train, os.X_OK):
        sys.exit(f"{ml_train} not found: ninja -C {args.build_dir} ml_train")
    if "xgboost" in only and not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: build nimbus or pass --nimbus")

    work = tempfile.mkdtemp(prefix="nimbus-ml-bench-data-")
    runner = Runner(ml_train, args.threads, work, args.repeat)
    table = Table()
    raw = {}
    began = time.time()
    try:
        # scikit-learn's BLAS and OpenMP pools get the threads Nimbus gets.
        with threadpool_limits(limits=args.threads):
            print(f"threads: {args.threads} (Nimbus --threads / OMP_NUM_THREADS; scikit-learn "
                  f"n_jobs and BLAS/OpenMP pools); data dir {work}; both sides run with "
                  f"GLIBC_TUNABLES={GLIBC_TUNABLES}, as Nimbus's workers do", flush=True)
            for name, fn in (("linear", bench_linear), ("kmeans", bench_kmeans),
                             ("pca", bench_pca), ("knn", bench_knn)):
                if name in only:
                    raw.update(fn(runner, table, work))
            if table.rows:
                print()
                print(f"fastest of {args.repeat} runs each. nimbus s = Train wall-clock incl. its "
                      "CSV read; fit s = from the read's end; ratio = ref s / fit s;")
                print("e2e = (ref s + pandas.read_csv) / nimbus s; knn row: queries/s, "
                      "ratio = nimbus / ref.")
                table.print()
            if "xgboost" in only:
                raw.update(bench_xgboost(runner, work, binary, args.jobs, args.keep))
    finally:
        if args.keep:
            print("data dir kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    print(f"\ntotal {time.time() - began:.1f} s")


if __name__ == "__main__":
    main()
