// TFLM's clock (tflite::GetCurrentTimeTicks / ticks_per_second) from SysTick, for boards
// without a DWT cycle counter -- QEMU's emulated Cortex-M has none. Under QEMU's
// `-icount shift=0` every executed instruction advances virtual time by 1 ns, so SysTick
// (clocked by the processor clock, CLKSOURCE=1) counts executed instructions divided by a
// constant, which the harness calibrates with a loop of known length.
#include <stdint.h>

#include "tensorflow/lite/micro/micro_time.h"

#ifndef EDGECOMPRESS_SYSTICK_HZ
#define EDGECOMPRESS_SYSTICK_HZ 25000000
#endif

namespace {
struct SysTickRegisters {
  volatile uint32_t ctrl, load, val, calib;
};
SysTickRegisters* const kSysTick = reinterpret_cast<SysTickRegisters*>(0xE000E010u);
constexpr uint32_t kReload = 0x00FFFFFFu;  // the 24-bit counter's full range
volatile uint32_t g_wraps = 0;
bool g_started = false;

void Start() {
  kSysTick->load = kReload;
  kSysTick->val = 0;
  kSysTick->ctrl = 0x7u;  // processor clock, interrupt on wrap, enabled
  while (kSysTick->val == 0) {
  }  // the counter loads LOAD on its first tick; until then VAL=0 would read as a full period
  g_started = true;
}
}  // namespace

extern "C" void SysTick_Handler(void) { g_wraps = g_wraps + 1; }

namespace tflite {

uint32_t ticks_per_second() { return EDGECOMPRESS_SYSTICK_HZ; }

uint32_t GetCurrentTimeTicks() {
  if (!g_started) Start();
  uint32_t wraps, value;
  do {
    wraps = g_wraps;
    value = kSysTick->val;
  } while (wraps != g_wraps);  // a wrap between the two reads: read again
  return wraps * (kReload + 1u) + (kReload - value);
}

}  // namespace tflite
