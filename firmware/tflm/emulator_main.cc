// Evaluation harness for an emulated board (edgecompress --target qemu): runs the model in
// TFLite Micro on every evaluation sample the host provides and writes the raw outputs back.
//
// Host files, reached through semihosting in QEMU's working folder:
//   edgecompress_inputs.bin   N samples, each exactly the input tensor's bytes (already quantized)
//   edgecompress_outputs.bin  written: N x the output tensor's bytes, raw, as the model produced them
//   edgecompress_ticks.bin    written: N x uint32, SysTick ticks of each Invoke()
// Console lines (one fact each, parsed by edgecompress) start with "edgecompress: ".
// Time is counted in SysTick ticks under QEMU's -icount shift=0 and calibrated against a
// loop of known instruction count, so the figures are executed instructions, not seconds.
#include <stdint.h>
#include <string.h>

#include "model_data.h"
#include "op_resolver.h"
#include "semihosting.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef EDGECOMPRESS_MAX_EVENTS
#define EDGECOMPRESS_MAX_EVENTS 512
#endif
#ifndef EDGECOMPRESS_MAX_SAMPLES
#define EDGECOMPRESS_MAX_SAMPLES 0x7fffffff
#endif

// The tensor arena is a region of the linker script (.arena), so the arena can be resized by
// relinking alone while edgecompress measures it.
extern "C" uint8_t __edgecompress_arena_start[];
extern "C" uint8_t __edgecompress_arena_end[];
extern "C" uint32_t edgecompress_stack_peak_bytes(void);
extern "C" uint32_t edgecompress_stack_reserved_bytes(void);

namespace {

// TFLM's MicroProfiler keeps 4,096 events (about 80 KB of RAM); this one keeps what one
// inference of this model emits, and sums every operator over the whole evaluation set.
class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    if (count_ >= EDGECOMPRESS_MAX_EVENTS) {
      overflow_ = true;
      ++depth_;
      return EDGECOMPRESS_MAX_EVENTS;
    }
    tags_[count_] = tag;
    depth_of_[count_] = depth_++;
    start_[count_] = tflite::GetCurrentTimeTicks();
    return count_++;
  }
  void EndEvent(uint32_t handle) override {
    const uint32_t now = tflite::GetCurrentTimeTicks();
    --depth_;
    if (handle < EDGECOMPRESS_MAX_EVENTS) ticks_[handle] = now - start_[handle];
  }
  void Clear() { count_ = 0; depth_ = 0; }
  void Accumulate() {
    if (count_ > events_) events_ = count_;
    for (uint32_t i = 0; i < count_; ++i) totals_[i] += ticks_[i];
  }
  void Report(uint32_t samples) const {
    for (uint32_t i = 0; i < events_; ++i) {
      const uint64_t total = totals_[i];
      MicroPrintf("edgecompress: event index=%d depth=%d tag=%s ticks_total_hi=%u ticks_total_lo=%u samples=%u",
                  static_cast<int>(i), static_cast<int>(depth_of_[i]), tags_[i], static_cast<unsigned>(total >> 32),
                  static_cast<unsigned>(total & 0xffffffffu), static_cast<unsigned>(samples));
    }
    if (overflow_) MicroPrintf("edgecompress: events_overflow=1");
  }

 private:
  const char* tags_[EDGECOMPRESS_MAX_EVENTS] = {};
  uint8_t depth_of_[EDGECOMPRESS_MAX_EVENTS] = {};
  uint32_t start_[EDGECOMPRESS_MAX_EVENTS] = {};
  uint32_t ticks_[EDGECOMPRESS_MAX_EVENTS] = {};
  uint64_t totals_[EDGECOMPRESS_MAX_EVENTS] = {};
  uint32_t count_ = 0;
  uint32_t events_ = 0;
  uint32_t depth_ = 0;
  bool overflow_ = false;
};

OpProfiler g_profiler;

void Console(const char* text) { sh_print(text); }

// Exactly 2 instructions per iteration (SUBS, BNE): the calibration of ticks to instructions.
__attribute__((noinline)) void Spin(uint32_t iterations) {
  __asm volatile("1: subs %0, %0, #1\n\t bne 1b" : "+r"(iterations) : : "cc");
}

