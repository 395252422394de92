# script_server.py: the model server of script-mode models, as SageMaker's framework
# containers (sagemaker-inference-toolkit, sagemaker-scikit-learn-container,
# sagemaker-pytorch-inference) serve them, in one file for Debian's python3.
#
# Embedded into the nimbus binary (serving/script_handler.cc) and run as
#     /usr/bin/python3 -c <this source> <socket path> <spec JSON>
# where spec is {"model_dir", "code_dir", "program", "threads"}; the container's
# Environment and SM_MODEL_DIR arrive in the process environment.
#
# It imports the user's module (program, default inference.py) from code_dir and
# <model_dir>/code, calls model_fn(model_dir) once, and only then listens: HTTP/1.1 with
# keep-alive on a Unix socket, GET /ping and POST /invocations. Each request runs
# input_fn -> predict_fn -> output_fn (or the user's transform_fn); missing functions get
# the containers' defaults. A function that takes one more argument than the contract
# gets an MMS-style context (request headers, response headers and status), as the
# inference toolkit passes it; that is how X-Amzn-SageMaker-Custom-Attributes reaches the
# model and comes back.
#
# Failures: a model that cannot be loaded prints its traceback to stderr and exits 1 (the
# parent reports the last lines). A request whose user code raises is a 500 whose body is
# the traceback's last line; the full traceback goes to stderr, the job's log.
#
# Concurrency: one thread per connection (the parent pools keep-alive connections); at
# most spec["threads"] requests run the user's code at once.

import http.server
import importlib
import inspect
import io
import json
import os
import socketserver
import sys
import textwrap
import threading
import time
import traceback

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
UTF8_TYPES = (JSON, CSV)
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


class UnsupportedFormatError(Exception):
    """A content type or accept the default functions cannot handle (the toolkit's)."""

    def __init__(self, content_type):
        self.message = (
            "Content type %s is not supported by this framework.\n\n"
            "Please implement input_fn to to deserialize the request data or an output_fn to "
            "serialize the response. For more information, see the SageMaker Python SDK README."
            % content_type
        )
        super().__init__(self.message)


class ClientError(Exception):
    """A request body the default decoders cannot read: answered with 400."""


def media_type(value):
    """'text/csv; charset=utf-8' -> 'text/csv'."""
    return value.split(";", 1)[0].strip().lower()


# --- Default decoders and encoders (sagemaker_containers._encoders, toolkit decoder.py) ---


def _json_to_numpy(text):
    import numpy as np

    return np.array(json.loads(text))


def _csv_to_numpy(text):
    import numpy as np

    return np.genfromtxt(io.StringIO(text), delimiter=",")


def _npy_to_numpy(data):
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def _array_to_json(array_like):
    def default(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        return json.JSONEncoder().default(value)

    return json.dumps(array_like, default=default)


def _array_to_csv(array_like):
    import csv

    import numpy as np

    array = np.array(array_like)
    if len(array.shape) == 0:
        array = np.reshape(array, (1, 1))
    elif len(array.shape) == 1:
        array = np.reshape(array, (array.shape[0], 1))
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True)
    writer.writerows(array)
    return stream.getvalue()


def _array_to_npy(array_like):
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array_like)
    return buffer.getvalue()


_DECODERS = {JSON: _json_to_numpy, CSV: _csv_to_numpy, NPY: _npy_to_numpy}
_ENCODERS = {JSON: _array_to_json, CSV: _array_to_csv, NPY: _array_to_npy}


def decode(data, content_type):
    decoder = _DECODERS.get(media_type(content_type))
    if decoder is None:
        raise UnsupportedFormatError(content_type)
    if isinstance(data, (bytes, bytearray)) and decoder is not _npy_to_numpy:
        data = data.decode("utf-8")
    try:
        return decoder(data)
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise ClientError("Cannot decode the request as %s: %s" % (content_type, e)) from e


def encode(prediction, accept):
    # Accept may list several types; the first one the defaults can produce wins.
    for candidate in accept.split(","):
        encoder = _ENCODERS.get(media_type(candidate))
        if encoder is not None:
            return encoder(prediction), media_type(candidate)
    raise UnsupportedFormatError(accept)


