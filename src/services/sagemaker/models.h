// SageMaker models (CreateModel, DescribeModel, ListModels, DeleteModel): the containers an
// endpoint or a transform job serves. A model is a document without a life of its own (no
// status, no controller); what matters is how its containers are staged for a worker:
//   - each container's ModelDataUrl (a model.tar.gz, or an S3 prefix with
//     ModelDataSource.S3DataSource CompressionType None) is unpacked into
//     <root>/containers/<i>/model (the container's /opt/ml/model);
//   - a container whose Environment names SAGEMAKER_PROGRAM is script mode: its
//     SAGEMAKER_SUBMIT_DIRECTORY (an s3:// sourcedir.tar.gz) is unpacked into
//     <root>/containers/<i>/code, else the code is <model>/code, as SageMaker's framework
//     containers look for it; otherwise an image of a built-in algorithm is served by it,
//     and any other image must bring code/<program> in its model data.
// The specs use paths relative to the worker's job directory, so they hold inside and
// outside the sandbox.
//
// Thread-safety: as SageMakerService.
#pragma once

#include <string>
#include <vector>

#include "aws/service.h"
#include "control/resource_store.h"
#include "services/sagemaker/sagemaker_service.h"
#include "serving/inference.h"

namespace nimbus::services {

class Models {
 public:
  static const control::ResourceKind& Kind();

  explicit Models(const SageMakerDeps& deps) : deps_(deps) {}
  void Register(aws::ServiceRegistry& registry);

  // Downloads and unpacks the model's containers under root (see above); threads is what
  // each container may use at once. A model data URL that cannot be read is a
  // ValidationException naming it.
  Result<std::vector<serving::ContainerSpec>> Stage(const control::Resource& model,
                                                    const std::string& root, int threads);

  // The model's containers, PrimaryContainer or Containers, in order.
  static std::vector<Value> Containers(const control::Resource& model);

 private:
  Result<Value> Create(const Value& in, aws::RequestContext& ctx);
  Result<Value> Describe(const Value& in, aws::RequestContext& ctx);
  Result<Value> List(const Value& in, aws::RequestContext& ctx);
  Result<Value> Delete(const Value& in, aws::RequestContext& ctx);

  const SageMakerDeps& deps_;
};

}  // namespace nimbus::services
