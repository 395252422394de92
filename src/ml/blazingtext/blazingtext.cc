#include "ml/blazingtext/blazingtext.h"

#include <fasttext/fasttext.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/strings.h"

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;

constexpr char kSupervisedModel[] = "model.bin";
constexpr char kVectorsBin[] = "vectors.bin";
constexpr char kVectorsTxt[] = "vectors.txt";
constexpr char kLabelPrefix[] = "__label__";

struct BtParams {
  std::string mode;
  bool supervised = false;
  int64_t epochs = 5;
  double learning_rate = 0.05;
  int64_t min_count = 5;
  int64_t vector_dim = 100;
  int64_t buckets = 2000000;
  // supervised
  bool early_stopping = false;
  int64_t min_epochs = 5;
  int64_t patience = 4;
  int64_t word_ngrams = 2;
  // Word2Vec
  int64_t batch_size = 11;
  bool evaluation = true;
  int64_t min_char = 3;
  int64_t max_char = 6;
  int64_t negative_samples = 5;
  double sampling_threshold = 0.0001;
  bool subwords = false;
  int64_t window_size = 5;
};

constexpr int64_t kIntMax = INT32_MAX;  // fastText's arguments are 32-bit ints

Result<double> PositiveFloat(HyperparameterReader& r, const Hyperparameters& hp,
                             const std::string& name, double fallback, double max = 1e308) {
  NIMBUS_ASSIGN_OR_RETURN(double v, r.Float(name, fallback, -1e308, max));
  if (v <= 0) {
    return ClientError("Hyperparameter '" + name + "' = '" + hp.at(name) +
                       "' is out of range: must be positive");
  }
  return v;
}

Result<BtParams> ParseParams(const Hyperparameters& hp) {
  HyperparameterReader r(hp);
  BtParams p;
  NIMBUS_ASSIGN_OR_RETURN(
      p.mode, r.Choice("mode", std::nullopt, {"supervised", "skipgram", "cbow", "batch_skipgram"}));
  p.supervised = p.mode == "supervised";
  NIMBUS_ASSIGN_OR_RETURN(p.buckets, r.Int("buckets", 2000000, 1, kIntMax));
  NIMBUS_ASSIGN_OR_RETURN(p.epochs, r.Int("epochs", 5, 1, kIntMax));
  NIMBUS_ASSIGN_OR_RETURN(p.learning_rate, PositiveFloat(r, hp, "learning_rate", 0.05));
  NIMBUS_ASSIGN_OR_RETURN(p.min_count, r.Int("min_count", 5, 0, kIntMax));
  NIMBUS_ASSIGN_OR_RETURN(p.vector_dim, r.Int("vector_dim", 100, 1, kIntMax));
  if (p.supervised) {
    NIMBUS_ASSIGN_OR_RETURN(p.early_stopping, r.Bool("early_stopping", false));
    NIMBUS_ASSIGN_OR_RETURN(p.min_epochs, r.Int("min_epochs", 5, 1, kIntMax));
    NIMBUS_ASSIGN_OR_RETURN(p.patience, r.Int("patience", 4, 1, kIntMax));
    NIMBUS_ASSIGN_OR_RETURN(p.word_ngrams, r.Int("word_ngrams", 2, 1, kIntMax));
  } else {
    NIMBUS_ASSIGN_OR_RETURN(p.batch_size, r.Int("batch_size", 11, 1, kIntMax));
    NIMBUS_ASSIGN_OR_RETURN(p.evaluation, r.Bool("evaluation", true));
    NIMBUS_ASSIGN_OR_RETURN(p.min_char, r.Int("min_char", 3, 1, kIntMax));
    NIMBUS_ASSIGN_OR_RETURN(p.max_char, r.Int("max_char", 6, 1, kIntMax));
    NIMBUS_ASSIGN_OR_RETURN(p.negative_samples, r.Int("negative_samples", 5, 1, kIntMax));
    NIMBUS_ASSIGN_OR_RETURN(p.sampling_threshold,
                            PositiveFloat(r, hp, "sampling_threshold", 0.0001, 1.0));
    NIMBUS_ASSIGN_OR_RETURN(p.subwords, r.Bool("subwords", false));
    NIMBUS_ASSIGN_OR_RETURN(p.window_size, r.Int("window_size", 5, 1, kIntMax));
    if (p.min_char > p.max_char) {
      return ClientError("Hyperparameter 'min_char' = '" + std::to_string(p.min_char) +
                         "' must not exceed max_char (" + std::to_string(p.max_char) + ")");
    }
  }
  // The other mode's hyperparameters are unknown here, as in SageMaker's per-mode tables.
  NIMBUS_RETURN_IF_ERROR(r.CheckAllKnown());
  return p;
}

