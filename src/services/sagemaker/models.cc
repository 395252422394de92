#include "services/sagemaker/models.h"

#include <filesystem>

#include "control/job_dir.h"
#include "core/strings.h"
#include "ml/algorithm.h"
#include "ml/builtin/builtin_algorithms.h"
#include "objects/archive.h"
#include "objects/transfer.h"
#include "services/sagemaker/sagemaker_common.h"

namespace nimbus::services {
namespace {

using control::Resource;

control::ResourceKind MakeKind() {
  // A model has no status of its own; "Created" is terminal so no controller looks at it.
  control::StateMachine states;
  states.initial_status = "Created";
  states.terminal = {"Created"};
  control::ResourceKind kind = control::SageMakerKind("Model", "model", "model", states);
  kind.errors.not_found = {"ValidationException", 400, "Could not find model \"{arn}\"."};
  kind.errors.in_use = {"ValidationException", 400,
                        "Cannot create already existing model \"{arn}\"."};
  return kind;
}

std::string EnvironmentValue(const Value& container, std::string_view name) {
  return Member(container, "Environment").GetString(name);
}

// Where a container's model data is: ModelDataUrl, or ModelDataSource.S3DataSource.
struct ModelData {
  std::string uri;
  bool archive = true;  // a model.tar.gz to unpack; false: an uncompressed S3 prefix/object
  bool prefix = false;
};

std::optional<ModelData> ModelDataOf(const Value& container) {
  if (std::string url = container.GetString("ModelDataUrl"); !url.empty()) {
    return ModelData{url, true, false};
  }
  const Value& source = Member(Member(container, "ModelDataSource"), "S3DataSource");
  if (std::string uri = source.GetString("S3Uri"); !uri.empty()) {
    return ModelData{uri, source.GetString("CompressionType", "None") == "Gzip",
                     source.GetString("S3DataType") == "S3Prefix"};
  }
  return std::nullopt;
}

Status ValidateContainer(const Value& container, const std::string& what) {
  if (container.GetString("Mode", "SingleModel") != "SingleModel") {
    return Invalid(what + ": Mode " + container.GetString("Mode") +
                   " (multi-model endpoints) is not supported by Nimbus");
  }
  if (auto data = ModelDataOf(container)) {
    NIMBUS_RETURN_IF_ERROR(objects::ParseS3Uri(data->uri).status());
  }
  const bool script = !EnvironmentValue(container, "SAGEMAKER_PROGRAM").empty();
  if (!script && ml::FindAlgorithmForImage(container.GetString("Image")) == nullptr &&
      !ModelDataOf(container)) {
    return Invalid(what + ": image " + container.GetString("Image") +
                   " is not a SageMaker built-in algorithm image, and the container names no "
                   "SAGEMAKER_PROGRAM and no model data that could hold code/inference.py");
  }
  return Status::Ok();
}

Status ValidateCreate(const Value& in) {
  const Value* primary = in.Find("PrimaryContainer");
  const Value* containers = in.Find("Containers");
  const bool has_list = containers && containers->is_list() && !containers->list().empty();
  if (primary && has_list) {
    return Invalid("Only one of PrimaryContainer and Containers may be specified.");
  }
  if (!primary && !has_list) {
    return Invalid("Either PrimaryContainer or Containers must be specified.");
  }
  if (Member(in, "InferenceExecutionConfig").GetString("Mode", "Serial") == "Direct") {
    return Invalid("InferenceExecutionConfig Mode Direct is not supported by Nimbus; use Serial");
  }
  if (primary) return ValidateContainer(*primary, "PrimaryContainer");
  if (containers->list().size() > 15) {
    return Invalid("An inference pipeline may have at most 15 containers");
  }
  for (size_t i = 0; i < containers->list().size(); ++i) {
    NIMBUS_RETURN_IF_ERROR(
        ValidateContainer(containers->list()[i], "Containers." + std::to_string(i + 1)));
  }
  return Status::Ok();
}

Status Download(objects::ObjectStore& store, const ModelData& data, const std::string& dir) {
  NIMBUS_ASSIGN_OR_RETURN(objects::S3Location location, objects::ParseS3Uri(data.uri));
  if (data.prefix) return objects::DownloadPrefix(store, location, dir).status();
  if (!data.archive) {
    std::string name = location.key.substr(location.key.rfind('/') + 1);
    return objects::DownloadObject(store, location.bucket, location.key, dir + "/" + name).status();
  }
  const std::string archive = dir + ".tar.gz";
  NIMBUS_RETURN_IF_ERROR(
      objects::DownloadObject(store, location.bucket, location.key, archive).status());
  Status extracted = objects::ExtractArchive(archive, dir);
  std::error_code ec;
  std::filesystem::remove(archive, ec);
  return extracted;
}

}  // namespace

const control::ResourceKind& Models::Kind() {
  static const control::ResourceKind kind = MakeKind();
  return kind;
}

std::vector<Value> Models::Containers(const Resource& model) {
  if (const Value* primary = model.body.Find("PrimaryContainer")) return {*primary};
  std::vector<Value> out;
  if (const Value* list = model.body.Find("Containers"); list && list->is_list()) {
    out = list->list();
  }
  return out;
}

void Models::Register(aws::ServiceRegistry& registry) {
  // Images are told apart by the algorithms they name.
  ml::RegisterBuiltinAlgorithms();
  deps_.resources->RegisterKind(Kind());
  auto bind = [this](auto method) {
    return [this, method](const Value& in, aws::RequestContext& ctx) {
      return (this->*method)(in, ctx);
    };
  };
  auto arn_of = [](const Value& in, const aws::RequestContext& ctx) {
    return Kind().Arn(ctx.account_id, ctx.region, in.GetString("ModelName"));
  };
  registry.Register("sagemaker", "CreateModel", bind(&Models::Create), arn_of);
  registry.Register("sagemaker", "DescribeModel", bind(&Models::Describe), arn_of);
  registry.Register("sagemaker", "ListModels", bind(&Models::List));
  registry.Register("sagemaker", "DeleteModel", bind(&Models::Delete), arn_of);
}

Result<Value> Models::Create(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(ValidateCreate(in));
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  NIMBUS_ASSIGN_OR_RETURN(
      Resource model,
      deps_.resources->Create(Kind(), ctx.account_id, ctx.region, in.GetString("ModelName"),
                              std::move(body), std::move(tags)));
  return Value::Object({{"ModelArn", model.arn}});
}

Result<Value> Models::Describe(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(Resource model, deps_.resources->Get(Kind(), ctx.account_id, ctx.region,
                                                               in.GetString("ModelName")));
  Value out = PublicBody(model.body);
  out["ModelArn"] = model.arn;
  out["CreationTime"] = Value::Timestamp(model.created_at);
  out.Erase("ClientToken");
  if (!out.Has("EnableNetworkIsolation")) out["EnableNetworkIsolation"] = false;
  return out;
}

Result<Value> Models::List(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(Kind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps_.resources->List(Kind(), ctx.account_id, ctx.region, query));
  Value models = Value::MakeList();
  for (const Resource& model : page.items) {
    models.Append(Value::Object({{"ModelName", model.name},
                                 {"ModelArn", model.arn},
                                 {"CreationTime", Value::Timestamp(model.created_at)}}));
  }
  Value out = Value::Object({{"Models", std::move(models)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> Models::Delete(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(
      deps_.resources->Delete(Kind(), ctx.account_id, ctx.region, in.GetString("ModelName")));
  return Value::MakeMap();
}

Result<std::vector<serving::ContainerSpec>> Models::Stage(const Resource& model,
                                                          const std::string& root, int threads) {
  std::vector<serving::ContainerSpec> specs;
  std::vector<Value> containers = Containers(model);
  for (size_t i = 0; i < containers.size(); ++i) {
    const Value& container = containers[i];
    const std::string rel = "containers/" + std::to_string(i);
    serving::ContainerSpec spec;
    spec.model_dir = rel + "/model";
    spec.threads = threads;
    if (const Value* env = container.Find("Environment"); env && env->is_map()) {
      for (const auto& [name, value] : env->map()) {
        if (value.is_string()) spec.environment[name] = value.AsString();
      }
    }
    NIMBUS_RETURN_IF_ERROR(control::MakeDirs(root + "/" + spec.model_dir));
    if (auto data = ModelDataOf(container)) {
      Status got = Download(*deps_.objects, *data, root + "/" + spec.model_dir);
      if (!got.ok()) {
        return Invalid("Could not download model data from " + data->uri + ": " + got.message());
      }
    }
    std::string program = EnvironmentValue(container, "SAGEMAKER_PROGRAM");
    const ml::AlgorithmInfo* algorithm = ml::FindAlgorithmForImage(container.GetString("Image"));
    if (program.empty() && algorithm != nullptr) {
      spec.algorithm = algorithm->name;
      specs.push_back(std::move(spec));
      continue;
    }
    spec.program = program.empty() ? "inference.py" : program;
    std::string submit = EnvironmentValue(container, "SAGEMAKER_SUBMIT_DIRECTORY");
    if (StartsWith(submit, "s3://")) {
      spec.code_dir = rel + "/code";
      Status got =
          Download(*deps_.objects, ModelData{submit, true, false}, root + "/" + spec.code_dir);
      if (!got.ok()) {
        return Invalid("Could not download the source directory " + submit + ": " + got.message());
      }
    } else {
      spec.code_dir = spec.model_dir + "/code";
    }
    if (!std::filesystem::exists(root + "/" + spec.code_dir + "/" + spec.program)) {
      return Invalid("The inference script " + spec.program + " of image " +
                     container.GetString("Image") +
                     " is neither in SAGEMAKER_SUBMIT_DIRECTORY nor under code/ in the model "
                     "data; Nimbus serves non-algorithm images through their inference script");
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace nimbus::services
