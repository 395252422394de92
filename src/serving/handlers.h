// MakeHandler: the InferenceHandler for a SageMaker Model's containers. One container is
// served by the built-in algorithm its image names, or by its inference script; several
// form an inference pipeline: the request goes to the first, each response is the next
// container's request (its Content-Type becomes the next Content-Type), and the last
// container's response, in the caller's Accept, is the answer. An error status from any
// container ends the chain with that answer.
//
// Thread-safety: the handlers returned are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "serving/inference.h"

namespace nimbus::serving {

// work_dir: where script-mode children put their sockets (one subfolder per container).
Result<std::unique_ptr<InferenceHandler>> MakeHandler(const std::vector<ContainerSpec>& containers,
                                                      const std::string& work_dir);

}  // namespace nimbus::serving
