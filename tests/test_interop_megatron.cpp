// Interoperability with Megatron-LM's indexed datasets, checked against megatron-core itself when it is
// installed (pip install megatron-core torch; not needed by CI, where the test skips): Megatron's reader
// reads what our writer wrote, and our reader reads what Megatron's builder wrote, token for token.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "data/indexed_dataset.h"
#include "test_util.h"

namespace prores::data {
namespace {

// Sequences, documents and the sum of every token of a dataset read by our reader.
std::string summary(const IndexedDataset& ds) {
  int64_t total = 0;
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < ds.num_sequences(); ++i) {
    tokens.resize(static_cast<size_t>(ds.sequence_length(i)));
    ds.read(i, 0, static_cast<int64_t>(tokens.size()), tokens.data());
    for (int32_t t : tokens) total += t;
  }
  std::ostringstream os;
  os << ds.num_sequences() << " " << ds.document_index().size() - 1 << " " << total;
  return os.str();
}

TEST(MegatronInterop, ReadersAndWritersAgreeBothWays) {
  if (std::system((test::python() + " -c 'import megatron.core.datasets.indexed_dataset' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << test::python() << " has no megatron-core (pip install megatron-core torch packaging)";
  const test::TempDir dir("prores_megatron");
  {
    IndexedDatasetWriter writer(dir.file("ours"), TokenDType::U16);
    std::mt19937_64 rng(3);
    std::vector<int32_t> doc;
    for (int d = 0; d < 40; ++d) {
      doc.resize(1 + rng() % 70);
      for (auto& t : doc) t = static_cast<int32_t>(rng() % 4096);
      writer.add_sequence(doc.data(), static_cast<int64_t>(doc.size()));
      writer.end_document();
    }
    writer.finish();
  }
  const std::string out = dir.file("megatron.txt");
  const std::string cmd = test::python() + " " PRORES_SOURCE_DIR "/tests/megatron_interop_check.py " + dir.file("ours") + " " +
                          dir.file("theirs") + " > " + out + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream lines(out);
  std::string ours_line, theirs_line;
  std::getline(lines, ours_line);
  std::getline(lines, theirs_line);
  EXPECT_EQ(ours_line, "ours " + summary(IndexedDataset::open(dir.file("ours"))));
  EXPECT_EQ(theirs_line, "theirs " + summary(IndexedDataset::open(dir.file("theirs"), 4096)));
}

}  // namespace
}  // namespace prores::data
