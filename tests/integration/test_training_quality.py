"""Model quality of the built-in training algorithms, measured against the reference
implementations a data scientist would reach for: every algorithm is trained through
CreateTrainingJob behind its real image URI, and the quality it reaches (read from
FinalMetricDataList, or computed from the model artifact where SageMaker reports no metric)
must be at least that of scikit-learn (and python-xgboost, and the fastText command-line tool)
fitted with matching settings on the same split, less a stated tolerance.

Data: datasets bundled with Debian's python3-sklearn (no download) or generated with fixed
seeds. Every job of the module is submitted up front (module fixture) so that they train while
the references are fitted; each test then waits for its own job."""
import io
import json
import random
import shutil
import subprocess
import tarfile
import time
import uuid

import numpy as np
import pytest
from sklearn import datasets
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import ACCOUNT

REGISTRY = "382416733822.dkr.ecr.us-east-1.amazonaws.com"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LINEAR = f"{REGISTRY}/linear-learner:1"
KMEANS_IMAGE = f"{REGISTRY}/kmeans:1"
PCA_IMAGE = f"{REGISTRY}/pca:1"
KNN_IMAGE = f"{REGISTRY}/knn:1"
BLAZINGTEXT = "811284229777.dkr.ecr.us-east-1.amazonaws.com/blazingtext:1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
SEED = 0

# Tolerances: how far below the reference Nimbus may land before the test fails.
AUC_TOL = 0.02       # absolute, ROC AUC
ACC_TOL = 0.02       # absolute, accuracy
FASTTEXT_TOL = 0.03  # absolute, accuracy (fastText's SGD differs run to run)
RMSE_TOL = 0.05      # relative, RMSE may be at most 5% higher
INERTIA_TOL = 0.05   # relative, k-means mean squared distance may be at most 5% higher
PCA_TOL = 0.05       # relative, PCA reconstruction error may be at most 5% higher


def report(name, **numbers):
    # Printed so that `pytest -s` shows the comparison table the issue asks for.
    print(f"\nQUALITY {name}: " + ", ".join(f"{k}={v:.4f}" for k, v in numbers.items()))


def csv_bytes(X, y=None):
    """CSV as SageMaker's algorithms read it: label first (when there is one), no header."""
    rows = X if y is None else np.column_stack([y, X])
    out = io.StringIO()
    np.savetxt(out, rows, delimiter=",", fmt="%.7g")
    return out.getvalue().encode()


def split(X, y, stratify=True, test_size=0.3):
    return train_test_split(X, y, test_size=test_size, random_state=SEED,
                            stratify=y if stratify else None)


# --------------------------------------------------------------------------------------------
# Data sets and the jobs trained on them (all submitted before the first test runs).

def breast_cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return split(X, y)


def diabetes():
    X, y = datasets.load_diabetes(return_X_y=True)
    return split(X, y, stratify=False)


def digits():
    X, y = datasets.load_digits(return_X_y=True)
    return split(X, y)


def text_corpus(rows, seed):
    """Sentences of a 4-topic generated language: each word is a topic word with probability
    0.2, otherwise one of 300 shared words, so short sentences are often ambiguous and the
    attainable accuracy is well below 1 (a meaningful comparison, not a saturated one)."""
    rng = random.Random(seed)
    shared = [f"w{i}" for i in range(300)]
    topics = {t: [f"{t}{i}" for i in range(12)] for t in ("sport", "food", "tech", "music")}
    lines = []
    for _ in range(rows):
        label = rng.choice(sorted(topics))
        words = [rng.choice(topics[label]) if rng.random() < 0.2 else rng.choice(shared)
                 for _ in range(rng.randint(5, 10))]
        lines.append(f"__label__{label} " + " ".join(words))
    return ("\n".join(lines) + "\n").encode()


def channel(name, uri, content_type):
    return {"ChannelName": name, "ContentType": content_type,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}


