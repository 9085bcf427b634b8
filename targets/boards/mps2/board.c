/* MPS2 board support: the CMSDK APB UART0 at 0x40004000, which QEMU connects to -serial.
 * Receiving sleeps in WFI until the UART's receive interrupt (IRQ 0) wakes the core, so an
 * idle board costs the host no CPU. */
#include <stdint.h>

#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART_BASE 0x40004000u
#define UART_DATA REG(UART_BASE + 0x00u)
#define UART_STATE REG(UART_BASE + 0x04u)
#define UART_CTRL REG(UART_BASE + 0x08u)
#define UART_INTCLEAR REG(UART_BASE + 0x0Cu)
#define UART_BAUDDIV REG(UART_BASE + 0x10u)
#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u
#define CTRL_TX_EN 1u
#define CTRL_RX_EN 2u
#define CTRL_RX_INT_EN 8u
#define INT_RX 2u
#define NVIC_ISER0 REG(0xE000E100u)
#define UART0_RX_IRQ 0

void board_uart_rx_irq(void) { UART_INTCLEAR = INT_RX; }

/* The interrupt vectors after the core's (startup_cortexm.c): IRQ 0 is UART0 receive. */
__attribute__((section(".vectors_irq"), used)) void (*const board_irq_vectors[])(void) = {
    board_uart_rx_irq,
};

void board_init(void) {
  UART_BAUDDIV = EDGERT_CLOCK_HZ / 115200u;
  UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN;
  NVIC_ISER0 = 1u << UART0_RX_IRQ;
}

int board_getc(void) {
  for (;;) {
    /* Interrupts masked between the check and WFI, so a byte arriving in between still
     * wakes the core (a pending interrupt ends WFI even when masked). */
    __asm__ volatile("cpsid i" ::: "memory");
    if (UART_STATE & STATE_RX_FULL) {
      __asm__ volatile("cpsie i" ::: "memory");
      return (int)(UART_DATA & 0xFFu);
    }
    __asm__ volatile("wfi");
    __asm__ volatile("cpsie i" ::: "memory");
  }
}

int board_poll(void) { return (UART_STATE & STATE_RX_FULL) ? (int)(UART_DATA & 0xFFu) : -1; }

void board_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = data[i];
  }
}