uint32_t TimeSpin(uint32_t iterations) {
  const uint32_t start = tflite::GetCurrentTimeTicks();
  Spin(iterations);
  return tflite::GetCurrentTimeTicks() - start;
}

[[noreturn]] void Fail(const char* why) {
  MicroPrintf("edgecompress: error=%s", why);
  sh_exit(0);
}

}  // namespace

extern "C" void edgecompress_on_fault(int exception) {
  MicroPrintf("edgecompress: error=fault exception=%d", exception);
  sh_exit(0);
}

int main(void) {
  RegisterDebugLogCallback(Console);
  (void)tflite::GetCurrentTimeTicks();  // start SysTick before anything is timed
  // Calibration: two loop lengths, so the call overhead cancels in the difference.
  constexpr uint32_t kShort = 250000, kLong = 1250000;
  const uint32_t short_ticks = TimeSpin(kShort);
  const uint32_t long_ticks = TimeSpin(kLong);
  MicroPrintf("edgecompress: calibration short_iterations=%u short_ticks=%u long_iterations=%u long_ticks=%u "
              "instructions_per_iteration=2 systick_hz=%u",
              static_cast<unsigned>(kShort), static_cast<unsigned>(short_ticks), static_cast<unsigned>(kLong),
              static_cast<unsigned>(long_ticks), static_cast<unsigned>(tflite::ticks_per_second()));

  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) Fail("schema_version");
  static EdgecompressOpResolver resolver;
  if (RegisterOps(resolver) != kTfLiteOk) Fail("register_ops");
  const size_t arena_size = static_cast<size_t>(__edgecompress_arena_end - __edgecompress_arena_start);
  static tflite::MicroInterpreter interpreter(model, resolver, __edgecompress_arena_start, arena_size, nullptr, &g_profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("edgecompress: arena_size=%d", static_cast<int>(arena_size));
    Fail("allocate_tensors");
  }
  TfLiteTensor* input = interpreter.input(0);
  TfLiteTensor* output = interpreter.output(0);
  MicroPrintf("edgecompress: setup model_bytes=%d arena_used=%d arena_size=%d input_bytes=%d output_bytes=%d ops=%d",
              static_cast<int>(kModelDataSize), static_cast<int>(interpreter.arena_used_bytes()),
              static_cast<int>(arena_size), static_cast<int>(input->bytes), static_cast<int>(output->bytes), kOpCount);

  const int inputs = sh_open("edgecompress_inputs.bin", 0);
  const int outputs = sh_open("edgecompress_outputs.bin", 1);
  const int ticks_file = sh_open("edgecompress_ticks.bin", 1);
  if (inputs < 0 || outputs < 0 || ticks_file < 0) Fail("open_files");
  const long length = sh_length(inputs);
  if (length < 0 || length % static_cast<long>(input->bytes) != 0) Fail("input_file_size");
  uint32_t samples = static_cast<uint32_t>(length / static_cast<long>(input->bytes));
  if (samples > EDGECOMPRESS_MAX_SAMPLES) samples = EDGECOMPRESS_MAX_SAMPLES;

  for (uint32_t i = 0; i < samples; ++i) {
    if (sh_read(inputs, input->data.raw, input->bytes) != 0) Fail("read_input");
    g_profiler.Clear();
    const uint32_t start = tflite::GetCurrentTimeTicks();
    const TfLiteStatus status = interpreter.Invoke();
    const uint32_t ticks = tflite::GetCurrentTimeTicks() - start;
    if (status != kTfLiteOk) {
      MicroPrintf("edgecompress: failed_sample=%u", static_cast<unsigned>(i));
      Fail("invoke");
    }
    g_profiler.Accumulate();
    if (sh_write(outputs, output->data.raw, output->bytes) != 0) Fail("write_output");
    if (sh_write(ticks_file, &ticks, sizeof(ticks)) != 0) Fail("write_ticks");
  }
  sh_close(inputs);
  sh_close(outputs);
  sh_close(ticks_file);
  g_profiler.Report(samples);
  MicroPrintf("edgecompress: done samples=%u arena_used=%d stack_peak=%u stack_reserved=%u",
              static_cast<unsigned>(samples), static_cast<int>(interpreter.arena_used_bytes()),
              static_cast<unsigned>(edgecompress_stack_peak_bytes()),
              static_cast<unsigned>(edgecompress_stack_reserved_bytes()));
  sh_exit(1);
}