class Jobs:
    """Uploads each data set once and submits its training job; wait(key) returns the
    finished job's description."""

    def __init__(self, sm, s3):
        self.sm, self.s3 = sm, s3
        self.bucket = f"quality-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=self.bucket)
        self.names = {}

    def upload(self, key, body):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return f"s3://{self.bucket}/{key.rsplit('/', 1)[0]}/"

    def submit(self, key, image, hyperparameters, channels):
        name = f"q-{key}-{uuid.uuid4().hex[:8]}"
        self.sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            HyperParameters={k: str(v) for k, v in hyperparameters.items()},
            InputDataConfig=channels,
            OutputDataConfig={"S3OutputPath": f"s3://{self.bucket}/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1,
                            "VolumeSizeInGB": 5},
            StoppingCondition={"MaxRuntimeInSeconds": 600})
        self.names[key] = name

    def wait(self, key, timeout=240):
        name = self.names[key]
        deadline = time.time() + timeout
        while True:
            job = self.sm.describe_training_job(TrainingJobName=name)
            if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                assert job["TrainingJobStatus"] == "Completed", (key, job.get("FailureReason"))
                return job
            assert time.time() < deadline, f"{name} still {job['TrainingJobStatus']}"
            time.sleep(0.25)

    def metrics(self, key):
        job = self.wait(key)
        return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}

    def model_files(self, key):
        uri = self.wait(key)["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, obj = uri[len("s3://"):].split("/", 1)
        body = self.s3.get_object(Bucket=bucket, Key=obj)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


XGB_PARAMS = {"max_depth": 3, "eta": 0.1, "num_round": 60, "min_child_weight": 1,
              "subsample": 1, "lambda": 1, "seed": SEED}
LINEAR_PARAMS = {"epochs": 15, "mini_batch_size": 32}
KMEANS_K = 10
PCA_COMPONENTS = 8
KNN_K = 5
BT_PARAMS = {"epochs": 10, "learning_rate": 0.1, "word_ngrams": 2, "vector_dim": 20,
             "min_count": 1, "buckets": 200000}


@pytest.fixture(scope="module")
def jobs(make_client):
    j = Jobs(make_client("sagemaker"), make_client("s3"))
    csv = "text/csv"

    Xtr, Xva, ytr, yva = breast_cancer()
    train = j.upload("bc/train/data.csv", csv_bytes(Xtr, ytr))
    valid = j.upload("bc/validation/data.csv", csv_bytes(Xva, yva))
    bc_channels = [channel("train", train, csv), channel("validation", valid, csv)]
    j.submit("xgb-auc", XGBOOST, dict(XGB_PARAMS, objective="binary:logistic",
                                      eval_metric="auc"), bc_channels)
    j.submit("ll-binary", LINEAR, dict(LINEAR_PARAMS, predictor_type="binary_classifier",
                                       feature_dim=Xtr.shape[1]), bc_channels)

    Xtr, Xva, ytr, yva = diabetes()
    train = j.upload("db/train/data.csv", csv_bytes(Xtr, ytr))
    valid = j.upload("db/validation/data.csv", csv_bytes(Xva, yva))
    db_channels = [channel("train", train, csv), channel("validation", valid, csv)]
    j.submit("xgb-rmse", XGBOOST, dict(XGB_PARAMS, objective="reg:squarederror",
                                       eval_metric="rmse"), db_channels)
    j.submit("ll-regressor", LINEAR, dict(LINEAR_PARAMS, predictor_type="regressor",
                                          feature_dim=Xtr.shape[1]), db_channels)

    Xtr, Xte, ytr, yte = digits()
    labelled_train = j.upload("dg/train/data.csv", csv_bytes(Xtr, ytr))
    labelled_test = j.upload("dg/test/data.csv", csv_bytes(Xte, yte))
    bare_train = j.upload("dg/bare-train/data.csv", csv_bytes(Xtr))
    bare_test = j.upload("dg/bare-test/data.csv", csv_bytes(Xte))
    j.submit("knn", KNN_IMAGE,
             {"k": KNN_K, "feature_dim": Xtr.shape[1], "predictor_type": "classifier",
              "sample_size": len(Xtr), "index_type": "faiss.Flat"},
             [channel("train", labelled_train, csv), channel("test", labelled_test, csv)])
    j.submit("kmeans", KMEANS_IMAGE,
             {"k": KMEANS_K, "feature_dim": Xtr.shape[1], "mini_batch_size": 200,
              "epochs": 10, "init_method": "kmeans++", "eval_metrics": '["msd"]'},
             [channel("train", bare_train, "text/csv;label_size=0"),
              channel("test", bare_test, "text/csv;label_size=0")])
    j.submit("pca", PCA_IMAGE,
             {"num_components": PCA_COMPONENTS, "feature_dim": Xtr.shape[1],
              "mini_batch_size": 200, "algorithm_mode": "regular", "subtract_mean": "true"},
             [channel("train", bare_train, "text/csv;label_size=0")])

    train = j.upload("bt/train/corpus.txt", text_corpus(2000, 1))
    valid = j.upload("bt/validation/corpus.txt", text_corpus(600, 2))
    j.submit("blazingtext", BLAZINGTEXT, dict(BT_PARAMS, mode="supervised"),
             [channel("train", train, "text/plain"),
              channel("validation", valid, "text/plain")])
    return j


# --------------------------------------------------------------------------------------------

def test_xgboost_auc_matches_xgboost_and_sklearn(jobs):
    import xgboost
    Xtr, Xva, ytr, yva = breast_cancer()
    params = {"max_depth": 3, "eta": 0.1, "min_child_weight": 1, "subsample": 1, "lambda": 1,
              "seed": SEED, "objective": "binary:logistic", "tree_method": "exact",
              "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(Xtr, label=ytr),
                            num_boost_round=XGB_PARAMS["num_round"])
    ref_xgb = roc_auc_score(yva, booster.predict(xgboost.DMatrix(Xva)))
    gbm = GradientBoostingClassifier(n_estimators=XGB_PARAMS["num_round"], max_depth=3,
                                     learning_rate=0.1, random_state=SEED).fit(Xtr, ytr)
    ref_sk = roc_auc_score(yva, gbm.predict_proba(Xva)[:, 1])
    nimbus = jobs.metrics("xgb-auc")["validation:auc"]
    report("xgboost binary AUC", nimbus=nimbus, python_xgboost=ref_xgb, sklearn_gbm=ref_sk)
    assert nimbus >= ref_xgb - AUC_TOL
    assert nimbus >= ref_sk - AUC_TOL


def test_xgboost_rmse_matches_xgboost_and_sklearn(jobs):
    import xgboost
    Xtr, Xva, ytr, yva = diabetes()
    params = {"max_depth": 3, "eta": 0.1, "min_child_weight": 1, "subsample": 1, "lambda": 1,
              "seed": SEED, "objective": "reg:squarederror", "tree_method": "exact",
              "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(Xtr, label=ytr),
                            num_boost_round=XGB_PARAMS["num_round"])
    ref_xgb = mean_squared_error(yva, booster.predict(xgboost.DMatrix(Xva))) ** 0.5
    gbm = GradientBoostingRegressor(n_estimators=XGB_PARAMS["num_round"], max_depth=3,
                                    learning_rate=0.1, random_state=SEED).fit(Xtr, ytr)
    ref_sk = mean_squared_error(yva, gbm.predict(Xva)) ** 0.5
    nimbus = jobs.metrics("xgb-rmse")["validation:rmse"]
    report("xgboost regression RMSE", nimbus=nimbus, python_xgboost=ref_xgb, sklearn_gbm=ref_sk)
    assert nimbus <= ref_xgb * (1 + RMSE_TOL)
    assert nimbus <= ref_sk * (1 + RMSE_TOL)


def test_linear_learner_classifier_matches_logistic_regression(jobs):
    Xtr, Xva, ytr, yva = breast_cancer()
    # Linear Learner standardizes features by default (normalize_data=auto): so does the
    # reference; its L2 penalty is sklearn's default C=1.
    ref = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xtr, ytr)
    ref_acc = accuracy_score(yva, ref.predict(Xva))
    ref_auc = roc_auc_score(yva, ref.predict_proba(Xva)[:, 1])
    m = jobs.metrics("ll-binary")
    nimbus_acc = m["validation:binary_classification_accuracy"]
    nimbus_auc = m["validation:roc_auc_score"]
    report("linear-learner binary", nimbus_accuracy=nimbus_acc, sklearn_accuracy=ref_acc,
           nimbus_auc=nimbus_auc, sklearn_auc=ref_auc)
    assert nimbus_acc >= ref_acc - ACC_TOL
    assert nimbus_auc >= ref_auc - AUC_TOL


