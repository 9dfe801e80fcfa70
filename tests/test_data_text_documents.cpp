// Document reading for preprocessing: the JSON-lines string extractor (escapes, surrogate pairs, nested
// values skipped, malformed lines rejected with a reason) and DocumentReader over plain text (blank-line
// blocks, CRLF, one document per file) and JSON lines (blank lines, empty documents, errors naming the
// file and line), in input order and in batches.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/text_documents.h"
#include "test_util.h"

namespace prores::data {
namespace {

using test::TempDir;

std::string field(const std::string& json, const std::string& key = "text") {
  std::string value, error;
  EXPECT_TRUE(json_string_field(json, key, &value, &error)) << json << ": " << error;
  return value;
}

std::string field_error(const std::string& json, const std::string& key = "text") {
  std::string value, error;
  EXPECT_FALSE(json_string_field(json, key, &value, &error)) << json;
  return error;
}

std::vector<std::string> read_all(DocumentReader& reader, size_t batch_bytes = 1 << 20) {
  std::vector<std::string> all, batch;
  while (reader.next(batch, batch_bytes)) all.insert(all.end(), batch.begin(), batch.end());
  return all;
}

TEST(JsonStringField, DecodesEscapes) {
  EXPECT_EQ(field(R"({"text": "hello"})"), "hello");
  EXPECT_EQ(field(R"({"text":"a\nb\t\"q\" \\ \/ \b\f\r"})"), "a\nb\t\"q\" \\ / \b\f\r");
  EXPECT_EQ(field(R"({"text": "\u00e9\u65e5 \u0041"})"), "\xC3\xA9\xE6\x97\xA5 A");
  EXPECT_EQ(field(R"({"text": "\ud83d\ude00!"})"), "\xF0\x9F\x98\x80!");  // U+1F600 from a surrogate pair
  EXPECT_EQ(field(R"({"text": "\u0000x"})"), std::string("\0x", 2));
  EXPECT_EQ(field("{\"text\": \"gr\xC3\xBC\xC3\x9F""e\"}"), "gr\xC3\xBC\xC3\x9F""e");  // raw UTF-8 kept
  EXPECT_EQ(field(R"({"text": ""})"), "");
}

TEST(JsonStringField, SkipsOtherValues) {
  EXPECT_EQ(field(R"(  {"id": 12, "meta": {"text": "nested", "a": [1, -2.5e3, true, false, null, {"b": []}]},
                       "text": "top", "tail": "x\"y"}  )"),
            "top");
  EXPECT_EQ(field(R"({"text": "first", "text": "last"})"), "last");
  EXPECT_EQ(field(R"({"t\u0065xt": "escaped key"})"), "escaped key");
  EXPECT_EQ(field(R"({"content": "c"})", "content"), "c");
}

TEST(JsonStringField, RejectsMalformedLines) {
  EXPECT_NE(field_error(R"({"id": 1})").find("no \"text\" key"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": 5})").find("not a string"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": "abc)").find("unterminated"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": "\ud83d"})").find("unpaired high surrogate"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": "\ude00"})").find("unpaired low surrogate"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": "\x"})").find("invalid escape"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": "\u12G4"})").find("\\u escape"), std::string::npos);
  EXPECT_NE(field_error("{\"text\": \"a\tb\"}").find("control character"), std::string::npos);
  EXPECT_NE(field_error(R"({"text": "a"} extra)").find("after the JSON value"), std::string::npos);
  EXPECT_NE(field_error(R"(["text", "a"])").find("expected '{'"), std::string::npos);
  EXPECT_NE(field_error(R"({"a": tru, "text": "x"})").find("invalid literal"), std::string::npos);
  EXPECT_NE(field_error(R"({"a": 01, "text": "x"})").find("expected"), std::string::npos);
  EXPECT_NE(field_error(R"({"a": [1, 2, "text": "x"})").find("expected"), std::string::npos);
  EXPECT_FALSE(field_error("").empty());
  EXPECT_NE(field_error("{\"a\": " + std::string(1000, '[') + std::string(1000, ']') + "}").find("nesting"),
            std::string::npos);
}

TEST(DocumentReader, PlainTextBlocksAndFiles) {
  TempDir dir;
  const std::string a = dir.write("a.txt", "\n\nfirst line\nsecond line\n\n  \nthird\r\nfourth\r\n\r\nlast");
  const std::string b = dir.write("b.txt", "one\n\ntwo\n");
  DocumentReader reader({a, b}, {});
  EXPECT_EQ(read_all(reader), (std::vector<std::string>{"first line\nsecond line", "third\nfourth", "last", "one",
                                                        "two"}));
  EXPECT_EQ(reader.bytes_read(), std::filesystem::file_size(a) + std::filesystem::file_size(b));

  DocumentFormat per_file;
  per_file.document_per_file = true;
  const std::string empty = dir.write("empty.txt", "");
  DocumentReader whole({a, empty, b}, per_file);
  const std::vector<std::string> docs = read_all(whole);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1], "one\n\ntwo\n");
  EXPECT_EQ(whole.skipped(), 1);
}

TEST(DocumentReader, JsonLinesInOrderAndInBatches) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < 100; ++i) content += "{\"text\": \"doc " + std::to_string(i) + "\"}\n" + (i % 7 ? "" : "\n");
  content += "{\"text\": \"\"}\n";  // an empty document: skipped
  const std::string j = dir.write("d.jsonl", content);
  const std::string t = dir.write("t.txt", "plain\n");
  DocumentReader reader({j, t}, {});
  std::vector<std::string> batch, all;
  int batches = 0;
  while (reader.next(batch, 30)) {
    EXPECT_FALSE(batch.empty());
    all.insert(all.end(), batch.begin(), batch.end());
    ++batches;
  }
  ASSERT_EQ(all.size(), 101u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], "doc " + std::to_string(i));
  EXPECT_EQ(all.back(), "plain");
  EXPECT_GT(batches, 10);
  EXPECT_EQ(reader.skipped(), 1);
}

TEST(DocumentReader, ErrorsNameFileAndLine) {
  TempDir dir;
  const std::string j = dir.write("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"broken}\n");
  DocumentReader reader({j}, {});
  try {
    read_all(reader);
    ADD_FAILURE() << "malformed line accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.jsonl' line 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unterminated string"), std::string::npos) << msg;
  }
  const std::string key = dir.write("key.json", "{\"body\": \"x\"}\n");
  DocumentReader missing_key({key}, {});
  EXPECT_THROW(read_all(missing_key), Error);
  try {
    DocumentReader({dir.write("ok.txt", "x"), "/nonexistent/input.txt"}, {});
    ADD_FAILURE() << "missing input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/input.txt"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace prores::data