# --- Default handler functions (the scikit-learn / XGBoost containers' ones) ---


def default_model_fn(model_dir):
    raise NotImplementedError(
        textwrap.dedent(
            """
            Please provide a model_fn implementation.
            See documentation for model_fn at https://sagemaker.readthedocs.io/en/stable/
            """
        )
    )


def default_input_fn(input_data, content_type):
    array = decode(input_data, content_type)
    if media_type(content_type) in UTF8_TYPES:
        try:
            return array.astype("float32")
        except (ValueError, TypeError) as e:
            raise ClientError("Cannot read the request as numbers: %s" % e) from e
    return array


def default_predict_fn(data, model):
    cls = type(model)
    if cls.__name__ == "Booster" and cls.__module__.startswith("xgboost"):
        import xgboost

        if not isinstance(data, xgboost.DMatrix):
            data = xgboost.DMatrix(data)
        return model.predict(data)
    if not hasattr(model, "predict"):
        raise NotImplementedError(
            textwrap.dedent(
                """
                Please provide a predict_fn implementation: the model (%s) has no predict().
                See documentation for predict_fn at https://sagemaker.readthedocs.io/en/stable/
                """
                % cls.__name__
            )
        )
    return model.predict(data)


def default_output_fn(prediction, accept):
    return encode(prediction, accept)


# --- The context that context-aware functions receive (MMS's Context, the parts used) ---


class Headers(dict):
    """Request headers as sent, looked up without regard to case."""

    def get(self, key, default=None):
        if key in self:
            return self[key]
        lowered = key.lower()
        for name, value in self.items():
            if name.lower() == lowered:
                return value
        return default


class RequestProcessor:
    def __init__(self, request_headers):
        self._request_headers = request_headers
        self._response_headers = {}
        self._status_code = 200
        self._reason_phrase = None

    def get_request_property(self, key):
        return self._request_headers.get(key)

    def get_request_properties(self):
        return self._request_headers

    def report_status(self, code, reason_phrase=None):
        self._status_code = code
        self._reason_phrase = reason_phrase

    def get_response_status_code(self):
        return self._status_code

    def get_response_status_phrase(self):
        return self._reason_phrase

    def add_response_property(self, key, value):
        self._response_headers[key] = value

    def get_response_headers(self):
        return self._response_headers

    def get_response_header(self, key):
        return self._response_headers.get(key)


class Context:
    def __init__(self, model_dir, request_headers=None):
        self.model_name = "model"
        self.manifest = {}
        self._system_properties = {
            "model_dir": model_dir,
            "gpu_id": None,
            "batch_size": 1,
            "server_name": "nimbus",
            "server_version": "1",
        }
        self.request_ids = {0: None}
        self.request_processor = [RequestProcessor(Headers(request_headers or {}))]
        self.metrics = None

    @property
    def system_properties(self):
        return self._system_properties

    @property
    def custom_attributes(self):
        return self.get_request_header(0, CUSTOM_ATTRIBUTES)

    def get_request_id(self, idx=0):
        return self.request_ids.get(idx)

    def get_request_header(self, idx, key):
        return self.request_processor[idx].get_request_property(key)

    def get_all_request_header(self, idx):
        return self.request_processor[idx].get_request_properties()

    def set_response_content_type(self, idx, value):
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx):
        return self.get_response_headers(idx).get("content-type")

    def get_response_status(self, idx):
        processor = self.request_processor[idx]
        return processor.get_response_status_code(), processor.get_response_status_phrase()

    def set_response_status(self, code=200, phrase="", idx=0):
        self.request_processor[idx].report_status(code, reason_phrase=phrase)

    def set_all_response_status(self, code=200, phrase=""):
        for processor in self.request_processor:
            processor.report_status(code, reason_phrase=phrase)

    def get_response_headers(self, idx):
        return self.request_processor[idx].get_response_headers()

    def set_response_header(self, idx, key, value):
        self.request_processor[idx].add_response_property(key, value)


