// The registry of every built-in algorithm Nimbus ships: one call registers them all, so
// that the `train` worker and the SageMaker service (image URI → algorithm) see the same
// list.
//
// Thread-safety: call RegisterBuiltinAlgorithms() before use; it is idempotent and
// thread-safe (std::call_once).
#pragma once

namespace nimbus::ml {

void RegisterBuiltinAlgorithms();

}  // namespace nimbus::ml
