#include "ml/blazingtext/blazingtext.h"

#include <fasttext/fasttext.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;

class RecordingMetrics : public MetricsReporter {
 public:
  void Report(const std::string& name, double value) override { values[name] = value; }
  std::map<std::string, double> values;
};

const std::vector<std::vector<std::string>> kTopics = {
    {"ball", "goal", "team", "match", "score", "player", "coach", "league", "stadium", "referee"},
    {"oven", "recipe", "flour", "sugar", "bake", "pan", "knife", "salt", "butter", "dough"},
    {"code", "compile", "server", "kernel", "cpu", "bug", "linux", "network", "thread", "cache"},
};
const std::vector<std::string> kLabels = {"__label__sports", "__label__cooking", "__label__tech"};
const std::vector<std::string> kFiller = {"the", "a", "and", "is", "was", "today", "very", "of"};

// A sentence of topic `t`: 3 to 5 topic words among fillers, shuffled.
std::string Sentence(int t, std::mt19937& rng) {
  std::uniform_int_distribution<int> count(3, 5);
  std::uniform_int_distribution<size_t> topic_word(0, kTopics[t].size() - 1);
  std::uniform_int_distribution<size_t> filler(0, kFiller.size() - 1);
  std::vector<std::string> words;
  int n = count(rng);
  for (int i = 0; i < n; ++i) words.push_back(kTopics[t][topic_word(rng)]);
  for (int i = 0; i < 4; ++i) words.push_back(kFiller[filler(rng)]);
  std::shuffle(words.begin(), words.end(), rng);
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

class BlazingTextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("bt_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a labelled corpus of n lines (topics in turn) to <dir>/<channel>/<file>.
  Channel Corpus(const std::string& channel, int n, uint32_t seed, bool labelled = true,
                 const std::string& file = "data.txt") {
    fs::create_directories(dir_ / channel);
    std::ofstream out(dir_ / channel / file);
    std::mt19937 rng(seed);
    for (int i = 0; i < n; ++i) {
      int t = i % 3;
      out << (labelled ? kLabels[t] + " " : "") << Sentence(t, rng) << "\n";
    }
    Channel c;
    c.name = channel;
    c.dir = (dir_ / channel).string();
    return c;
  }

  TrainingInput Input(Hyperparameters hp, std::vector<Channel> channels) {
    TrainingInput input;
    input.hyperparameters = std::move(hp);
    for (auto& c : channels) input.channels[c.name] = c;
    input.model_dir = (dir_ / "model").string();
    input.num_threads = 1;  // fastText is deterministic with one thread
    input.metrics = &metrics_;
    input.log = [this](const std::string& line) { log_ += line + "\n"; };
    return input;
  }

  static Hyperparameters Supervised(Hyperparameters extra = {}) {
    Hyperparameters hp = {{"mode", "supervised"}, {"epochs", "10"},     {"learning_rate", "0.5"},
                          {"vector_dim", "16"},   {"buckets", "20000"}, {"min_count", "1"}};
    for (auto& [k, v] : extra) hp[k] = v;
    return hp;
  }

  static Hyperparameters Word2Vec(const std::string& mode, Hyperparameters extra = {}) {
    Hyperparameters hp = {{"mode", mode},
                          {"epochs", "10"},
                          {"vector_dim", "16"},
                          {"min_count", "1"},
                          {"window_size", "3"},
                          {"sampling_threshold", "1"},
                          {"learning_rate", "0.05"},
                          {"evaluation", "False"}};
    for (auto& [k, v] : extra) hp[k] = v;
    return hp;
  }

  fs::path dir_;
  RecordingMetrics metrics_;
  std::string log_;
};

TEST_F(BlazingTextTest, SupervisedLearnsSeparableCorpus) {
  // The train channel holds one file per topic (the first without a final newline): the files
  // are concatenated for fastText.
  fs::create_directories(dir_ / "train");
  std::mt19937 file_rng(1);
  for (int t = 0; t < 3; ++t) {
    std::ofstream out(dir_ / "train" / ("part-" + std::to_string(t)));
    for (int i = 0; i < 100; ++i) {
      out << kLabels[t] << " " << Sentence(t, file_rng) << (t == 0 && i == 99 ? "" : "\n");
    }
  }
  Channel train{"train", (dir_ / "train").string(), "text/plain", false};
  TrainingInput input = Input(Supervised(), {train, Corpus("validation", 90, 2)});
  Status s = MakeBlazingTextAlgorithm()->Train(input);
  ASSERT_TRUE(s.ok()) << s.message() << "\n" << log_;
  ASSERT_TRUE(metrics_.values.count("validation:accuracy"));
  EXPECT_GE(metrics_.values["validation:accuracy"], 0.9);
  EXPECT_NE(log_.find("##### Epoch 1/10"), std::string::npos) << log_;
  EXPECT_NE(log_.find("#train_accuracy:"), std::string::npos) << log_;
  EXPECT_NE(log_.find("#validation_accuracy:"), std::string::npos) << log_;
  EXPECT_NE(log_.find("labels: 3"), std::string::npos) << log_;
  EXPECT_NE(log_.find("Number of train examples: 300"), std::string::npos) << log_;
  ASSERT_TRUE(fs::exists(dir_ / "model" / "model.bin"));

  auto model = BlazingTextModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_TRUE((*model)->supervised());
  EXPECT_EQ((*model)->dimension(), 16);
  std::mt19937 rng(3);
  std::vector<std::string> sentences;
  for (int i = 0; i < 60; ++i) sentences.push_back(Sentence(i % 3, rng));
  auto out = (*model)->PredictText(sentences);
  ASSERT_TRUE(out.ok());
  int correct = 0;
  for (size_t i = 0; i < out->size(); ++i) {
    const auto& labels = (*out)[i].Find("label")->list();
    const auto& probs = (*out)[i].Find("prob")->list();
    ASSERT_EQ(labels.size(), 1u);
    ASSERT_EQ(probs.size(), 1u);
    EXPECT_GT(probs[0].AsDouble(), 0.0);
    EXPECT_LE(probs[0].AsDouble(), 1.0 + 1e-6);
    if (labels[0].AsString() == kLabels[i % 3]) ++correct;
  }
  EXPECT_GE(correct, 54);  // ≥ 0.9
}

TEST_F(BlazingTextTest, RegisteredAlgorithmTrainsLoadableModelThatAnswersRequests) {
  RegisterBlazingTextAlgorithm();
  const AlgorithmInfo* info =
      FindAlgorithmForImage("811284229777.dkr.ecr.us-east-1.amazonaws.com/blazingtext:1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "blazingtext");
  EXPECT_EQ(info->training_content_types.front(), "text/plain");
  TrainingInput input = Input(Supervised({{"word_ngrams", "1"}}), {Corpus("train", 300, 4)});
  ASSERT_TRUE(info->make()->Train(input).ok()) << log_;
  // No validation channel: no validation metric.
  EXPECT_EQ(metrics_.values.count("validation:accuracy"), 0u);

  // fastText itself reads model.bin, as SageMaker documents for BlazingText binaries.
  fasttext::FastText ft;
  ft.loadModel((dir_ / "model" / "model.bin").string());
  std::istringstream line("oven flour sugar the bake\n");
  std::vector<std::pair<fasttext::real, std::string>> predictions;
  ASSERT_TRUE(ft.predictLine(line, predictions, 1, 0.0));
  ASSERT_EQ(predictions.size(), 1u);
  EXPECT_EQ(predictions[0].second, "__label__cooking");

  auto loaded = info->load(input.model_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto* model = dynamic_cast<BlazingTextModel*>(loaded->get());
  ASSERT_NE(model, nullptr);
  Value request = Value::Object({{"instances", Value(Value::List{Value("goal team match the"),
                                                                 Value("kernel linux cpu bug")})},
                                 {"configuration", Value::Object({{"k", 2}})}});
  auto out = model->PredictRequest(request);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].Find("label")->list().size(), 2u);
  EXPECT_EQ((*out)[0].Find("label")->list()[0].AsString(), "__label__sports");
  EXPECT_EQ((*out)[1].Find("label")->list()[0].AsString(), "__label__tech");
  const auto& probs = (*out)[0].Find("prob")->list();
  EXPECT_GE(probs[0].AsDouble(), probs[1].AsDouble());

  // JSON Lines records, each with its own k.
  Value lines = Value(Value::List{Value::Object({{"source", "flour butter dough"}}),
                                  Value::Object({{"source", "referee stadium"}, {"k", 3}})});
  out = model->PredictRequest(lines);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].Find("label")->list()[0].AsString(), "__label__cooking");
  EXPECT_EQ((*out)[1].Find("label")->list().size(), 3u);

  for (const Value& bad :
       {Value::Object({{"instances", Value(Value::List{Value(3)})}}),
        Value::Object({{"instances", Value(Value::List{Value("x")})},
                       {"configuration", Value::Object({{"k", 0}})}}),
        Value::Object({{"source", "x"}, {"k", 1.5}}), Value::Object({{"text", "x"}}), Value(7)}) {
    auto r = model->PredictRequest(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "ClientError");
  }
  Dataset numbers;
  auto numeric = model->Predict(numbers);
  ASSERT_FALSE(numeric.ok());
  EXPECT_EQ(numeric.status().code(), "ClientError");
}