def call_handler(func, args, context):
    """Calls func with args, plus the context when it takes one more (the toolkit's rule)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return func(*args)
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return func(*args)
    count = sum(1 for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if count == len(args) + 1:
        return func(*args, context)
    if count != len(args):
        raise TypeError(
            "%s takes %d arguments but %d were given." % (func.__name__, count, len(args))
        )
    return func(*args)


# --- Loading the user's module and model ---


def import_user_module(code_dirs, program):
    """Imports program (a file name or module name) with code_dirs first on sys.path."""
    subdir, name = os.path.split(program)
    if name.endswith(".py"):
        name = name[:-3]
    search = [os.path.join(d, subdir) if subdir else d for d in code_dirs]
    relative = name.replace(".", os.sep)
    found = any(
        os.path.isfile(os.path.join(d, relative + ".py"))
        or os.path.isfile(os.path.join(d, relative, "__init__.py"))
        for d in search
    )
    if not found:
        where = " or ".join(search) if search else "the model (no code directory, no <model_dir>/code)"
        raise ModuleNotFoundError(
            "No module named '%s': %s is not in %s" % (name, program, where), name=name
        )
    for d in reversed(search):
        if d not in sys.path:
            sys.path.insert(0, d)
    return importlib.import_module(name)


class Transformer:
    """The request pipeline over the user's functions (sagemaker_inference.Transformer)."""

    def __init__(self, module, model_dir):
        self.model_dir = model_dir
        self.model = None
        transform_fn = getattr(module, "transform_fn", None)
        input_fn = getattr(module, "input_fn", None)
        predict_fn = getattr(module, "predict_fn", None)
        output_fn = getattr(module, "output_fn", None)
        if transform_fn and (input_fn or predict_fn or output_fn):
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with "
                "input_fn, predict_fn, and/or output_fn implementation"
            )
        self.model_fn = getattr(module, "model_fn", None) or default_model_fn
        self.transform_fn = transform_fn
        self.input_fn = input_fn or default_input_fn
        self.predict_fn = predict_fn or default_predict_fn
        self.output_fn = output_fn or default_output_fn

    def load(self):
        self.model = call_handler(self.model_fn, (self.model_dir,), Context(self.model_dir))

    def transform(self, data, content_type, accept, context):
        """Returns (body, content_type) or raises; UnsupportedFormatError carries 415/406."""
        if self.transform_fn is not None:
            result = call_handler(
                self.transform_fn, (self.model, data, content_type, accept), context
            )
        else:
            try:
                decoded = call_handler(self.input_fn, (data, content_type), context)
            except UnsupportedFormatError as e:
                e.status = 415
                raise
            prediction = call_handler(self.predict_fn, (decoded, self.model), context)
            try:
                result = call_handler(self.output_fn, (prediction, accept), context)
            except UnsupportedFormatError as e:
                e.status = 406
                raise
        if isinstance(result, tuple):
            return result[0], result[1]
        return result, context.get_response_content_type(0) or accept


def to_bytes(body):
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    # A prediction returned unserialized (a list, a dict, an array): JSON is what every
    # caller of these containers can read.
    return _array_to_json(body).encode("utf-8")


def user_traceback(exc):
    """The traceback from the first frame outside this server and importlib: the frames
    a user can act on (ours have no source to show, running from -c)."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename != "<string>" and "importlib" not in filename:
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def error_line(exc):
    """The traceback's last line: 'ValueError: message'."""
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def clean_header(value):
    return str(value).replace("\r", " ").replace("\n", " ")


