// The `serve` worker kind: one instance of a SageMaker endpoint variant. It loads the model's
// containers (staged in the job directory by the endpoint controller, see
// services/sagemaker/models.h) once, through serving::MakeHandler, and answers SageMaker's
// serving contract (serving/model_server.h) on the Unix socket kModelServerSocket in its job
// directory, where the router connects. spec.json: {"containers": [ContainerSpec...],
// "threads": N}.
//
// It runs until it is stopped (SIGTERM from the executor). A model that cannot be loaded
// fails the worker with the reason in output/failure, which the endpoint reports as its
// FailureReason.
#pragma once

#include "worker/worker_kind.h"

namespace nimbus::worker {

int RunServeKind(const WorkerContext& ctx);
// Registers the kind as "serve" (the nimbus binary calls it before `nimbus worker`).
void RegisterServeWorkerKind();

}  // namespace nimbus::worker
