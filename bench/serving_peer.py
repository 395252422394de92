"""The peer of bench/serving_bench.py: an XGBoost model server built the way SageMaker's own
XGBoost container builds one (aws/sagemaker-xgboost-container, algorithm_mode/serve.py and
encoder.csv_to_dmatrix): a Flask app answering GET /ping and POST /invocations, run under
gunicorn, each worker process loading its own Booster (as the container's post_worker_init
does) with nthread=1; the threads of a gthread worker share it (tree boosters predict
thread-safely in xgboost 1.7).

/invocations takes text/csv (no label column, one record per line): the delimiter is sniffed
from the first line as the container does, the rows become a float numpy array, then a
DMatrix, then booster.predict; the answer is the predictions joined by "," as text/csv (the
container's single-request format). An empty body is 204; a body that does not parse is 415
and a prediction that fails is 400, with the error as the body, as in the container.
Logging per request is left out (the container logs the sniffed delimiter on every request):
that only makes the peer faster.

The model is the `xgboost-model` file of the same model.tar.gz that Nimbus serves, unpacked
into the folder named by SM_MODEL_DIR (the container's variable).

Run: SM_MODEL_DIR=<dir> gunicorn -k gthread --workers 2 --threads 8 \
         --chdir bench -b 127.0.0.1:<port> serving_peer:app
"""
import csv
import http.client
import os

import flask
import numpy as np
import xgboost as xgb

MAX_CONTENT_LENGTH = 6 * 1024 * 1024

app = flask.Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH


def load_booster(model_dir):
    """serve_utils.get_loaded_booster for the xgb format: the model file in model_dir."""
    names = sorted(n for n in os.listdir(model_dir) if not n.startswith("."))
    if not names:
        raise RuntimeError(f"no model file in {model_dir}")
    path = os.path.join(model_dir, "xgboost-model" if "xgboost-model" in names else names[0])
    booster = xgb.Booster()
    booster.load_model(path)
    booster.set_param("nthread", 1)
    return booster


# gunicorn imports this module in each worker (no --preload), so each worker loads its own.
BOOSTER = load_booster(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))


def csv_to_dmatrix(text):
    """encoder.csv_to_dmatrix: sniff the delimiter of the first line, split, numpy, DMatrix."""
    first = text.split("\n", 1)[0][:512]
    sniffed = csv.Sniffer().sniff(first).delimiter
    delimiter = "," if sniffed.isalnum() else sniffed
    rows = [line.strip().split(delimiter) for line in text.split("\n") if line.strip()]
    return xgb.DMatrix(np.array(rows).astype(np.float64))


@app.route("/ping", methods=["GET"])
def ping():
    return flask.Response(status=http.client.OK)


@app.route("/invocations", methods=["POST"])
def invocations():
    payload = flask.request.get_data()
    if not payload:
        return flask.Response(response="", status=http.client.NO_CONTENT)
    content_type = (flask.request.content_type or "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        return flask.Response(response=f"Content type {content_type} is not supported",
                              status=http.client.UNSUPPORTED_MEDIA_TYPE)
    try:
        dtest = csv_to_dmatrix(payload.strip().decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - the container answers every parse error with 415
        return flask.Response(response=f"Loading csv data failed with Exception, please ensure "
                                       f"data is in csv format:\n {type(e)}\n {e}",
                              status=http.client.UNSUPPORTED_MEDIA_TYPE)
    try:
        preds = BOOSTER.predict(dtest, validate_features=False)
    except Exception as e:  # noqa: BLE001 - as the container: any failure is the caller's 400
        return flask.Response(response=f"Unable to evaluate payload provided: {e}",
                              status=http.client.BAD_REQUEST)
    return flask.Response(response=",".join(map(str, preds.tolist())), status=http.client.OK,
                          mimetype="text/csv")
