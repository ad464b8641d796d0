// Arm semihosting for the emulated board (QEMU -semihosting): console and host file I/O.
// Only the emulator harness uses it; a real board without a debugger would stop at the
// first BKPT, so device builds never link it.
#ifndef EDGECOMPRESS_SEMIHOSTING_H_
#define EDGECOMPRESS_SEMIHOSTING_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int sh_open(const char* path, int write);  // handle, or -1
int sh_read(int handle, void* buffer, size_t bytes);  // bytes NOT read (0 = all)
int sh_write(int handle, const void* buffer, size_t bytes);  // bytes NOT written (0 = all)
int sh_close(int handle);
long sh_length(int handle);
void sh_print(const char* text);
void sh_exit(int success) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif  // EDGECOMPRESS_SEMIHOSTING_H_
