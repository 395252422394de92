#include "ml/builtin/builtin_algorithms.h"

#include <mutex>

#include "ml/blazingtext/blazingtext.h"
#include "ml/fm/factorization_machines.h"
#include "ml/kmeans/kmeans.h"
#include "ml/knn/knn.h"
#include "ml/linear/linear_learner.h"
#include "ml/pca/pca.h"
#include "ml/rcf/rcf.h"
#include "ml/xgboost/xgboost_algorithm.h"

namespace nimbus::ml {

void RegisterBuiltinAlgorithms() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterXgboostAlgorithm();
    RegisterKnnAlgorithm();
    RegisterBlazingTextAlgorithm();
    RegisterKmeansAlgorithm();
    RegisterPcaAlgorithm();
    RegisterRcfAlgorithm();
    RegisterLinearLearnerAlgorithm();
    RegisterFactorizationMachinesAlgorithm();
  });
}

}  // namespace nimbus::ml
