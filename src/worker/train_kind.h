// The `train` worker kind: runs one of Nimbus's built-in algorithms (ml/) in a training job
// directory laid out as SageMaker's training container (docs/job-directory.md):
// hyperparameters from input/config/hyperparameters.json, channels and their content types
// from input/config/inputdataconfig.json and input/data/<channel>/, the artifact written to
// model/, metrics appended to metrics.log (control/job_samples.h), checkpoints in
// checkpoints/. spec.json: {"algorithm": "<name>", "num_threads": N}.
//
// A failure writes output/failure as SageMaker's algorithms do: "ClientError: …" for bad
// hyperparameters or data, "AlgorithmError: …" otherwise.
#pragma once

#include "worker/worker_kind.h"

namespace nimbus::worker {

int RunTrainKind(const WorkerContext& ctx);
// Registers the kind as "train" (the nimbus binary calls it before `nimbus worker`).
void RegisterTrainWorkerKind();

}  // namespace nimbus::worker
