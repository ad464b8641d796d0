// Generated project file (edgecompress): a minimal Cortex-M start-up for bare-metal builds.
// The vector table sits at the start of code memory (kept through --gc-sections by the linker
// script), and the reset handler enables the FPU when the code is built for one, copies
// .data, zeroes .bss, paints the stack (so its high-water mark can be measured), runs the C++
// constructors and calls main(). Replace it with your vendor's start-up file on a real board.
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_bottom, __stack_top;
extern int main(void);
extern void __libc_init_array(void);

#define EDGECOMPRESS_STACK_PAINT 0x5EEDC0DEu

// Called on a fault with the exception number; the emulator harness reports it and exits.
__attribute__((weak)) void edgecompress_on_fault(int exception) {
  (void)exception;
  for (;;) {
  }
}

__attribute__((weak)) void edgecompress_on_exit(int code) {
  (void)code;
  for (;;) {
  }
}

// What crtbegin.o would define: the handle C++ static destructors register against.
void* __dso_handle = 0;

// newlib's __libc_init_array calls _init/_fini from crti.o, which -nostartfiles leaves out.
void _init(void) {}
void _fini(void) {}

uint32_t edgecompress_stack_peak_bytes(void) {
  const uint32_t* word = &__stack_bottom;
  while (word < &__stack_top && *word == EDGECOMPRESS_STACK_PAINT) ++word;
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)word);
}

uint32_t edgecompress_stack_reserved_bytes(void) {
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_bottom);
}

void Reset_Handler(void) {
#if defined(__ARM_FP)
  // CPACR: full access to CP10 and CP11 before the first floating-point instruction.
  *(volatile uint32_t*)0xE000ED88u |= (0xFu << 20);
  __asm volatile("dsb\n isb" ::: "memory");
#endif
  uint32_t* source = &__data_load;
  for (uint32_t* target = &__data_start; target < &__data_end;) *target++ = *source++;
  for (uint32_t* target = &__bss_start; target < &__bss_end;) *target++ = 0;
  uint32_t* sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* word = &__stack_bottom; word < sp - 16;) *word++ = EDGECOMPRESS_STACK_PAINT;
  __libc_init_array();
  edgecompress_on_exit(main());
}

static void fault(int exception) { edgecompress_on_fault(exception); }
void NMI_Handler(void) { fault(2); }
void HardFault_Handler(void) { fault(3); }
void MemManage_Handler(void) { fault(4); }
void BusFault_Handler(void) { fault(5); }
void UsageFault_Handler(void) { fault(6); }
void Default_Handler(void) { fault(0); }
__attribute__((weak, alias("Default_Handler"))) void SVC_Handler(void);
__attribute__((weak, alias("Default_Handler"))) void DebugMon_Handler(void);
__attribute__((weak, alias("Default_Handler"))) void PendSV_Handler(void);
__attribute__((weak, alias("Default_Handler"))) void SysTick_Handler(void);

typedef void (*Vector)(void);
__attribute__((section(".vectors"), used)) const Vector g_vectors[16] = {
    (Vector)(uintptr_t)&__stack_top, Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
    UsageFault_Handler, 0, 0, 0, 0, SVC_Handler, DebugMon_Handler, 0, PendSV_Handler, SysTick_Handler,
};
