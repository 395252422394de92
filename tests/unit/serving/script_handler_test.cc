#include "serving/script_handler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// These tests run the real thing: /usr/bin/python3 with Debian's numpy, scikit-learn and
// joblib, a model trained and saved as a SageMaker training script would, and the
// embedded script_server.py answering over a Unix socket.

namespace nimbus::serving {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path);
  out << text;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Iris rows 0, 60 and 120: one of each class; the tree below labels them 0, 1, 2.
constexpr char kRowsJson[] = "[[5.1, 3.5, 1.4, 0.2], [5.0, 2.0, 3.5, 1.0], [6.9, 3.2, 5.7, 2.3]]";
constexpr char kRowsCsv[] = "5.1,3.5,1.4,0.2\n5.0,2.0,3.5,1.0\n6.9,3.2,5.7,2.3\n";

// What a training script saves: a fitted estimator, dumped with joblib.
constexpr char kTrainScript[] = R"(
import os, sys, joblib
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
joblib.dump(DecisionTreeClassifier(random_state=0).fit(X, y), os.path.join(sys.argv[1], "model.joblib"))
)";

constexpr char kModelFnOnly[] = R"(
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
)";

class ScriptHandlerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // As the serve worker does: a write to a model server that just died must fail with
    // EPIPE, not kill the process.
    ::signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/nimbus-script-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = new fs::path(tmpl);
    const fs::path model_dir = *root_ / "model";
    fs::create_directories(model_dir);
    WriteFile(*root_ / "train.py", kTrainScript);
    const std::string command =
        "/usr/bin/python3 " + (*root_ / "train.py").string() + " " + model_dir.string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }

  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
    root_ = nullptr;
  }

  void SetUp() override {
    dir_ = *root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
  }

  // A container whose code directory holds inference.py with the given source.
  ContainerSpec Spec(const std::string& inference_py) {
    WriteFile(dir_ / "code" / "inference.py", inference_py);
    ContainerSpec spec;
    spec.model_dir = (*root_ / "model").string();
    spec.code_dir = (dir_ / "code").string();
    return spec;
  }

  std::unique_ptr<InferenceHandler> Start(const ContainerSpec& spec) {
    auto handler = MakeScriptHandler(spec, (dir_ / "work").string());
    EXPECT_TRUE(handler.ok()) << handler.status().message();
    return handler.ok() ? std::move(handler).value() : nullptr;
  }

  static InvocationResult Call(InferenceHandler& handler, std::string content_type,
                               std::string accept, std::string body,
                               std::string custom_attributes = "") {
    Invocation request{std::move(content_type), std::move(accept), std::move(custom_attributes),
                       std::move(body)};
    Result<InvocationResult> result = handler.Invoke(request);
    EXPECT_TRUE(result.ok()) << result.status().message();
    return result.ok() ? *result : InvocationResult{-1, "", result.status().message(), ""};
  }

  static inline fs::path* root_ = nullptr;
  fs::path dir_;
};

TEST_F(ScriptHandlerTest, ModelFnAloneServesJsonAndCsvWithTheDefaults) {
  auto handler = Start(Spec(kModelFnOnly));
  ASSERT_NE(handler, nullptr);
  EXPECT_TRUE(handler->Ping());

  InvocationResult json = Call(*handler, "application/json", "application/json", kRowsJson);
  EXPECT_EQ(json.status, 200) << json.body;
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(json.body, "[0, 1, 2]");

  InvocationResult csv = Call(*handler, "text/csv", "text/csv", kRowsCsv);
  EXPECT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.content_type, "text/csv");
  EXPECT_EQ(csv.body, "0\n1\n2\n");

  // No Accept, or */*: SageMaker's default, JSON.
  EXPECT_EQ(Call(*handler, "text/csv", "", kRowsCsv).body, "[0, 1, 2]");
  InvocationResult any = Call(*handler, "text/csv", "*/*", kRowsCsv);
  EXPECT_EQ(any.content_type, "application/json");
  EXPECT_EQ(any.body, "[0, 1, 2]");
  // No Content-Type: JSON, as the containers assume.
  EXPECT_EQ(Call(*handler, "", "text/csv", kRowsJson).body, "0\n1\n2\n");
  // Parameters on the media type do not change it.
  EXPECT_EQ(Call(*handler, "text/csv; charset=utf-8", "", kRowsCsv).body, "[0, 1, 2]");
}

TEST_F(ScriptHandlerTest, DefaultsRefuseWhatTheyCannotReadOrWrite) {
  auto handler = Start(Spec(kModelFnOnly));
  ASSERT_NE(handler, nullptr);

  InvocationResult in = Call(*handler, "application/x-image", "", "\x89PNG");
  EXPECT_EQ(in.status, 415);
  EXPECT_NE(in.body.find("Content type application/x-image is not supported by this framework"),
            std::string::npos)
      << in.body;
  EXPECT_NE(in.body.find("Please implement input_fn"), std::string::npos) << in.body;

  InvocationResult out = Call(*handler, "text/csv", "application/x-protobuf", kRowsCsv);
  EXPECT_EQ(out.status, 406);
  EXPECT_NE(out.body.find("Content type application/x-protobuf is not supported"),
            std::string::npos)
      << out.body;

  InvocationResult broken = Call(*handler, "application/json", "", "[[5.1, 3.5,");
  EXPECT_EQ(broken.status, 400);
  EXPECT_NE(broken.body.find("application/json"), std::string::npos) << broken.body;

  // The model server still answers after refusing.
  EXPECT_EQ(Call(*handler, "application/json", "", kRowsJson).body, "[0, 1, 2]");
}

