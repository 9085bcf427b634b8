/* libFuzzer harness for the firmware's frame parser and command dispatcher (server.c,
 * framing.c) with a real model behind them. scripts/fuzz.py builds it with clang's
 * -fsanitize=fuzzer,address,undefined and runs it.
 *
 * An input is a sequence of records: a flags byte, a 16-bit little-endian length, then that
 * many bytes (fewer where the input ends). The flags say how the bytes reach the device:
 *   bit 0 clear: as raw bytes on the wire (garbage, broken COBS, lying lengths), each 0x00 in
 *                them ending a frame, and a 0x00 after them;
 *   bit 0 set:   as the body of a frame (header + payload) that the harness completes the way
 *                a host would: its CRC appended (bit 1 set: a wrong one), COBS-encoded, ended
 *                by 0x00. So the fuzzer reaches every command with any arguments.
 * Every input starts from the state after power-on (edgert_server_reset).
 *
 * Besides the sanitizers' own checks, the harness traps when the device breaks its contract
 * (edgert/device/protocol.py): every non-empty frame gets exactly one reply, and every reply is
 * a well-formed frame (valid COBS, correct CRC, its length field equal to its payload). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "edgert_protocol.h"
#include "framing.h"
#include "server.h"

/* ------------------------------------------------------------------ the board */

static uint8_t out[64 * EDGERT_MAX_ENCODED]; /* what the device wrote since the last check */
static size_t out_len;

void board_init(void) {}
int board_getc(void) { return -1; }
int board_poll(void) { return -1; }

void board_write(const uint8_t *data, size_t n) {
  if (n > sizeof out - out_len) __builtin_trap(); /* more replies than frames could ask for */
  memcpy(out + out_len, data, n);
  out_len += n;
}

void timer_init(void) {}
void timer_restart(void) {}
uint8_t timer_kind(void) { return EDGERT_TIMER_HOST; }
uint32_t timer_clock_hz(void) { return 1000000000u; }
uint64_t timer_now(void) { return 0; }

/* ------------------------------------------------------------------ the checks */

/* The device's answer to one frame: exactly one frame in out[], well formed. */
static void check_one_reply(void) {
  static uint8_t decoded[EDGERT_MAX_FRAME + 8];
  if (out_len == 0 || out[out_len - 1] != 0) __builtin_trap();   /* no reply, or one cut short */
  if (memchr(out, 0, out_len - 1) != NULL) __builtin_trap();     /* more than one */
  long n = edgert_cobs_decode(out, out_len - 1, decoded, sizeof decoded);
  if (n < EDGERT_HEADER_BYTES + EDGERT_CRC_BYTES) __builtin_trap();
  size_t body = (size_t)n - EDGERT_CRC_BYTES;
  uint32_t crc = (uint32_t)decoded[body] | (uint32_t)decoded[body + 1] << 8 |
                 (uint32_t)decoded[body + 2] << 16 | (uint32_t)decoded[body + 3] << 24;
  if (crc != edgert_crc32(decoded, body)) __builtin_trap();
  /* the header: u8 cmd | u16 seq | u16 payload length */
  if (((uint32_t)decoded[3] | (uint32_t)decoded[4] << 8) != body - EDGERT_HEADER_BYTES) __builtin_trap();
  out_len = 0;
}

static void feed(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) edgert_server_byte(data[i]);
}

/* ------------------------------------------------------------------ the records */

/* Bytes on the wire, then a 0x00: each non-empty frame among them must get its one reply (an
 * empty one is the host's flush, and gets none). */
static void send_raw(const uint8_t *p, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && p[i] != 0) continue;
    feed(p + start, i - start);
    edgert_server_byte(0);
    if (i > start) {
      check_one_reply();
    } else if (out_len != 0) {
      __builtin_trap(); /* a reply to an empty frame */
    }
    start = i + 1;
  }
}

static void send_framed(uint8_t flags, const uint8_t *p, size_t n) {
  static uint8_t body[EDGERT_MAX_ENCODED + EDGERT_CRC_BYTES];
  static uint8_t wire[sizeof body + sizeof body / 254 + 2];
  if (n > EDGERT_MAX_ENCODED) n = EDGERT_MAX_ENCODED;
  memcpy(body, p, n);
  uint32_t crc = edgert_crc32(body, n) ^ ((flags & 2) ? 0x5a5a5a5au : 0u);
  for (int i = 0; i < 4; i++) body[n + i] = (uint8_t)(crc >> (8 * i));
  size_t w = edgert_cobs_encode(body, n + EDGERT_CRC_BYTES, wire);
  send_raw(wire, w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  edgert_server_reset();
  out_len = 0;
  size_t at = 0;
  while (at + 3 <= size) {
    uint8_t flags = data[at];
    size_t len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
    at += 3;
    if (len > size - at) len = size - at;
    if (flags & 1) {
      send_framed(flags, data + at, len);
    } else {
      send_raw(data + at, len);
    }
    at += len;
  }
  return 0;
}
