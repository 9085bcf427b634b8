/* What a board support package provides to the edgert firmware runtime.
 *
 * A board is a folder under targets/boards/ with these functions (plus startup code and
 * the vector table on a microcontroller); the host build implements them over stdin/stdout
 * (firmware/host/). Everything else in the firmware is board-independent. */
#ifndef EDGERT_BOARD_H_
#define EDGERT_BOARD_H_

#include <stddef.h>
#include <stdint.h>

/* Clocks, UART, timer. Called once, before anything else. */
void board_init(void);

/* The next byte from the host, blocking until one arrives (sleeping where the board can).
 * Returns -1 only when the line is gone for good (the host build's stdin closed). */
int board_getc(void);

/* Microcontroller boards: the next byte from the host if one has arrived, else -1 at
 * once (for code that keeps its own time, such as the bootloader's byte timeout). */
int board_poll(void);

/* Send bytes to the host; returns when they are all handed to the UART. */
void board_write(const uint8_t *data, size_t n);

/* The free-running tick counter of timer.c: what it counts (EDGERT_TIMER_*), its rate. */
uint8_t timer_kind(void);
uint32_t timer_clock_hz(void);
void timer_init(void);
uint64_t timer_now(void);
/* Restart the count from zero right before a measured region, so that measurements do not
 * depend on when the previous one ended. */
void timer_restart(void);

#endif /* EDGERT_BOARD_H_ */
