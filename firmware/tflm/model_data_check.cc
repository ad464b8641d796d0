// Host-side check of the generated model-data unit, built and run by edgecompress with the
// host compiler: the C array must be byte-identical to the .tflite, 16-byte aligned, and
// agree with the sizes in model_data.h. Needs only a C++ standard library, not TFLM.
//
//   g++ -std=c++17 model_data_check.cc model_data.cc -o model_data_check
//   ./model_data_check model_copy.tflite    # writes the array back out for comparison
#include <cstdint>
#include <cstdio>

#include "model_data.h"

int main(int argc, char** argv) {
  const bool aligned = reinterpret_cast<std::uintptr_t>(g_model_data) % 16 == 0;
  const bool identifier = g_model_data[4] == 'T' && g_model_data[5] == 'F' && g_model_data[6] == 'L' && g_model_data[7] == '3';
  int elements = 1;
  for (int i = 0; i < kInputDims; ++i) elements *= kInputShape[i];
  const bool input_shape = elements == kInputElements;
  const bool sample_label = kSampleLabel >= 0 && kSampleLabel < kClassCount;
  if (argc > 1) {
    std::FILE* out = std::fopen(argv[1], "wb");
    if (out == nullptr || std::fwrite(g_model_data, 1, kModelDataSize, out) != kModelDataSize) return 2;
    std::fclose(out);
  }
  std::printf("{\"bytes\": %u, \"aligned_16\": %s, \"tfl3_identifier\": %s, \"input_shape_matches\": %s, "
              "\"sample_label_valid\": %s, \"arena_bytes\": %d, \"op_count\": %d}\n",
              kModelDataSize, aligned ? "true" : "false", identifier ? "true" : "false",
              input_shape ? "true" : "false", sample_label ? "true" : "false", kTensorArenaSize, kOpCount);
  return aligned && identifier && input_shape && sample_label ? 0 : 1;
}