std::string Num(double v, int precision = 4) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(precision);
  out << v;
  return out.str();
}

// A private temporary directory, removed with everything in it when this goes away.
class TempDir {
 public:
  static Result<TempDir> Make() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string pattern = (base / "nimbus-blazingtext-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return Status::Internal("cannot create a temporary directory under " + base.string());
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// What a scan of a channel's text found.
struct TextStats {
  int64_t lines = 0;           // non-blank lines
  int64_t labelled_lines = 0;  // lines with at least one __label__ token
  int64_t tokens = 0;          // non-label tokens
};

void ScanLine(const std::string& line, TextStats* stats) {
  std::istringstream words(line);
  std::string word;
  bool any = false;
  bool labelled = false;
  while (words >> word) {
    any = true;
    if (StartsWith(word, kLabelPrefix)) {
      labelled = true;
    } else {
      ++stats->tokens;
    }
  }
  if (any) ++stats->lines;
  if (labelled) ++stats->labelled_lines;
}

// The channel's files as one text file fastText can read (the single file itself, or the
// files concatenated in path order into `tmp`), with statistics for validation.
Result<std::string> PrepareChannel(const Channel& channel, const std::string& tmp,
                                   TextStats* stats) {
  if (channel.pipe) {
    return ClientError("BlazingText reads channel '" + channel.name +
                       "' in File mode only (Pipe mode needs augmented manifests, which are not "
                       "supported)");
  }
  std::string type = ToLower(Trim(channel.content_type));
  if (size_t semi = type.find(';'); semi != std::string::npos)
    type = std::string(Trim(type.substr(0, semi)));
  if (!type.empty() && type != "text/plain") {
    return ClientError("BlazingText reads text/plain (one sentence per line); content type '" +
                       channel.content_type + "' of channel '" + channel.name +
                       "' is not supported");
  }
  std::vector<std::string> files = channel.Files();
  if (files.empty()) return ClientError("Channel '" + channel.name + "' holds no files");
  const bool single = files.size() == 1;
  const std::string out_path =
      single ? files[0] : (fs::path(tmp) / (channel.name + ".txt")).string();
  std::ofstream out;
  if (!single) {
    out.open(out_path, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Internal("cannot write " + out_path);
  }
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return ClientError("Cannot read " + file + " of channel '" + channel.name + "'");
    std::string line;
    while (std::getline(in, line)) {
      ScanLine(line, stats);
      if (!single) out << line << '\n';
    }
  }
  if (!single) {
    out.close();
    if (!out) return Status::Internal("cannot write " + out_path);
  }
  return out_path;
}

// fastText with access to what it keeps protected: the training progress and final loss,
// for the log lines SageMaker's BlazingText writes.
class FastTextTrainer : public fasttext::FastText {
 public:
  int64_t token_count() const { return tokenCount_; }
  float loss() const { return loss_; }
  int64_t ntokens() const { return dict_ ? dict_->ntokens() : 0; }
  int32_t nwords() const { return dict_ ? dict_->nwords() : 0; }
  int32_t nlabels() const { return dict_ ? dict_->nlabels() : 0; }
};

// P@1 of a labelled text file: with one label per line, the accuracy.
Result<std::pair<int64_t, double>> Accuracy(fasttext::FastText& ft, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Internal("cannot read " + path);
  try {
    auto [n, precision, recall] = ft.test(in, 1, 0.0);
    (void)recall;
    return std::make_pair(static_cast<int64_t>(n), n > 0 ? precision : 0.0);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("evaluating the model: ") + e.what());
  }
}

class BlazingTextAlgorithm : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override;
};