TEST_F(BlazingTextTest, EarlyStoppingStopsWhenValidationStalls) {
  TrainingInput input = Input(
      Supervised(
          {{"epochs", "60"}, {"early_stopping", "True"}, {"patience", "2"}, {"min_epochs", "3"}}),
      {Corpus("train", 300, 7), Corpus("validation", 60, 8)});
  ASSERT_TRUE(MakeBlazingTextAlgorithm()->Train(input).ok()) << log_;
  EXPECT_NE(log_.find("Early stopping at epoch"), std::string::npos) << log_;
  EXPECT_EQ(log_.find("##### Epoch 59/60"), std::string::npos) << log_;
  EXPECT_GE(metrics_.values["validation:accuracy"], 0.9);
  EXPECT_TRUE(fs::exists(dir_ / "model" / "model.bin"));
}

// Two disjoint topics: words of a topic only ever appear together.
Channel TwoTopicCorpus(const fs::path& dir, int n) {
  fs::create_directories(dir / "train");
  std::ofstream out(dir / "train" / "corpus.txt");
  std::mt19937 rng(9);
  std::uniform_int_distribution<size_t> pick(0, 9);
  for (int i = 0; i < n; ++i) {
    const auto& topic = kTopics[i % 2];
    for (int j = 0; j < 8; ++j) out << (j ? " " : "") << topic[pick(rng)];
    out << "\n";
  }
  return Channel{"train", (dir / "train").string(), "", false};
}

