// Arm semihosting calls (BKPT 0xAB on M-profile); see semihosting.h.
#include "semihosting.h"

#include <string.h>

enum { kOpen = 0x01, kClose = 0x02, kWrite0 = 0x04, kWrite = 0x05, kRead = 0x06, kFlen = 0x0C, kExit = 0x18 };
enum { kApplicationExit = 0x20026, kRunTimeError = 0x20023 };

static int call(int operation, void* argument) {
  register int r0 __asm__("r0") = operation;
  register void* r1 __asm__("r1") = argument;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

int sh_open(const char* path, int write) {
  uint32_t block[3] = {(uint32_t)(uintptr_t)path, write ? 5u /* "wb" */ : 1u /* "rb" */, (uint32_t)strlen(path)};
  return call(kOpen, block);
}

int sh_read(int handle, void* buffer, size_t bytes) {
  uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buffer, (uint32_t)bytes};
  return call(kRead, block);
}

int sh_write(int handle, const void* buffer, size_t bytes) {
  uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buffer, (uint32_t)bytes};
  return call(kWrite, block);
}

int sh_close(int handle) {
  uint32_t block[1] = {(uint32_t)handle};
  return call(kClose, block);
}

long sh_length(int handle) {
  uint32_t block[1] = {(uint32_t)handle};
  return call(kFlen, block);
}

void sh_print(const char* text) { call(kWrite0, (void*)text); }

void sh_exit(int success) {
  call(kExit, (void*)(uintptr_t)(success ? kApplicationExit : kRunTimeError));
  for (;;) {
  }
}
