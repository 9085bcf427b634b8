/* STM32F7 / STM32H7 board support: clocks, caches, and the USART wired to the host (the
 * ST-LINK virtual COM port on Nucleo and Discovery boards), polled.
 *
 * Everything board-specific comes from the board profile's [defines] table:
 *   UART_BASE, UART_CLOCK_HZ      the USART and its kernel clock after clock setup
 *   UART_TX_GPIO, UART_TX_PIN     GPIO port base and pin of TX (and RX), both set to
 *   UART_RX_GPIO, UART_RX_PIN     alternate function UART_AF
 *   UART_AF
 *   RCC_GPIO_EN, RCC_GPIO_EN_BITS register and bits that clock the GPIO ports
 *   RCC_UART_EN, RCC_UART_EN_BITS register and bits that clock the USART
 *   BAUDRATE                      115200 unless given
 *   CLOCK_F7_PLL                  1: run an STM32F7 from the PLL on HSI (PLL_M, PLL_N,
 *                                 PLL_P, PLL_Q, FLASH_LATENCY, APB1_DIV_BITS, APB2_DIV_BITS),
 *                                 with over-drive; absent: the reset clock (HSI)
 *   ENABLE_CACHES                 1: enable the Cortex-M7 instruction and data caches
 * USART register offsets are those of the STM32F7/H7/L4/G4 "v2" USART (ISR, RDR, TDR). */
#include <stdint.h>

#include "board.h"

#ifndef BAUDRATE
#define BAUDRATE 115200u
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))

/* USART v2 */
#define USART_CR1 REG(UART_BASE + 0x00u)
#define USART_BRR REG(UART_BASE + 0x0Cu)
#define USART_ISR REG(UART_BASE + 0x1Cu)
#define USART_ICR REG(UART_BASE + 0x20u)
#define USART_RDR REG(UART_BASE + 0x24u)
#define USART_TDR REG(UART_BASE + 0x28u)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define ICR_ORECF (1u << 3)

/* GPIO */
#define GPIO_MODER(base) REG((base) + 0x00u)
#define GPIO_OSPEEDR(base) REG((base) + 0x08u)
#define GPIO_AFR(base, pin) REG((base) + 0x20u + ((pin) / 8u) * 4u)

static void pin_af(uint32_t base, uint32_t pin, uint32_t af) {
  GPIO_MODER(base) = (GPIO_MODER(base) & ~(3u << (pin * 2u))) | (2u << (pin * 2u));
  GPIO_OSPEEDR(base) |= 3u << (pin * 2u);
  uint32_t shift = (pin % 8u) * 4u;
  GPIO_AFR(base, pin) = (GPIO_AFR(base, pin) & ~(0xFu << shift)) | (af << shift);
}

#if defined(CLOCK_F7_PLL) && CLOCK_F7_PLL
/* RM0410 (STM32F76x/77x) and RM0385 (STM32F74x/75x), "RCC": HSI -> PLL, over-drive on,
 * flash wait states raised before the switch, then SYSCLK = PLL. */
#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_APB1ENR REG(0x40023840u)
#define PWR_CR1 REG(0x40007000u)
#define PWR_CSR1 REG(0x40007004u)
#define FLASH_ACR REG(0x40023C00u)

static void clock_init(void) {
  if (((RCC_CFGR >> 2) & 3u) == 2u) return;      /* a bootloader (MCUboot) already runs us from the PLL */
  RCC_APB1ENR |= 1u << 28;                       /* PWREN */
  PWR_CR1 |= 3u << 14;                           /* VOS: scale 1 */
  RCC_PLLCFGR = (PLL_M << 0) | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) | (0u << 22) /* PLLSRC = HSI */
                | (PLL_Q << 24);
  RCC_CR |= 1u << 24;                            /* PLLON */
  while (!(RCC_CR & (1u << 25))) {               /* PLLRDY */
  }
  PWR_CR1 |= 1u << 16;                           /* ODEN */
  while (!(PWR_CSR1 & (1u << 16))) {             /* ODRDY */
  }
  PWR_CR1 |= 1u << 17;                           /* ODSWEN */
  while (!(PWR_CSR1 & (1u << 17))) {             /* ODSWRDY */
  }
  FLASH_ACR = FLASH_LATENCY | (1u << 8) | (1u << 9);  /* wait states, PRFTEN, ARTEN */
  while ((FLASH_ACR & 0xFu) != FLASH_LATENCY) {
  }
  RCC_CFGR = (RCC_CFGR & ~((7u << 10) | (7u << 13) | (0xFu << 4))) | (APB1_DIV_BITS << 10) | (APB2_DIV_BITS << 13);
  RCC_CFGR = (RCC_CFGR & ~3u) | 2u;              /* SW = PLL */
  while (((RCC_CFGR >> 2) & 3u) != 2u) {         /* SWS */
  }
}
#else
static void clock_init(void) {} /* the reset clock: HSI */
#endif

#if defined(ENABLE_CACHES) && ENABLE_CACHES
/* Armv7-M ARM, "Cache maintenance operations": invalidate, then enable, both caches. */
#define SCB_CCR REG(0xE000ED14u)
#define SCB_CCSIDR REG(0xE000ED80u)
#define SCB_CSSELR REG(0xE000ED84u)
#define SCB_ICIALLU REG(0xE000EF50u)
#define SCB_DCISW REG(0xE000EF60u)

static void caches_init(void) {
  __asm__ volatile("dsb\n isb" ::: "memory");
  SCB_ICIALLU = 0;
  __asm__ volatile("dsb\n isb" ::: "memory");
  SCB_CCR |= 1u << 17;                           /* IC */
  __asm__ volatile("dsb\n isb" ::: "memory");
  SCB_CSSELR = 0;                                /* level 1 data cache */
  __asm__ volatile("dsb" ::: "memory");
  uint32_t ccsidr = SCB_CCSIDR;
  uint32_t sets = (ccsidr >> 13) & 0x7FFFu, ways = (ccsidr >> 3) & 0x3FFu;
  for (uint32_t s = 0; s <= sets; s++) {
    for (uint32_t w = 0; w <= ways; w++) {
      SCB_DCISW = (s << 5) | (w << 30);          /* Cortex-M7: 32-byte lines, 4 ways */
    }
  }
  __asm__ volatile("dsb" ::: "memory");
  SCB_CCR |= 1u << 16;                           /* DC */
  __asm__ volatile("dsb\n isb" ::: "memory");
}
#else
static void caches_init(void) {}
#endif

void board_init(void) {
  clock_init();
  caches_init();
  REG(RCC_GPIO_EN) |= RCC_GPIO_EN_BITS;
  REG(RCC_UART_EN) |= RCC_UART_EN_BITS;
  (void)REG(RCC_UART_EN);                        /* the clock is on once the write lands */
  pin_af(UART_TX_GPIO, UART_TX_PIN, UART_AF);
  pin_af(UART_RX_GPIO, UART_RX_PIN, UART_AF);
  USART_CR1 = 0;
  USART_BRR = (UART_CLOCK_HZ + BAUDRATE / 2u) / BAUDRATE;  /* oversampling by 16 */
  USART_CR1 = CR1_UE | CR1_RE | CR1_TE;
}

int board_poll(void) {
  uint32_t isr = USART_ISR;
  if (isr & ISR_RXNE) return (int)(USART_RDR & 0xFFu);
  if (isr & ISR_ORE) USART_ICR = ICR_ORECF;     /* an overrun stops reception until cleared */
  return -1;
}

int board_getc(void) {
  int c;
  while ((c = board_poll()) < 0) {
  }
  return c;
}

void board_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = data[i];
  }
}
