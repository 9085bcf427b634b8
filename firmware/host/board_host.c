/* The firmware's host build: the same runtime and model, with the UART on stdin/stdout and
 * the timer on CLOCK_MONOTONIC (nanoseconds). Lets the protocol code run and be tested on
 * the development machine; edgert.device.host_board builds and starts it. */
#include <stdio.h>
#include <time.h>

#include "board.h"
#include "edgert_protocol.h"

void board_init(void) { setvbuf(stdout, NULL, _IOFBF, 1 << 16); }

int board_getc(void) {
  int c = getchar();
  return c == EOF ? -1 : c;
}

void board_write(const uint8_t *data, size_t n) {
  fwrite(data, 1, n, stdout);
  fflush(stdout);
}

void timer_init(void) {}
void timer_restart(void) {}
uint8_t timer_kind(void) { return EDGERT_TIMER_HOST; }
uint32_t timer_clock_hz(void) { return 1000000000u; }

uint64_t timer_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
