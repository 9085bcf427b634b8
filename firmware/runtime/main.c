/* The edgert firmware: serve the protocol forever. */
#include "board.h"
#include "server.h"

int main(void) {
  board_init();
  timer_init();
  for (;;) {
    int c = board_getc();
    if (c < 0) return 0;
    edgert_server_byte((uint8_t)c);
  }
}
