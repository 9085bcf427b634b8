/* edgert's serial bootloader for emulated boards: the STM32 system-memory bootloader
 * protocol of ST's AN3155 ("USART protocol used in the STM32 bootloader"), the subset that
 * flashing needs. It stands in for the ROM bootloader an emulated board does not have, so
 * that edgert's AN3155 client is exercised against a real peer over a real serial link.
 *
 * Commands: Get (0x00), Get Version (0x01), Get ID (0x02), Read Memory (0x11), Go (0x21),
 * Write Memory (0x31), Extended Erase (0x44). Framing as in AN3155: 0x7F once to start;
 * a command is its code and the code's complement; addresses are 4 bytes MSB first and an
 * XOR checksum; every step is answered ACK (0x79) or NACK (0x1F).
 *
 * The board's FLASH region behaves as NOR flash: Extended Erase sets pages to 0xFF, Write
 * Memory clears bits (new = old & data), so writing over unerased data is caught by the
 * read-back. Writes to the board's RAM region are plain stores. Nothing else is writable;
 * the bootloader's own memory is outside both.
 *
 * Two additions to AN3155, both of which only refuse: a command whose bytes stop arriving
 * for BYTE_TIMEOUT_MS is abandoned with a NACK (so a client can resynchronise after a
 * corrupted length byte without a reset), and Go checks the vector table it is sent to (an
 * initial stack pointer inside RAM, a Thumb reset handler inside FLASH), so an image whose
 * first block was never written cannot be started.
 *
 * Board parameters come as -D from the board profile: FLASH_ORIGIN, FLASH_LENGTH,
 * RAM_ORIGIN, RAM_LENGTH, PAGE_BYTES, CHIP_ID, EDGERT_CLOCK_HZ. The UART is the board's own
 * support code (board.h): board_init, board_poll, board_write. */
#include <stdint.h>
#include <string.h>

#include "board.h"

#define ACK 0x79u
#define NACK 0x1Fu
#define SYNC 0x7Fu
#define VERSION 0x31u
#define BYTE_TIMEOUT_MS 200u

#define CMD_GET 0x00u
#define CMD_GET_VERSION 0x01u
#define CMD_GET_ID 0x02u
#define CMD_READ 0x11u
#define CMD_GO 0x21u
#define CMD_WRITE 0x31u
#define CMD_EXT_ERASE 0x44u

#define REG(addr) (*(volatile uint32_t *)(addr))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_VTOR REG(0xE000ED08u)

static const uint8_t commands[] = {CMD_GET, CMD_GET_VERSION, CMD_GET_ID, CMD_READ, CMD_GO, CMD_WRITE, CMD_EXT_ERASE};

/* Milliseconds from SysTick's interrupt. Waiting sleeps in WFI, woken by the UART's
 * receive interrupt or the next tick; an emulator advances its clock in real time while
 * the core sleeps, so the byte timeout is real time too. */
static volatile uint32_t ms_ticks;

void SysTick_Handler(void) { ms_ticks++; }

/* A byte from the host; -1 when none arrives for ``timeout_ms`` (0: wait for ever). */
static int getc_within(uint32_t timeout_ms) {
  uint32_t start = ms_ticks;
  for (;;) {
    __asm__ volatile("cpsid i" ::: "memory");
    int c = board_poll();
    if (c >= 0 || (timeout_ms && ms_ticks - start >= timeout_ms)) {
      __asm__ volatile("cpsie i" ::: "memory");
      return c;
    }
    __asm__ volatile("wfi");
    __asm__ volatile("cpsie i" ::: "memory"); /* the pending interrupt runs here */
  }
}

static int getc_timeout(void) { return getc_within(BYTE_TIMEOUT_MS); }
static int getc_wait(void) { return getc_within(0); }

static void put(uint8_t b) { board_write(&b, 1); }

static int in_region(uint32_t addr, uint32_t n, uint32_t origin, uint32_t length) {
  return addr >= origin && n <= length && addr - origin <= length - n;
}

static int in_flash(uint32_t addr, uint32_t n) { return in_region(addr, n, FLASH_ORIGIN, FLASH_LENGTH); }
static int in_ram(uint32_t addr, uint32_t n) { return in_region(addr, n, RAM_ORIGIN, RAM_LENGTH); }

/* Four address bytes MSB first and their XOR; -1 on a timeout or a bad checksum. */
static int64_t get_address(void) {
  uint32_t addr = 0;
  uint8_t x = 0;
  for (int i = 0; i < 4; i++) {
    int c = getc_timeout();
    if (c < 0) return -1;
    addr = (addr << 8) | (uint32_t)c;
    x ^= (uint8_t)c;
  }
  int c = getc_timeout();
  if (c < 0 || (uint8_t)c != x) return -1;
  return addr;
}

static void cmd_get(void) {
  put(ACK);
  put(sizeof commands);
  put(VERSION);
  board_write(commands, sizeof commands);
  put(ACK);
}

static void cmd_get_id(void) {
  put(ACK);
  put(1); /* N = number of bytes - 1 */
  put((uint8_t)(CHIP_ID >> 8));
  put((uint8_t)CHIP_ID);
  put(ACK);
}

static void cmd_read(void) {
  put(ACK);
  int64_t addr = get_address();
  if (addr < 0 || (!in_flash((uint32_t)addr, 1) && !in_ram((uint32_t)addr, 1))) { put(NACK); return; }
  put(ACK);
  int n = getc_timeout(), check = getc_timeout();
  if (n < 0 || check < 0 || (uint8_t)check != (uint8_t)~n) { put(NACK); return; }
  uint32_t count = (uint32_t)n + 1u;
  if (!in_flash((uint32_t)addr, count) && !in_ram((uint32_t)addr, count)) { put(NACK); return; }
  put(ACK);
  board_write((const uint8_t *)(uintptr_t)addr, count);
}

