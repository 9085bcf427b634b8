/* The tick counter on Armv7-M: DWT CYCCNT where the core has one that counts, else SysTick
 * on the core clock (the emulator: QEMU does not model CYCCNT, and with -icount shift=0 its
 * SysTick advances one tick per 1e9 / clock_hz instructions, exactly).
 * EDGERT_CLOCK_HZ (the core clock) comes from the target's TOML. */
#include <stdint.h>

#include "board.h"
#include "edgert_protocol.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DWT_LAR REG(0xE0001FB0u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_ICSR REG(0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define SYSTICK_RELOAD 0xFFFFFFu

static uint8_t kind;
static volatile uint32_t systick_wraps;
static uint32_t cyc_high, cyc_last;

void SysTick_Handler(void) { systick_wraps++; }

void timer_init(void) {
  DEMCR |= 1u << 24;         /* TRCENA */
  DWT_LAR = 0xC5ACCE55u;     /* unlock on cores that lock the DWT (M7) */
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u;            /* CYCCNTENA */
  for (volatile int i = 0; i < 64; i++) {
  }
  if (DWT_CYCCNT != 0) {
    kind = EDGERT_TIMER_CYCLES;
    return;
  }
  kind = EDGERT_TIMER_SYSTICK;
  SYST_RVR = SYSTICK_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 7u;             /* core clock, interrupt on wrap, enable */
}

void timer_restart(void) {
  if (kind == EDGERT_TIMER_CYCLES) {
    DWT_CYCCNT = 0;
    cyc_high = cyc_last = 0;
    return;
  }
  /* Restart SysTick so every measurement starts at the same phase: with -icount the count
   * is then the same to the instruction, run after run. */
  SYST_CSR = 0;
  SYST_CVR = 0;
  systick_wraps = 0;
  SYST_CSR = 7u;
  /* The counter reads 0 until its first tick loads the reload value (no wrap is counted
   * for that load): wait for it, at most one tick. */
  while (SYST_CVR == 0) {
  }
}

uint8_t timer_kind(void) { return kind; }
uint32_t timer_clock_hz(void) { return EDGERT_CLOCK_HZ; }

uint64_t timer_now(void) {
  if (kind == EDGERT_TIMER_CYCLES) {
    uint32_t v = DWT_CYCCNT;  /* extended to 64 bits: read at least once a wrap (seconds) */
    if (v < cyc_last) cyc_high++;
    cyc_last = v;
    return ((uint64_t)cyc_high << 32) | v;
  }
  uint32_t wraps, value, pending;
  do {
    wraps = systick_wraps;
    value = SYST_CVR;
    pending = SCB_ICSR & ICSR_PENDSTSET;
  } while (wraps != systick_wraps);
  /* A wrap whose interrupt has not run yet: the counter has just reloaded. */
  if (pending && value > SYSTICK_RELOAD / 2) wraps++;
  return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - value);
}