Status BlazingTextAlgorithm::Train(const TrainingInput& input) {
  auto log = [&](const std::string& line) {
    if (input.log) input.log(line);
  };
  NIMBUS_ASSIGN_OR_RETURN(BtParams p, ParseParams(input.hyperparameters));
  auto train_it = input.channels.find("train");
  if (train_it == input.channels.end()) return ClientError("BlazingText needs a 'train' channel");
  for (const auto& [name, channel] : input.channels) {
    if (name == "train") continue;
    if (name == "validation" && p.supervised) continue;
    return ClientError(p.supervised ? "BlazingText supervised mode takes the channels 'train' and "
                                      "'validation', not '" +
                                          name + "'"
                                    : "BlazingText Word2Vec takes only the 'train' channel, not '" +
                                          name + "'");
  }
  NIMBUS_ASSIGN_OR_RETURN(TempDir tmp, TempDir::Make());
  TextStats train_stats;
  NIMBUS_ASSIGN_OR_RETURN(std::string train_path,
                          PrepareChannel(train_it->second, tmp.path(), &train_stats));
  if (train_stats.tokens == 0) return ClientError("The train channel holds no words");
  std::string validation_path;
  TextStats validation_stats;
  if (auto it = input.channels.find("validation"); it != input.channels.end()) {
    NIMBUS_ASSIGN_OR_RETURN(validation_path,
                            PrepareChannel(it->second, tmp.path(), &validation_stats));
    if (validation_stats.labelled_lines == 0) {
      return ClientError(
          "The validation channel holds no labelled lines (labels are words "
          "prefixed with __label__)");
    }
  }
  if (p.supervised && train_stats.labelled_lines == 0) {
    return ClientError(
        "Supervised mode needs labelled lines in the train channel (labels are "
        "words prefixed with __label__)");
  }

  fasttext::Args args;
  args.input = train_path;
  args.verbose = 0;  // fastText would print to stderr; progress is logged from the callback
  args.thread = std::max(1, input.num_threads);
  args.seed = 0;
  args.lr = p.learning_rate;
  args.epoch = static_cast<int>(p.epochs);
  args.dim = static_cast<int>(p.vector_dim);
  args.minCount = static_cast<int>(p.min_count);
  args.label = kLabelPrefix;
  if (p.supervised) {
    args.model = fasttext::model_name::sup;
    args.loss = fasttext::loss_name::softmax;
    args.minn = 0;
    args.maxn = 0;
    args.wordNgrams = static_cast<int>(p.word_ngrams);
    // As fastText's command line does: no n-grams and no subwords need no hash buckets.
    args.bucket = p.word_ngrams <= 1 ? 0 : static_cast<int>(p.buckets);
  } else {
    args.model = p.mode == "cbow" ? fasttext::model_name::cbow : fasttext::model_name::sg;
    args.loss = fasttext::loss_name::ns;
    args.ws = static_cast<int>(p.window_size);
    args.neg = static_cast<int>(p.negative_samples);
    args.t = p.sampling_threshold;
    args.wordNgrams = 1;
    args.minn = p.subwords ? static_cast<int>(p.min_char) : 0;
    args.maxn = p.subwords ? static_cast<int>(p.max_char) : 0;
    args.bucket = p.subwords ? static_cast<int>(p.buckets) : 0;
  }
  log("Mode: " + p.mode + ", vector_dim " + std::to_string(p.vector_dim) + ", epochs " +
      std::to_string(p.epochs) + ", learning_rate " + Num(p.learning_rate) + ", threads " +
      std::to_string(args.thread));
  if (p.mode == "batch_skipgram") {
    log("batch_skipgram trains the skip-gram objective with per-thread SGD (batch_size is not "
        "used)");
  }
  const bool early_stopping = p.supervised && p.early_stopping;
  if (early_stopping && validation_path.empty()) {
    log("early_stopping needs a validation channel: training for all " + std::to_string(p.epochs) +
        " epochs");
  }

  FastTextTrainer ft;
  std::mutex progress_mu;
  std::atomic<int64_t> logged_epoch{0};
  double best_accuracy = -1;
  int64_t best_epoch = 0;
  int64_t stopped_at = 0;
  Status callback_error;
  const auto start = std::chrono::steady_clock::now();
  // fastText calls this from every training thread; exceptions must not escape into them.
  auto callback = [&](float progress, float /*loss*/, double wst, double lr, int64_t /*eta*/) {
    const auto epoch = static_cast<int64_t>(progress * static_cast<float>(p.epochs));
    if (epoch <= logged_epoch) return;
    std::lock_guard<std::mutex> lock(progress_mu);
    if (epoch <= logged_epoch) return;
    logged_epoch = epoch;
    try {
      log("##### Epoch " + std::to_string(epoch) + "/" + std::to_string(p.epochs) +
          "  Alpha: " + Num(lr) + "  Progress: " + Num(100.0 * progress, 2) +
          "%  Words/sec/thread: " + Num(wst, 0) + " #####");
      if (!early_stopping || validation_path.empty()) return;
      auto accuracy = Accuracy(ft, validation_path);
      if (!accuracy.ok()) {
        callback_error = accuracy.status();
        ft.abort();
        return;
      }
      log("Epoch " + std::to_string(epoch) + " validation accuracy: " + Num(accuracy->second));
      if (accuracy->second > best_accuracy) {
        best_accuracy = accuracy->second;
        best_epoch = epoch;
      } else if (epoch >= p.min_epochs && epoch - best_epoch >= p.patience) {
        stopped_at = epoch;
        ft.abort();
      }
    } catch (...) {
      callback_error = Status::Internal("BlazingText progress callback failed");
      ft.abort();
    }
  };
  try {
    ft.train(args, callback);
  } catch (const fasttext::FastText::AbortError&) {
    if (!callback_error.ok()) return callback_error;
    log("Early stopping at epoch " + std::to_string(stopped_at) +
        ": validation accuracy has not "
        "improved for " +
        std::to_string(p.patience) + " epochs (best " + Num(best_accuracy) + " at epoch " +
        std::to_string(best_epoch) + ")");
  } catch (const fasttext::DenseMatrix::EncounteredNaNError&) {
    return ClientError("Training diverged (NaN weights): lower learning_rate");
  } catch (const std::invalid_argument& e) {
    // fastText's own input checks, e.g. "Empty vocabulary. Try a smaller -minCount value."
    return ClientError(std::string("BlazingText cannot train on this data: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Status::Internal(
        "out of memory training BlazingText (vector_dim x (words + buckets) "
        "floats must fit)");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("BlazingText training failed: ") + e.what());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log("Training finished. Words: " + std::to_string(ft.nwords()) +
      (p.supervised ? ", labels: " + std::to_string(ft.nlabels()) : std::string()) +
      ", tokens per epoch: " + std::to_string(ft.ntokens()) + ", loss: " + Num(ft.loss()));
  log("Average throughput in Million words/sec: " +
      Num(seconds > 0 ? static_cast<double>(ft.token_count()) / seconds / 1e6 : 0.0) +
      "; total training time in seconds: " + Num(seconds, 2));

  std::error_code ec;
  fs::create_directories(input.model_dir, ec);
  try {
    if (p.supervised) {
      NIMBUS_ASSIGN_OR_RETURN(auto train_acc, Accuracy(ft, train_path));
      log("#train_accuracy: " + Num(train_acc.second));
      log("Number of train examples: " + std::to_string(train_acc.first));
      if (!validation_path.empty()) {
        NIMBUS_ASSIGN_OR_RETURN(auto val_acc, Accuracy(ft, validation_path));
        log("#validation_accuracy: " + Num(val_acc.second));
        log("Number of validation examples: " + std::to_string(val_acc.first));
        if (input.metrics) input.metrics->Report("validation:accuracy", val_acc.second);
      }
      ft.saveModel((fs::path(input.model_dir) / kSupervisedModel).string());
    } else {
      ft.saveModel((fs::path(input.model_dir) / kVectorsBin).string());
      ft.saveVectors((fs::path(input.model_dir) / kVectorsTxt).string());
      if (p.evaluation) {
        log("WS-353 word-similarity evaluation skipped: the data set is not installed, so "
            "train:mean_rho is not reported");
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("writing the BlazingText model: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace

struct BlazingTextModel::Impl {
  fasttext::FastText ft;
  bool supervised = false;
};

BlazingTextModel::BlazingTextModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlazingTextModel::~BlazingTextModel() = default;

bool BlazingTextModel::supervised() const { return impl_->supervised; }
int BlazingTextModel::dimension() const { return impl_->ft.getDimension(); }

Result<std::unique_ptr<BlazingTextModel>> BlazingTextModel::Load(const std::string& model_dir) {
  fs::path path = fs::path(model_dir) / kSupervisedModel;
  std::error_code ec;
  if (!fs::exists(path, ec)) path = fs::path(model_dir) / kVectorsBin;
  if (!fs::exists(path, ec)) {
    return ClientError("BlazingText model directory " + model_dir + " holds neither " +
                       kSupervisedModel + " nor " + kVectorsBin);
  }
  auto impl = std::make_unique<Impl>();
  try {
    impl->ft.loadModel(path.string());
  } catch (const std::exception& e) {
    return ClientError("Cannot load BlazingText model " + path.string() + ": " + e.what());
  }
  impl->supervised = impl->ft.getArgs().model == fasttext::model_name::sup;
  return std::unique_ptr<BlazingTextModel>(new BlazingTextModel(std::move(impl)));
}

Result<std::vector<Value>> BlazingTextModel::PredictText(const std::vector<std::string>& instances,
                                                         int k) const {
  if (k < 1) return ClientError("k must be a positive integer, got " + std::to_string(k));
  std::vector<Value> out;
  out.reserve(instances.size());
  try {
    if (impl_->supervised) {
      std::vector<std::pair<fasttext::real, std::string>> predictions;
      for (const auto& sentence : instances) {
        // fastText reads one line per prediction: a newline inside would split the sentence.
        std::string line = sentence;
        std::replace(line.begin(), line.end(), '\n', ' ');
        std::istringstream in(line + "\n");
        predictions.clear();
        impl_->ft.predictLine(in, predictions, k, 0.0);
        Value labels = Value::MakeList();
        Value probs = Value::MakeList();
        for (const auto& [prob, label] : predictions) {
          labels.Append(label);
          probs.Append(static_cast<double>(prob));
        }
        out.push_back(Value::Object({{"label", std::move(labels)}, {"prob", std::move(probs)}}));
      }
    } else {
      fasttext::Vector vec(impl_->ft.getDimension());
      for (const auto& word : instances) {
        impl_->ft.getWordVector(vec, word);
        Value values = Value::MakeList();
        for (int64_t i = 0; i < vec.size(); ++i) values.Append(static_cast<double>(vec[i]));
        out.push_back(Value::Object({{"word", word}, {"vector", std::move(values)}}));
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("BlazingText prediction failed: ") + e.what());
  }
  return out;
}

Result<std::vector<Value>> BlazingTextModel::PredictRequest(const Value& request) const {
  auto read_k = [](const Value* v, int* k) -> Status {
    if (v == nullptr) return Status::Ok();
    if (!v->is_number() || v->AsDouble() < 1 || std::floor(v->AsDouble()) != v->AsDouble()) {
      return ClientError("'k' must be a positive integer");
    }
    *k = static_cast<int>(v->AsInt());
    return Status::Ok();
  };
  auto text_of = [](const Value& v, std::string* text) -> Status {
    if (!v.is_string()) return ClientError("BlazingText instances must be strings");
    *text = v.AsString();
    return Status::Ok();
  };
  if (request.is_list()) {
    // application/jsonlines: each record may carry its own k.
    std::vector<Value> out;
    for (const auto& record : request.list()) {
      NIMBUS_ASSIGN_OR_RETURN(std::vector<Value> one, PredictRequest(record));
      for (auto& v : one) out.push_back(std::move(v));
    }
    return out;
  }
  if (!request.is_map()) {
    return ClientError("A BlazingText request is {\"instances\": [...]} or {\"source\": \"...\"}");
  }
  int k = 1;
  if (const Value* instances = request.Find("instances")) {
    if (!instances->is_list()) return ClientError("'instances' must be a list of strings");
    if (const Value* config = request.Find("configuration")) {
      NIMBUS_RETURN_IF_ERROR(read_k(config->Find("k"), &k));
    }
    std::vector<std::string> texts;
    for (const auto& v : instances->list()) {
      std::string text;
      NIMBUS_RETURN_IF_ERROR(text_of(v, &text));
      texts.push_back(std::move(text));
    }
    return PredictText(texts, k);
  }
  if (const Value* source = request.Find("source")) {
    NIMBUS_RETURN_IF_ERROR(read_k(request.Find("k"), &k));
    std::string text;
    NIMBUS_RETURN_IF_ERROR(text_of(*source, &text));
    return PredictText({text}, k);
  }
  return ClientError("A BlazingText request is {\"instances\": [...]} or {\"source\": \"...\"}");
}

Result<std::vector<Value>> BlazingTextModel::Predict(const Dataset&) {
  return ClientError(
      "BlazingText models take text: send application/json {\"instances\": [\"...\"]} or "
      "application/jsonlines {\"source\": \"...\"}");
}

std::unique_ptr<Algorithm> MakeBlazingTextAlgorithm() {
  return std::make_unique<BlazingTextAlgorithm>();
}

void RegisterBlazingTextAlgorithm() {
  RegisterAlgorithm(
      AlgorithmInfo{"blazingtext",
                    {"blazingtext"},
                    {"text/plain"},
                    [] { return MakeBlazingTextAlgorithm(); },
                    [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
                      NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<BlazingTextModel> model,
                                              BlazingTextModel::Load(model_dir));
                      return std::unique_ptr<Model>(std::move(model));
                    }});
}

}  // namespace nimbus::ml
