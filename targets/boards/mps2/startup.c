/* Reset and vector table for Arm's MPS2 FPGA images (AN386 Cortex-M4, AN500 Cortex-M7),
 * as QEMU's mps2-an386 / mps2-an500 machines model them. Symbols come from the linker
 * script edgert generates from the target's memory regions. */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void SysTick_Handler(void);
void board_uart_rx_irq(void);

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
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

static void Default_Handler(void) {}

__attribute__((section(".vectors"), used)) void (*const edgert_vectors[])(void) = {
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
    board_uart_rx_irq, /* IRQ 0: UART0 receive */
};