double Cosine(const Value& a, const Value& b) {
  double dot = 0, na = 0, nb = 0;
  const auto& x = a.Find("vector")->list();
  const auto& y = b.Find("vector")->list();
  for (size_t i = 0; i < x.size(); ++i) {
    dot += x[i].AsDouble() * y[i].AsDouble();
    na += x[i].AsDouble() * x[i].AsDouble();
    nb += y[i].AsDouble() * y[i].AsDouble();
  }
  return dot / std::sqrt(na * nb);
}

TEST_F(BlazingTextTest, SkipgramPutsCooccurringWordsCloser) {
  TrainingInput input = Input(Word2Vec("skipgram"), {TwoTopicCorpus(dir_, 700)});
  ASSERT_TRUE(MakeBlazingTextAlgorithm()->Train(input).ok()) << log_;
  EXPECT_EQ(metrics_.values.count("train:mean_rho"), 0u);  // no WS-353 data: not reported
  ASSERT_TRUE(fs::exists(dir_ / "model" / "vectors.bin"));
  ASSERT_TRUE(fs::exists(dir_ / "model" / "vectors.txt"));
  std::ifstream txt(dir_ / "model" / "vectors.txt");
  int64_t words = 0, dim = 0;
  txt >> words >> dim;
  EXPECT_EQ(words, 21);  // the 20 words and fastText's end-of-sentence token </s>
  EXPECT_EQ(dim, 16);

  auto model = BlazingTextModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_FALSE((*model)->supervised());
  std::vector<std::string> vocab = kTopics[0];
  vocab.insert(vocab.end(), kTopics[1].begin(), kTopics[1].end());
  auto out = (*model)->PredictText(vocab);
  ASSERT_TRUE(out.ok());
  double same = 0, cross = 0;
  int n_same = 0, n_cross = 0;
  for (size_t i = 0; i < vocab.size(); ++i) {
    for (size_t j = i + 1; j < vocab.size(); ++j) {
      double c = Cosine((*out)[i], (*out)[j]);
      if ((i < 10) == (j < 10)) {
        same += c;
        ++n_same;
      } else {
        cross += c;
        ++n_cross;
      }
    }
  }
  same /= n_same;
  cross /= n_cross;
  EXPECT_GT(same, cross + 0.3) << "same " << same << " cross " << cross;

  // An unknown word without subwords is a zero vector, as SageMaker documents.
  auto unknown = (*model)->PredictText({"zzzz"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ((*unknown)[0].GetString("word"), "zzzz");
  for (const auto& v : (*unknown)[0].Find("vector")->list()) EXPECT_EQ(v.AsDouble(), 0.0);
}

TEST_F(BlazingTextTest, CbowWithSubwordsGivesVectorsToUnknownWords) {
  TrainingInput input =
      Input(Word2Vec("cbow", {{"subwords", "True"}, {"buckets", "5000"}, {"epochs", "3"}}),
            {TwoTopicCorpus(dir_, 300)});
  ASSERT_TRUE(MakeBlazingTextAlgorithm()->Train(input).ok()) << log_;
  auto model = BlazingTextModel::Load(input.model_dir);
  ASSERT_TRUE(model.ok());
  auto out = (*model)->PredictText({"kernels"});
  ASSERT_TRUE(out.ok());
  double norm = 0;
  for (const auto& v : (*out)[0].Find("vector")->list()) norm += v.AsDouble() * v.AsDouble();
  EXPECT_GT(norm, 0.0);
}

TEST_F(BlazingTextTest, BatchSkipgramTrains) {
  TrainingInput input =
      Input(Word2Vec("batch_skipgram", {{"batch_size", "16"}, {"evaluation", "True"}}),
            {TwoTopicCorpus(dir_, 300)});
  ASSERT_TRUE(MakeBlazingTextAlgorithm()->Train(input).ok()) << log_;
  EXPECT_NE(log_.find("train:mean_rho is not reported"), std::string::npos) << log_;
  EXPECT_TRUE(fs::exists(dir_ / "model" / "vectors.bin"));
}

TEST_F(BlazingTextTest, RejectsBadHyperparameters) {
  Channel train = Corpus("train", 30, 10);
  struct Case {
    Hyperparameters hp;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{}, "'mode' is required"},
      {{{"mode", "fasttext"}}, "must be one of: supervised, skipgram, cbow, batch_skipgram"},
      {{{"mode", "supervised"}, {"epochs", "0"}}, "'epochs' = '0' is out of range"},
      {{{"mode", "supervised"}, {"learning_rate", "0"}}, "'learning_rate' = '0' is out of range"},
      {{{"mode", "supervised"}, {"learning_rate", "fast"}}, "is not a number"},
      {{{"mode", "supervised"}, {"min_count", "-1"}}, "'min_count' = '-1' is out of range"},
      {{{"mode", "supervised"}, {"vector_dim", "0"}}, "'vector_dim' = '0' is out of range"},
      {{{"mode", "supervised"}, {"word_ngrams", "0"}}, "'word_ngrams' = '0' is out of range"},
      {{{"mode", "supervised"}, {"buckets", "0"}}, "'buckets' = '0' is out of range"},
      {{{"mode", "supervised"}, {"patience", "0"}}, "'patience' = '0' is out of range"},
      {{{"mode", "supervised"}, {"early_stopping", "maybe"}}, "must be true or false"},
      {{{"mode", "supervised"}, {"window_size", "5"}}, "'window_size' was unexpected"},
      {{{"mode", "skipgram"}, {"word_ngrams", "2"}}, "'word_ngrams' was unexpected"},
      {{{"mode", "skipgram"}, {"min_char", "5"}, {"max_char", "4"}}, "must not exceed max_char"},
      {{{"mode", "cbow"}, {"sampling_threshold", "2"}},
       "'sampling_threshold' = '2' is out of range"},
      {{{"mode", "cbow"}, {"negative_samples", "0"}}, "'negative_samples' = '0' is out of range"},
      {{{"mode", "batch_skipgram"}, {"batch_size", "-2"}}, "'batch_size' = '-2' is out of range"},
  };
  for (const auto& c : cases) {
    Status s = MakeBlazingTextAlgorithm()->Train(Input(c.hp, {train}));
    ASSERT_FALSE(s.ok()) << c.expected;
    EXPECT_EQ(s.code(), "ClientError") << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos) << s.message();
  }
  EXPECT_FALSE(fs::exists(dir_ / "model" / "model.bin"));
}

