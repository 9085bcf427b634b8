/* Reset and the core's exception vectors, for every Cortex-M board (Armv7-M, Armv7E-M).
 * Symbols come from the linker script edgert generates from the board's memory regions.
 * A board's interrupt vectors (IRQ 0, 1, ...) follow in section .vectors_irq, from its
 * board.c, if it uses interrupts. */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void SysTick_Handler(void);
void Reset_Handler(void);
void Fault_Handler(void);
static void Default_Handler(void) {}

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((section(".vectors"), used)) void (*const edgert_vectors[16])(void) = {
    (void (*)(void))&_estack,
    Reset_Handler,
    Fault_Handler,   /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};

void Reset_Handler(void) {
  /* This image's vectors, wherever it was started from (reset, or a bootloader's jump). */
  SCB_VTOR = (uint32_t)edgert_vectors;
  SCB_CPACR |= 0xFu << 20;  /* CP10, CP11 full access: the FPU, before any float code */
  __asm__ volatile("dsb\n isb" ::: "memory");
  memcpy(&_sdata, &_sidata, (size_t)((uint8_t *)&_edata - (uint8_t *)&_sdata));
  memset(&_sbss, 0, (size_t)((uint8_t *)&_ebss - (uint8_t *)&_sbss));
  main();
  for (;;) __asm__ volatile("wfi");
}

/* A fault is a firmware bug; reset the board so that the host sees it stop answering in
 * the middle of a request (a timeout), and the next session finds it ready again. */
void Fault_Handler(void) {
  __asm__ volatile("dsb" ::: "memory");
  SCB_AIRCR = (0x5FAu << 16) | (1u << 2);  /* VECTKEY | SYSRESETREQ */
  for (;;) {
  }
}