static uint8_t buffer[256];

static void cmd_write(void) {
  put(ACK);
  int64_t addr = get_address();
  if (addr < 0 || (addr & 3)) { put(NACK); return; }
  put(ACK);
  int n = getc_timeout();
  if (n < 0) { put(NACK); return; }
  uint32_t count = (uint32_t)n + 1u;
  uint8_t x = (uint8_t)n;
  for (uint32_t i = 0; i < count; i++) {
    int c = getc_timeout();
    if (c < 0) { put(NACK); return; }
    buffer[i] = (uint8_t)c;
    x ^= (uint8_t)c;
  }
  int check = getc_timeout();
  if (check < 0 || (uint8_t)check != x || (count & 3u)) { put(NACK); return; }
  volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)addr;
  if (in_flash((uint32_t)addr, count)) {
    for (uint32_t i = 0; i < count; i++) dst[i] &= buffer[i]; /* programming clears bits */
  } else if (in_ram((uint32_t)addr, count)) {
    for (uint32_t i = 0; i < count; i++) dst[i] = buffer[i];
  } else {
    { put(NACK); return; }
  }
  put(ACK);
}

static void erase_page(uint32_t page) {
  memset((void *)(uintptr_t)(FLASH_ORIGIN + page * PAGE_BYTES), 0xFF, PAGE_BYTES);
}

#define MAX_ERASE_PAGES 512u
static uint16_t pages[MAX_ERASE_PAGES];

static void cmd_ext_erase(void) {
  put(ACK);
  int hi = getc_timeout(), lo = getc_timeout();
  if (hi < 0 || lo < 0) { put(NACK); return; }
  uint32_t n = ((uint32_t)hi << 8) | (uint32_t)lo;
  uint8_t x = (uint8_t)(hi ^ lo);
  if (n >= 0xFFF0u) { /* special erase: 0xFFFF mass erase; bank erases are not offered */
    int check = getc_timeout();
    if (n != 0xFFFFu || check < 0 || (uint8_t)check != x) { put(NACK); return; }
    for (uint32_t p = 0; p < FLASH_LENGTH / PAGE_BYTES; p++) erase_page(p);
    return put(ACK);
  }
  uint32_t count = n + 1u;
  if (count > MAX_ERASE_PAGES) { put(NACK); return; }
  for (uint32_t i = 0; i < count; i++) {
    hi = getc_timeout();
    lo = getc_timeout();
    if (hi < 0 || lo < 0) { put(NACK); return; }
    pages[i] = (uint16_t)(((uint32_t)hi << 8) | (uint32_t)lo);
    x ^= (uint8_t)(hi ^ lo);
  }
  int check = getc_timeout();
  if (check < 0 || (uint8_t)check != x) { put(NACK); return; }
  for (uint32_t i = 0; i < count; i++) {
    if (pages[i] >= FLASH_LENGTH / PAGE_BYTES) { put(NACK); return; } /* checked before erasing any */
  }
  for (uint32_t i = 0; i < count; i++) erase_page(pages[i]);
  put(ACK);
}

static void cmd_go(void) {
  put(ACK);
  int64_t addr = get_address();
  if (addr < 0 || (addr & 0x7Fu) || !in_flash((uint32_t)addr, 8)) { put(NACK); return; }
  const volatile uint32_t *vectors = (const volatile uint32_t *)(uintptr_t)addr;
  uint32_t sp = vectors[0], pc = vectors[1];
  int sp_ok = sp > RAM_ORIGIN && sp - RAM_ORIGIN <= RAM_LENGTH && !(sp & 3u);
  int pc_ok = (pc & 1u) && in_flash(pc & ~1u, 2);
  if (!sp_ok || !pc_ok) { put(NACK); return; }
  put(ACK);
  __asm__ volatile("cpsid i" ::: "memory");
  SYST_CSR = 0;
  SCB_ICSR = 1u << 25; /* PENDSTCLR: no tick left pending for the application */
  SCB_VTOR = (uint32_t)addr;
  __asm__ volatile("msr msp, %0\n dsb\n isb\n cpsie i\n bx %1" : : "r"(sp), "r"(pc) : "memory");
}

int main(void) {
  board_init();
  SYST_RVR = EDGERT_CLOCK_HZ / 1000u - 1u;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* core clock, interrupt, enabled */
  while (getc_wait() != SYNC) {
  }
  put(ACK);
  for (;;) {
    int cmd = getc_wait();
    if (cmd == SYNC) { /* synchronised already: NACK at once, as ST's bootloader does */
      put(NACK);
      continue;
    }
    int complement = getc_timeout();
    if (complement < 0 || (uint8_t)complement != (uint8_t)~cmd) {
      put(NACK);
      continue;
    }
    switch (cmd) {
      case CMD_GET: cmd_get(); break;
      case CMD_GET_VERSION:
        put(ACK);
        put(VERSION);
        put(0);
        put(0);
        put(ACK);
        break;
      case CMD_GET_ID: cmd_get_id(); break;
      case CMD_READ: cmd_read(); break;
      case CMD_GO: cmd_go(); break;
      case CMD_WRITE: cmd_write(); break;
      case CMD_EXT_ERASE: cmd_ext_erase(); break;
      default: put(NACK); break;
    }
  }
}
