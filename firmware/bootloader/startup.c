/* The bootloader's reset path. Its code and vectors live in the board's spare memory
 * (BOOT), outside the application's FLASH and RAM; only the two words the core reads at
 * reset (initial SP, reset handler) sit at address 0, where the application will be written
 * — as a ROM bootloader is mapped at 0 when BOOT0 selects it. */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);
static void Fault_Handler(void) {
  for (;;) {
  }
}

__attribute__((section(".reset_alias"), used)) const uint32_t bootloader_reset_alias[2] = {
    (uint32_t)&_estack, (uint32_t)Reset_Handler};

__attribute__((section(".vectors"), used)) void (*const bootloader_vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, SysTick_Handler,
};

void Reset_Handler(void) {
  *(volatile uint32_t *)0xE000ED08u = (uint32_t)bootloader_vectors; /* VTOR: ours, not address 0 */
  memcpy(&_sdata, &_sidata, (size_t)((uint8_t *)&_edata - (uint8_t *)&_sdata));
  memset(&_sbss, 0, (size_t)((uint8_t *)&_ebss - (uint8_t *)&_sbss));
  main();
  for (;;) {
  }
}