TEST_F(ScriptHandlerTest, UsesAllFourFunctionsTheEnvironmentAndCustomAttributes) {
  ContainerSpec spec;
  spec.model_dir = (*root_ / "model").string();
  spec.code_dir = (dir_ / "src").string();
  spec.program = "serve.py";
  spec.environment = {{"GREETING", "hello"}};
  WriteFile(dir_ / "src" / "helpers.py", "def rows(payload):\n    return payload['rows']\n");
  WriteFile(dir_ / "src" / "serve.py", R"(
import json
import os

import joblib

import helpers  # the code directory is on sys.path, as in SageMaker


def model_fn(model_dir):
    return {
        "tree": joblib.load(os.path.join(model_dir, "model.joblib")),
        "greeting": os.environ["GREETING"],
        "same_dir": os.environ["SM_MODEL_DIR"] == model_dir,
    }


def input_fn(body, content_type):
    if content_type != "application/vnd.rows+json":
        raise ValueError("unexpected content type " + content_type)
    return helpers.rows(json.loads(body))


def predict_fn(data, model):
    return {
        "labels": model["tree"].predict(data).tolist(),
        "greeting": model["greeting"],
        "same_dir": model["same_dir"],
    }


def output_fn(prediction, accept, context):
    seen = context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes")
    context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "seen=" + str(seen))
    return json.dumps(prediction, sort_keys=True), "application/vnd.answer+json"
)");
  auto handler = Start(spec);
  ASSERT_NE(handler, nullptr);

  InvocationResult result =
      Call(*handler, "application/vnd.rows+json", "application/vnd.answer+json",
           std::string("{\"rows\": ") + kRowsJson + "}", "trace-id=7");
  EXPECT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(result.content_type, "application/vnd.answer+json");
  EXPECT_EQ(result.body, R"({"greeting": "hello", "labels": [0, 1, 2], "same_dir": true})");
  EXPECT_EQ(result.custom_attributes, "seen=trace-id=7");

  // Without the header, the function sees None.
  EXPECT_EQ(Call(*handler, "application/vnd.rows+json", "", R"({"rows": [[5.1, 3.5, 1.4, 0.2]]})")
                .custom_attributes,
            "seen=None");
}

TEST_F(ScriptHandlerTest, TransformFnFromTheModelsCodeDirectory) {
  // SageMaker's PyTorch and inference-toolkit layout: the code inside model.tar.gz.
  const fs::path model_dir = dir_ / "model";
  WriteFile(model_dir / "weights.txt", "3");
  WriteFile(model_dir / "code" / "inference.py", R"(
import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.txt")) as f:
        return int(f.read())


def transform_fn(model, data, content_type, accept):
    numbers = json.loads(data)
    return json.dumps([n * model for n in numbers]), "application/json"
)");
  ContainerSpec spec;
  spec.model_dir = model_dir.string();
  auto handler = Start(spec);
  ASSERT_NE(handler, nullptr);
  InvocationResult result = Call(*handler, "application/json", "", "[1, 2, 5]");
  EXPECT_EQ(result.status, 200) << result.body;
  EXPECT_EQ(result.body, "[3, 6, 15]");
}

TEST_F(ScriptHandlerTest, TransformFnBesideInputFnIsRefused) {
  auto handler = MakeScriptHandler(Spec(R"(
def model_fn(model_dir):
    return 1

def input_fn(body, content_type):
    return body

def transform_fn(model, data, content_type, accept):
    return data
)"),
                                   (dir_ / "work").string());
  ASSERT_FALSE(handler.ok());
  EXPECT_NE(handler.status().message().find("Cannot use transform_fn implementation in "
                                            "conjunction with input_fn"),
            std::string::npos)
      << handler.status().message();
}

TEST_F(ScriptHandlerTest, PredictThatRaisesIsA500NamingTheError) {
  auto handler = Start(Spec(R"(
def model_fn(model_dir):
    return "model"

def predict_fn(data, model):
    if data.shape[0] > 1:
        raise ValueError("predict exploded on purpose")
    return data.sum(axis=1)
)"));
  ASSERT_NE(handler, nullptr);
  InvocationResult failed = Call(*handler, "application/json", "", kRowsJson);
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.body, "ValueError: predict exploded on purpose");

  // One failed request leaves the model serving.
  EXPECT_TRUE(handler->Ping());
  InvocationResult ok = Call(*handler, "application/json", "", "[[1, 2, 3.5]]");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "[6.5]");
}