TEST_F(BlazingTextTest, RejectsBadChannelsAndData) {
  auto train_error = [&](Hyperparameters hp, std::vector<Channel> channels) {
    return MakeBlazingTextAlgorithm()->Train(Input(std::move(hp), std::move(channels)));
  };
  Channel labelled = Corpus("train", 30, 11);
  Status s = train_error(Supervised(), {});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("'train' channel"), std::string::npos);

  s = train_error(Supervised(), {labelled, Corpus("test", 10, 12)});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("not 'test'"), std::string::npos);

  s = train_error(Word2Vec("skipgram"), {labelled, Corpus("validation", 10, 13)});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("only the 'train' channel"), std::string::npos);

  Channel csv = labelled;
  csv.content_type = "text/csv";
  s = train_error(Supervised(), {csv});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("'text/csv'"), std::string::npos);

  Channel pipe = labelled;
  pipe.pipe = true;
  s = train_error(Supervised(), {pipe});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("Pipe mode"), std::string::npos);

  fs::create_directories(dir_ / "empty");
  s = train_error(Supervised(), {Channel{"train", (dir_ / "empty").string(), "", false}});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("holds no files"), std::string::npos);

  // Unlabelled text cannot train a classifier (fastText would build an empty output layer).
  Channel unlabelled = Corpus("plain", 30, 14, false);
  unlabelled.name = "train";
  s = train_error(Supervised(), {unlabelled});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("__label__"), std::string::npos);

  // fastText's own check: every word below min_count leaves an empty vocabulary.
  s = train_error(Word2Vec("skipgram", {{"min_count", "100000"}}), {unlabelled});
  EXPECT_EQ(s.code(), "ClientError");
  EXPECT_NE(s.message().find("Empty vocabulary"), std::string::npos) << s.message();
}

TEST_F(BlazingTextTest, LoadRejectsMissingOrCorruptModels) {
  auto missing = BlazingTextModel::Load((dir_ / "nothing").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "ClientError");

  fs::create_directories(dir_ / "corrupt");
  std::ofstream(dir_ / "corrupt" / "model.bin") << "not a fastText model";
  auto corrupt = BlazingTextModel::Load((dir_ / "corrupt").string());
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().code(), "ClientError");
}

}  // namespace
}  // namespace nimbus::ml
