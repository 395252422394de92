// The `transform` worker kind: one SageMaker batch transform job (services/sagemaker/
// transform_jobs.h stages it). It serves the model in-process (serving::MakeHandler over the
// containers the job directory holds) and runs serving::RunBatchTransform
// (serving/batch_transform.h) over the staged input files, writing <file>.out files for the
// service to upload. Progress and SageMaker's "[sagemaker logs]: …" data-log lines go to
// stdout, hence to the job's log stream in CloudWatch Logs.
//
// spec.json:
//   {"containers": [ContainerSpec as serving::ContainerSpecToValue writes it, …],
//    "request": {the CreateTransformJob members TransformSettingsFromRequest reads},
//    "concurrency": N,            MaxConcurrentTransforms when the request has none
//    "input_dir": "input/data/transform", "output_dir": "output/data" (job-relative),
//    "files": [{"path": "<relative path>", "name": "<bucket>/<key>"}, …]}
//
// A failure writes output/failure with the job's FailureReason ("ClientError: …" for bad
// input or settings, "AlgorithmError: …" when the model cannot be loaded or fails).
//
// Thread-safety: the kind function runs once per worker process.
#pragma once

#include "worker/worker_kind.h"

namespace nimbus::worker {

int RunTransformKind(const WorkerContext& ctx);
// Registers the kind as "transform" (the nimbus binary calls it before `nimbus worker`).
void RegisterTransformWorkerKind();

}  // namespace nimbus::worker
