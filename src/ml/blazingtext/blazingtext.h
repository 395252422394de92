// BlazingText: SageMaker's built-in "blazingtext" algorithm (image repository "blazingtext")
// on Debian's fastText library (ARCHITECTURE.md §6). Modes:
//   supervised                      text classification: each line of the train (and optional
//                                   validation) channel is a sentence with one or more
//                                   "__label__<name>" tokens; reports validation:accuracy
//   skipgram, cbow, batch_skipgram  Word2Vec on one sentence per line (train channel only);
//                                   batch_skipgram trains the skip-gram objective with fastText's
//                                   per-thread SGD (fastText has no negative-sample-sharing
//                                   mini-batches), so its batch_size is validated but unused
// Hyperparameters, defaults and ranges are those of SageMaker's documentation per mode;
// unknown ones are a ClientError. train:mean_rho (Word2Vec) is computed by SageMaker on the
// WS-353 word-similarity set, which no Debian package ships: it is not reported, and the log
// says so when `evaluation` is true.
//
// Channels hold text/plain files (the content type may also be left empty); several files
// are concatenated in path order. Augmented manifests and Pipe mode are refused. fastText
// trains from a single file path, so inputs are prepared as files first and validated
// before fastText sees them (fastText throws, or misbehaves, on unlabelled or empty input);
// its exceptions are caught here and become ClientErrors.
//
// Artifacts, as SageMaker writes them (fastText can load the .bin files and vice versa):
//   supervised → model.bin    (fastText binary model)
//   Word2Vec   → vectors.bin  (fastText binary model) and vectors.txt (word2vec text format:
//                "<words> <dim>" then "<word> <v1> ... <vdim>" per line)
//
// Inference takes text, not numbers: PredictText()/PredictRequest() with the request shapes
// of SageMaker's BlazingText container; Predict(Dataset) is a ClientError pointing there.
//
// Thread-safety: a loaded BlazingTextModel may predict from several threads at once.
// Training is one job at a time (fastText owns the threads it starts).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"

namespace nimbus::ml {

class BlazingTextModel : public Model {
 public:
  // model.bin (supervised) or vectors.bin (Word2Vec) of a model directory.
  static Result<std::unique_ptr<BlazingTextModel>> Load(const std::string& model_dir);
  ~BlazingTextModel() override;

  bool supervised() const;
  int dimension() const;  // vector_dim

  // Supervised: {"label": ["__label__x", ...], "prob": [p, ...]} per sentence, the k most
  // probable labels first. Word2Vec: {"word": w, "vector": [...]} per word; an unknown word
  // gets zeros unless the model learned subwords. ClientError when k < 1.
  Result<std::vector<Value>> PredictText(const std::vector<std::string>& instances,
                                         int k = 1) const;
  // A request as SageMaker's BlazingText container takes it: {"instances": [...],
  // "configuration": {"k": 2}} (application/json), one JSON Lines record {"source": "...",
  // "k": 2}, or a list of such records (application/jsonlines batch transform).
  Result<std::vector<Value>> PredictRequest(const Value& request) const;
  // Always a ClientError: BlazingText takes text (see PredictRequest).
  Result<std::vector<Value>> Predict(const Dataset& batch) override;

 private:
  struct Impl;
  explicit BlazingTextModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::unique_ptr<Algorithm> MakeBlazingTextAlgorithm();
// Registers "blazingtext" (image repository "blazingtext"; text/plain).
void RegisterBlazingTextAlgorithm();

}  // namespace nimbus::ml