TEST_F(ScriptHandlerTest, ModelFnThatRaisesFailsTheStartWithItsError) {
  auto handler = MakeScriptHandler(Spec(R"(
def model_fn(model_dir):
    raise RuntimeError("cannot load the weights from " + model_dir)
)"),
                                   (dir_ / "work").string());
  ASSERT_FALSE(handler.ok());
  const std::string& message = handler.status().message();
  EXPECT_NE(message.find("inference.py exited with code 1 before it was ready"), std::string::npos)
      << message;
  EXPECT_NE(
      message.find("RuntimeError: cannot load the weights from " + (*root_ / "model").string()),
      std::string::npos)
      << message;
  EXPECT_NE(message.find("Traceback"), std::string::npos) << message;
}

TEST_F(ScriptHandlerTest, MissingInferenceScriptFailsTheStart) {
  ContainerSpec spec;
  spec.model_dir = (*root_ / "model").string();
  spec.code_dir = (dir_ / "empty").string();
  fs::create_directories(spec.code_dir);
  auto handler = MakeScriptHandler(spec, (dir_ / "work").string());
  ASSERT_FALSE(handler.ok());
  EXPECT_NE(handler.status().message().find("No module named 'inference': inference.py is not in " +
                                            spec.code_dir),
            std::string::npos)
      << handler.status().message();
}

TEST_F(ScriptHandlerTest, ImportErrorInTheScriptFailsTheStart) {
  auto handler = MakeScriptHandler(Spec("import no_such_package_here\n"), (dir_ / "work").string());
  ASSERT_FALSE(handler.ok());
  EXPECT_NE(handler.status().message().find(
                "ModuleNotFoundError: No module named 'no_such_package_here'"),
            std::string::npos)
      << handler.status().message();
}

TEST_F(ScriptHandlerTest, AnswersEightThreadsAtOnce) {
  ContainerSpec spec = Spec(kModelFnOnly);
  spec.threads = 4;
  auto handler = Start(spec);
  ASSERT_NE(handler, nullptr);
  // Each thread asks about its own class, so crossed answers would show.
  const std::vector<std::string> rows = {"5.1,3.5,1.4,0.2", "5.0,2.0,3.5,1.0", "6.9,3.2,5.7,2.3"};
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const int label = (t + i) % 3;
        Result<InvocationResult> result =
            handler->Invoke({"text/csv", "text/csv", "", rows[label] + "\n" + rows[label] + "\n"});
        const std::string expected = std::to_string(label) + "\n" + std::to_string(label) + "\n";
        (result.ok() && result->status == 200 && result->body == expected ? right : wrong)++;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(right.load(), 160);
  EXPECT_EQ(wrong.load(), 0);
}

// The model's pid, which its model_fn wrote where PID_FILE says.
constexpr char kWritesPid[] = R"(
import os

def model_fn(model_dir):
    with open(os.environ["PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
    return "model"

def predict_fn(data, model):
    return data
)";

TEST_F(ScriptHandlerTest, KilledChildMakesPingFalseAndInvokeFail) {
  ContainerSpec spec = Spec(kWritesPid);
  spec.environment["PID_FILE"] = (dir_ / "pid").string();
  auto handler = Start(spec);
  ASSERT_NE(handler, nullptr);
  EXPECT_EQ(Call(*handler, "application/json", "", "[1, 2]").body, "[1.0, 2.0]");
  const pid_t pid = std::stoi(ReadFile(dir_ / "pid"));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // The kernel needs a moment to end it; Ping must turn false without hanging.
  bool alive = true;
  for (int i = 0; i < 100 && alive; ++i) {
    alive = handler->Ping();
    if (alive) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(alive);
  Result<InvocationResult> result = handler->Invoke({"application/json", "", "", "[1, 2]"});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("was killed by signal 9"), std::string::npos)
      << result.status().message();
}

TEST_F(ScriptHandlerTest, DestroyingTheHandlerStopsTheChild) {
  ContainerSpec spec = Spec(kWritesPid);
  spec.environment["PID_FILE"] = (dir_ / "pid").string();
  auto handler = Start(spec);
  ASSERT_NE(handler, nullptr);
  const pid_t pid = std::stoi(ReadFile(dir_ / "pid"));
  ASSERT_EQ(::kill(pid, 0), 0);
  handler.reset();
  // Reaped, not merely signalled: the pid no longer exists.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(fs::exists(dir_ / "work" / "model.sock"));
}

TEST_F(ScriptHandlerTest, WorksInADirectoryPastTheSocketPathLimit) {
  // sun_path holds 107 bytes; job directories can be deeper than that.
  ContainerSpec spec = Spec(kModelFnOnly);
  const fs::path deep = dir_ / std::string(60, 'a') / std::string(60, 'b');
  ASSERT_GT((deep / "model.sock").string().size(), 108u);
  auto handler = MakeScriptHandler(spec, deep.string());
  ASSERT_TRUE(handler.ok()) << handler.status().message();
  EXPECT_TRUE((*handler)->Ping());
  EXPECT_EQ(Call(**handler, "application/json", "", kRowsJson).body, "[0, 1, 2]");
}

}  // namespace
}  // namespace nimbus::serving