def test_linear_learner_regressor_matches_least_squares(jobs):
    Xtr, Xva, ytr, yva = diabetes()
    ref = LinearRegression().fit(Xtr, ytr)
    ref_rmse = mean_squared_error(yva, ref.predict(Xva)) ** 0.5
    m = jobs.metrics("ll-regressor")
    nimbus = m["validation:rmse"]
    # The reported rmse and mse must describe the same predictions.
    assert m["validation:mse"] == pytest.approx(nimbus ** 2, rel=1e-3)
    report("linear-learner regressor RMSE", nimbus=nimbus, sklearn_ols=ref_rmse)
    assert nimbus <= ref_rmse * (1 + RMSE_TOL)


def test_knn_accuracy_matches_kneighbors_classifier(jobs):
    Xtr, Xte, ytr, yte = digits()
    ref = accuracy_score(yte, KNeighborsClassifier(n_neighbors=KNN_K).fit(Xtr, ytr).predict(Xte))
    nimbus = jobs.metrics("knn")["test:accuracy"]
    report("knn accuracy", nimbus=nimbus, sklearn=ref)
    assert nimbus >= ref - ACC_TOL


def test_kmeans_msd_matches_sklearn_inertia(jobs):
    Xtr, Xte, _, _ = digits()
    ref_model = KMeans(n_clusters=KMEANS_K, init="k-means++", n_init=10,
                       random_state=SEED).fit(Xtr)
    ref = float(np.mean(np.min(ref_model.transform(Xte), axis=1) ** 2))
    nimbus = jobs.metrics("kmeans")["test:msd"]
    # Recompute the metric from the artifact: it must agree with what the job reported.
    model = json.loads(jobs.model_files("kmeans")["kmeans-model.json"])
    centers = np.array(model["centers"])
    assert centers.shape == (KMEANS_K, Xtr.shape[1])
    d2 = ((Xte[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    assert float(d2.mean()) == pytest.approx(nimbus, rel=1e-3)
    report("kmeans test msd (lower is better)", nimbus=nimbus, sklearn=ref)
    assert nimbus <= ref * (1 + INERTIA_TOL)


def test_pca_reconstruction_matches_sklearn(jobs):
    Xtr, Xte, _, _ = digits()
    model = json.loads(jobs.model_files("pca")["pca-model.json"])
    mean = np.array(model["mean"])
    V = np.array(model["v"])  # feature_dim x num_components
    assert V.shape == (Xtr.shape[1], PCA_COMPONENTS)
    # The components must be orthonormal for the projection to mean anything.
    np.testing.assert_allclose(V.T @ V, np.eye(PCA_COMPONENTS), atol=1e-4)

    def reconstruction_error(center, components):
        centered = Xte - center
        residual = centered - centered @ components @ components.T
        return float((residual ** 2).sum(axis=1).mean())

    ref = PCA(n_components=PCA_COMPONENTS, svd_solver="full").fit(Xtr)
    nimbus_err = reconstruction_error(mean, V)
    ref_err = reconstruction_error(ref.mean_, ref.components_.T)
    total = float(((Xte - Xte.mean(axis=0)) ** 2).sum(axis=1).mean())
    report("pca test explained variance", nimbus=1 - nimbus_err / total,
           sklearn=1 - ref_err / total)
    assert nimbus_err <= ref_err * (1 + PCA_TOL)
    # The singular values are those of the centered training matrix, ascending.
    s = np.array(model["s"])
    np.testing.assert_allclose(s, np.sort(ref.singular_values_), rtol=1e-3)


@pytest.mark.skipif(shutil.which("fasttext") is None, reason="the fasttext CLI is not installed")
def test_blazingtext_matches_the_fasttext_cli(jobs, tmp_path):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_bytes(text_corpus(2000, 1))
    valid.write_bytes(text_corpus(600, 2))
    subprocess.run(
        ["fasttext", "supervised", "-input", str(train), "-output", str(tmp_path / "model"),
         "-epoch", str(BT_PARAMS["epochs"]), "-lr", str(BT_PARAMS["learning_rate"]),
         "-wordNgrams", str(BT_PARAMS["word_ngrams"]), "-dim", str(BT_PARAMS["vector_dim"]),
         "-minCount", str(BT_PARAMS["min_count"]), "-bucket", str(BT_PARAMS["buckets"]),
         "-thread", "1", "-verbose", "0"],
        check=True, capture_output=True, timeout=120)
    out = subprocess.run(["fasttext", "test", str(tmp_path / "model.bin"), str(valid)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    ref = float(next(line.split()[1] for line in out.splitlines() if line.startswith("P@1")))
    nimbus = jobs.metrics("blazingtext")["validation:accuracy"]
    report("blazingtext supervised accuracy", nimbus=nimbus, fasttext_cli=ref)
    assert 0.4 < ref < 0.99, "the generated corpus should be neither trivial nor hopeless"
    assert nimbus >= ref - FASTTEXT_TOL
    assert "model.bin" in jobs.model_files("blazingtext")