# --- HTTP on a Unix socket ---


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, socket_path, transformer, threads, default_accept):
        self.socket_path = socket_path
        self.transformer = transformer
        self.slots = threading.BoundedSemaphore(max(1, threads))
        self.default_accept = default_accept
        super().__init__(socket_path, Handler, bind_and_activate=False)

    def server_bind(self):
        path = self.socket_path
        if os.path.lexists(path):
            os.unlink(path)
        # sun_path holds 107 bytes; a longer path is reached through a descriptor of its
        # directory, as unix_http.cc does on the other side.
        if len(os.fsencode(path)) > 100:
            directory, name = os.path.split(path)
            fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
            try:
                self.socket.bind("/proc/self/fd/%d/%s" % (fd, name))
            finally:
                os.close(fd)
        else:
            self.socket.bind(path)
        self.server_address = path


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nimbus-script-server"

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        pass  # requests are counted by the router; the log keeps the model's own output

    def address_string(self):
        return "unix"

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status, body=b"", content_type=None, headers=()):
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", clean_header(content_type))
            for name, value in headers:
                self.send_header(name, clean_header(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        self.read_body()
        path = self.path.split("?", 1)[0]
        if path == "/ping":
            self.reply(200)
        else:
            self.reply(404, b"Not found: GET %s" % path.encode(), "text/plain")

    def do_POST(self):
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.reply(400, b"Malformed request body", "text/plain")
            return
        path = self.path.split("?", 1)[0]
        if path != "/invocations":
            self.reply(404, b"Not found: POST %s" % path.encode(), "text/plain")
            return
        with self.server.slots:
            self.invoke(body)

    def invoke(self, body):
        server = self.server
        # As sagemaker_containers' Request: ContentType, then Content-Type, then JSON.
        content_type = self.headers.get("ContentType") or self.headers.get("Content-Type") or JSON
        accept = self.headers.get("Accept")
        if not accept or accept == ANY:
            accept = server.default_accept
        data = body
        if media_type(content_type) in UTF8_TYPES:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                pass  # input_fn gets the bytes and decides
        context = Context(server.transformer.model_dir, dict(self.headers.items()))
        try:
            result, result_type = server.transformer.transform(data, content_type, accept, context)
            payload = to_bytes(result)
        except UnsupportedFormatError as e:
            error = {"error": "UnsupportedFormatError", "error-message": e.message}
            self.reply(getattr(e, "status", 415), json.dumps(error).encode(), JSON)
            return
        except ClientError as e:
            self.reply(400, str(e).encode("utf-8"), "text/plain")
            return
        except Exception as e:  # noqa: BLE001 (the user's code may raise anything)
            sys.stderr.write(user_traceback(e))
            sys.stderr.flush()
            self.reply(500, error_line(e).encode("utf-8"), "text/plain")
            return
        status, _ = context.get_response_status(0)
        headers = []
        for name, value in context.get_response_headers(0).items():
            if name.lower() == CUSTOM_ATTRIBUTES.lower() and value is not None:
                headers.append((CUSTOM_ATTRIBUTES, value))
        self.reply(status or 200, payload, result_type or accept, headers)


def watch_parent():
    """Exits when the parent dies, so that no orphaned model server keeps the socket."""
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: script_server.py <socket path> <spec JSON>\n")
        return 2
    socket_path = os.path.abspath(argv[1])
    spec = json.loads(argv[2])
    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()

    model_dir = os.path.abspath(spec.get("model_dir") or os.environ.get("SM_MODEL_DIR") or "model")
    os.environ["SM_MODEL_DIR"] = model_dir
    program = spec.get("program") or os.environ.get("SAGEMAKER_PROGRAM") or "inference.py"
    code_dirs = []
    if spec.get("code_dir"):
        code_dirs.append(os.path.abspath(spec["code_dir"]))
    model_code = os.path.join(model_dir, "code")
    if os.path.isdir(model_code) and model_code not in code_dirs:
        code_dirs.append(model_code)
    for d in code_dirs:
        if os.path.isfile(os.path.join(d, "requirements.txt")):
            print(
                "%s/requirements.txt: packages are not installed at run time; "
                "the model runs with the installed ones" % d,
                flush=True,
            )

    try:
        module = import_user_module(code_dirs, program)
        transformer = Transformer(module, model_dir)
        transformer.load()
    except BaseException as e:  # noqa: BLE001 (report whatever stopped the load, then exit)
        sys.stderr.write(user_traceback(e))
        sys.stderr.flush()
        return 1

    default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON
    server = Server(socket_path, transformer, int(spec.get("threads") or 1), default_accept)
    try:
        server.server_bind()
        server.server_activate()
    except OSError as e:
        sys.stderr.write("Cannot listen on %s: %s\n" % (socket_path, e))
        return 1
    print("Model loaded: %s from %s; serving on %s" % (program, model_dir, socket_path), flush=True)
    server.serve_forever(poll_interval=3600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
