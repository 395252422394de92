// awsJson: the body of a JSON request to one of a few real operations (picked by the
// first byte), through Resolve, ParseRequest, Validate and the serializers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kTargets[][2] = {
      {"SageMaker.CreateTrainingJob", "sagemaker"},
      {"Logs_20140328.PutLogEvents", "logs"},
      {"RekognitionService.DetectLabels", "rekognition"},
      {"GraniteServiceVersion20100801.PutMetricData", "monitoring"},
      {"AmazonPersonalize.CreateSolution", "personalize"},
  };
  if (size == 0) return 0;
  const auto& target = kTargets[data[0] % (sizeof(kTargets) / sizeof(kTargets[0]))];
  nimbus::http::Request request;
  request.method = "POST";
  request.target = "/";
  request.SplitTarget();
  request.headers.Add("X-Amz-Target", target[0]);
  request.headers.Add("Content-Type", "application/x-amz-json-1.1");
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  nimbus::fuzz::Exercise(request, target[1], body);
  return 0;
}
