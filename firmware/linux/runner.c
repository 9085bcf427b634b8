/* edgert's runner for Linux boards (Raspberry Pi, Jetson): the firmware runtime and a build's
 * model in one static executable that serves the edgert protocol over
 *
 *   edgert-runner                      stdin/stdout (what `edgert deploy` starts over SSH)
 *   edgert-runner --tcp [ADDR:]PORT    one TCP client at a time, forever
 *   edgert-runner --serial DEV [BAUD]  a serial port, raw 8N1 (default 115200 baud)
 *
 * The timer: when EDGERT_ICOUNT_FILE names a file that edgert's QEMU plugin
 * (firmware/linux/icount_plugin.c) counts executed guest instructions into, ticks are those
 * instructions, exact and repeatable; otherwise CLOCK_MONOTONIC nanoseconds. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "edgert_protocol.h"
#include "server.h"

static int in_fd = 0, out_fd = 1;
static uint8_t rx[4096];
static size_t rx_len, rx_pos;
static const volatile uint64_t *icount; /* the plugin's counter, mapped read-only */

void board_init(void) {}

int board_getc(void) {
  if (rx_pos == rx_len) {
    ssize_t n;
    do {
      n = read(in_fd, rx, sizeof rx);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return -1;
    rx_len = (size_t)n;
    rx_pos = 0;
  }
  return rx[rx_pos++];
}

int board_poll(void) { return rx_pos < rx_len ? rx[rx_pos++] : -1; }

void board_write(const uint8_t *data, size_t n) {
  while (n > 0) {
    ssize_t w = write(out_fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* the host is gone: the next read sees it and ends the session */
    data += w;
    n -= (size_t)w;
  }
}

void timer_init(void) {
  const char *path = getenv("EDGERT_ICOUNT_FILE");
  if (path == NULL || *path == 0) return;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  void *p = mmap(NULL, sizeof(uint64_t), PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p != MAP_FAILED) icount = (const volatile uint64_t *)p;
}

void timer_restart(void) {}
uint8_t timer_kind(void) { return icount ? EDGERT_TIMER_INSTRUCTIONS : EDGERT_TIMER_HOST; }
uint32_t timer_clock_hz(void) { return 1000000000u; }

uint64_t timer_now(void) {
  if (icount) return *icount;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void serve(void) {
  for (;;) {
    int c = board_getc();
    if (c < 0) return;
    edgert_server_byte((uint8_t)c);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: edgert-runner [--tcp [ADDR:]PORT | --serial DEV [BAUD]]\n");
  return 2;
}

static int serve_tcp(const char *spec) {
  const char *colon = strrchr(spec, ':');
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (colon) {
    char host[64];
    size_t len = (size_t)(colon - spec);
    if (len >= sizeof host) return usage();
    memcpy(host, spec, len);
    host[len] = 0;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return usage();
    spec = colon + 1;
  }
  addr.sin_port = htons((uint16_t)atoi(spec));
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 1) != 0) {
    perror("edgert-runner: listen");
    return 1;
  }
  fprintf(stderr, "edgert-runner: listening on port %d\n", ntohs(addr.sin_port));
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    in_fd = out_fd = c;
    rx_len = rx_pos = 0;
    serve();
    close(c);
  }
}

static speed_t baud_code(long baud) {
  switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return 0;
  }
}

static int serve_serial(const char *dev, long baud) {
  speed_t speed = baud_code(baud);
  if (!speed) {
    fprintf(stderr, "edgert-runner: unsupported baud rate %ld\n", baud);
    return 2;
  }
  int fd = open(dev, O_RDWR | O_NOCTTY);
  if (fd < 0) {
    perror(dev);
    return 1;
  }
  struct termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    cfsetispeed(&t, speed);
    cfsetospeed(&t, speed);
    t.c_cflag |= CLOCAL | CREAD;
    tcsetattr(fd, TCSANOW, &t);
  }
  in_fd = out_fd = fd;
  serve();
  return 0;
}

int main(int argc, char **argv) {
  board_init();
  timer_init();
  if (argc == 1) {
    serve();
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "--tcp") == 0) return serve_tcp(argv[2]);
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "--serial") == 0)
    return serve_serial(argv[2], argc == 4 ? strtol(argv[3], NULL, 10) : 115200);
  return usage();
}
