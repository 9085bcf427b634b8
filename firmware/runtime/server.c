#include "server.h"

#include <string.h>

#include "board.h"
#include "edgert_protocol.h"
#include "framing.h"
#include "model.h"

#define LAYER_SLOTS (EDGERT_NUM_LAYERS > 0 ? EDGERT_NUM_LAYERS : 1)

static uint8_t rx[EDGERT_MAX_ENCODED];   /* COBS bytes of the frame being received */
static size_t rx_len;
static int rx_overflow;                   /* the frame outgrew rx: answer TOO_LONG at its end */
static uint8_t frame[EDGERT_MAX_FRAME];  /* the decoded request */
static uint8_t reply[EDGERT_MAX_FRAME];  /* the reply being built */

/* The encoded reply to the last request executed, kept so that a retry of that same request
 * (same command, seq and CRC: the reply was lost on the way) is answered again without being
 * executed again. Errors about frames that could not be read go out through link_tx and leave
 * it alone. */
static uint8_t tx[EDGERT_MAX_ENCODED];
static size_t tx_len;
static int last_valid;
static uint8_t last_cmd;
static uint16_t last_seq;
static uint32_t last_crc;
static uint8_t link_tx[EDGERT_HEADER_BYTES + EDGERT_ERROR_PAYLOAD_BYTES + EDGERT_CRC_BYTES + 2];

/* Set by HELLO. Until then (after power-on or a reset) every other request is answered
 * NOT_SYNCED, so a host never mistakes a restarted board's empty arena for its data. */
static int synced;

static volatile int profiling;
static int profiled;
static uint64_t layer_t0;
static uint32_t layer_ticks[LAYER_SLOTS];

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (get16(p + 2) << 16); }

/* Encodes reply[] holding `len` payload bytes after the header into out (which holds
 * EDGERT_MAX_ENCODED bytes, or fewer for a short reply); returns the bytes, delimiter included. */
static size_t encode_reply(uint8_t *out, uint8_t cmd, uint16_t seq, size_t len) {
  reply[0] = cmd;
  put16(reply + 1, seq);
  put16(reply + 3, (uint32_t)len);
  size_t body = EDGERT_HEADER_BYTES + len;
  put32(reply + body, edgert_crc32(reply, body));
  size_t n = edgert_cobs_encode(reply, body + EDGERT_CRC_BYTES, out);
  out[n++] = 0;
  return n;
}

/* The reply to the request being executed: kept in tx for a retry. */
static void send(uint8_t cmd, uint16_t seq, size_t len) {
  tx_len = encode_reply(tx, cmd, seq, len);
  board_write(tx, tx_len);
}

static void put_error(uint8_t request, uint8_t code, uint32_t detail) {
  uint8_t *p = reply + EDGERT_HEADER_BYTES;
  p[0] = code;
  p[1] = request;
  p[2] = p[3] = 0;
  put32(p + 4, detail);
}

static void send_error(uint16_t seq, uint8_t request, uint8_t code, uint32_t detail) {
  put_error(request, code, detail);
  send(EDGERT_CMD_ERROR, seq, EDGERT_ERROR_PAYLOAD_BYTES);
}

/* An error about a frame that could not be read: not a reply to any executed request. */
static void send_link_error(uint16_t seq, uint8_t request, uint8_t code, uint32_t detail) {
  put_error(request, code, detail);
  board_write(link_tx, encode_reply(link_tx, EDGERT_CMD_ERROR, seq, EDGERT_ERROR_PAYLOAD_BYTES));
}

void edgert_layer_hook(int layer, int phase) {
  if (!profiling) return;
  uint64_t now = timer_now();
  if (phase == 0) {
    layer_t0 = now;
  } else if (layer >= 0 && layer < LAYER_SLOTS) {
    layer_ticks[layer] = (uint32_t)(now - layer_t0);
  }
}

static void do_hello(uint16_t seq, const uint8_t *p, size_t len) {
  if (len != EDGERT_HELLO_REQ_BYTES) {
    send_error(seq, EDGERT_CMD_HELLO, EDGERT_ERR_BAD_ARG, EDGERT_HELLO_REQ_BYTES);
    return;
  }
  (void)p; /* the host's version: the host decides whether it can talk to this one */
  synced = 1;
  uint8_t *r = reply + EDGERT_HEADER_BYTES;
  memset(r, 0, EDGERT_HELLO_FIXED_BYTES);
  put16(r, EDGERT_PROTOCOL_VERSION);
  put16(r + 2, EDGERT_MAX_PAYLOAD);
  put32(r + 4, EDGERT_ARENA_BYTES);
  put32(r + 8, timer_clock_hz());
  r[12] = timer_kind();
  r[13] = EDGERT_NUM_INPUTS;
  r[14] = EDGERT_NUM_OUTPUTS;
  put16(r + 16, EDGERT_NUM_LAYERS);
  size_t n = EDGERT_HELLO_FIXED_BYTES;
  if (n + edgert_model_desc_bytes > EDGERT_MAX_PAYLOAD) {
    send_error(seq, EDGERT_CMD_HELLO, EDGERT_ERR_BAD_ARG, EDGERT_MAX_PAYLOAD);
    return;
  }
  memcpy(r + n, edgert_model_desc, edgert_model_desc_bytes);
  send(EDGERT_CMD_HELLO | EDGERT_REPLY_BIT, seq, n + edgert_model_desc_bytes);
}

static void do_set_input(uint16_t seq, const uint8_t *p, size_t len) {
  if (len < EDGERT_SET_INPUT_REQ_BYTES || p[0] >= EDGERT_NUM_INPUTS) {
    send_error(seq, EDGERT_CMD_SET_INPUT, EDGERT_ERR_BAD_ARG, EDGERT_NUM_INPUTS);
    return;
  }
  size_t size = edgert_input_bytes(p[0]);
  uint32_t offset = get32(p + 4);
  size_t n = len - EDGERT_SET_INPUT_REQ_BYTES;
  if (offset > size || n > size - offset) {
    send_error(seq, EDGERT_CMD_SET_INPUT, EDGERT_ERR_BAD_ARG, (uint32_t)size);
    return;
  }
  memcpy((uint8_t *)edgert_input(p[0]) + offset, p + EDGERT_SET_INPUT_REQ_BYTES, n);
  send(EDGERT_CMD_SET_INPUT | EDGERT_REPLY_BIT, seq, 0);
}

static void do_invoke(uint16_t seq, const uint8_t *p, size_t len) {
  if (len != EDGERT_INVOKE_REQ_BYTES) {
    send_error(seq, EDGERT_CMD_INVOKE, EDGERT_ERR_BAD_ARG, EDGERT_INVOKE_REQ_BYTES);
    return;
  }
  profiling = (p[0] & EDGERT_INVOKE_PROFILE) != 0;
  /* The compiler must not move model code across the timer reads. */
  timer_restart();
  __asm__ volatile("" ::: "memory");
  uint64_t t0 = timer_now();
  __asm__ volatile("" ::: "memory");
  int status = edgert_invoke();
  __asm__ volatile("" ::: "memory");
  uint64_t t1 = timer_now();
  __asm__ volatile("" ::: "memory");
  profiled = profiling;
  profiling = 0;
  if (status != 0) {
    send_error(seq, EDGERT_CMD_INVOKE, EDGERT_ERR_INVOKE_FAILED, (uint32_t)status);
    return;
  }
  uint8_t *r = reply + EDGERT_HEADER_BYTES;
  memset(r, 0, EDGERT_INVOKE_REPLY_BYTES);
  put32(r, (uint32_t)status);
  put64(r + 8, t1 - t0);
  send(EDGERT_CMD_INVOKE | EDGERT_REPLY_BIT, seq, EDGERT_INVOKE_REPLY_BYTES);
}

static void do_get_output(uint16_t seq, const uint8_t *p, size_t len) {
  if (len != EDGERT_GET_OUTPUT_REQ_BYTES || p[0] >= EDGERT_NUM_OUTPUTS) {
    send_error(seq, EDGERT_CMD_GET_OUTPUT, EDGERT_ERR_BAD_ARG, EDGERT_NUM_OUTPUTS);
    return;
  }
  size_t size = edgert_output_bytes(p[0]);
  uint32_t n = get16(p + 2), offset = get32(p + 4);
  if (n > EDGERT_MAX_PAYLOAD || offset > size || n > size - offset) {
    send_error(seq, EDGERT_CMD_GET_OUTPUT, EDGERT_ERR_BAD_ARG, (uint32_t)size);
    return;
  }
  memcpy(reply + EDGERT_HEADER_BYTES, (const uint8_t *)edgert_output(p[0]) + offset, n);
  send(EDGERT_CMD_GET_OUTPUT | EDGERT_REPLY_BIT, seq, n);
}

static void do_get_layers(uint16_t seq, const uint8_t *p, size_t len) {
  if (len != EDGERT_GET_LAYERS_REQ_BYTES) {
    send_error(seq, EDGERT_CMD_GET_LAYERS, EDGERT_ERR_BAD_ARG, EDGERT_GET_LAYERS_REQ_BYTES);
    return;
  }
  if (!profiled) {
    send_error(seq, EDGERT_CMD_GET_LAYERS, EDGERT_ERR_NO_PROFILE, 0);
    return;
  }
  uint32_t first = get16(p), count = get16(p + 2);
  uint32_t room = (EDGERT_MAX_PAYLOAD - EDGERT_GET_LAYERS_REPLY_BYTES) / 4;
  if (first > EDGERT_NUM_LAYERS || count > EDGERT_NUM_LAYERS - first || count > room) {
    send_error(seq, EDGERT_CMD_GET_LAYERS, EDGERT_ERR_BAD_ARG, EDGERT_NUM_LAYERS);
    return;
  }
  uint8_t *r = reply + EDGERT_HEADER_BYTES;
  put16(r, first);
  put16(r + 2, count);
  for (uint32_t i = 0; i < count; i++) put32(r + EDGERT_GET_LAYERS_REPLY_BYTES + 4 * i, layer_ticks[first + i]);
  send(EDGERT_CMD_GET_LAYERS | EDGERT_REPLY_BIT, seq, EDGERT_GET_LAYERS_REPLY_BYTES + 4 * count);
}

static void handle_frame(size_t encoded_len) {
  long n = edgert_cobs_decode(rx, encoded_len, frame, sizeof frame);
  if (n == -2) {
    send_link_error(0, 0, EDGERT_ERR_TOO_LONG, EDGERT_MAX_PAYLOAD);
    return;
  }
  if (n < EDGERT_HEADER_BYTES + EDGERT_CRC_BYTES) {
    send_link_error(0, 0, EDGERT_ERR_BAD_FRAME, n < 0 ? 0u : (uint32_t)n);
    return;
  }
  size_t body = (size_t)n - EDGERT_CRC_BYTES;
  uint8_t cmd = frame[0];
  uint16_t seq = (uint16_t)get16(frame + 1);
  uint32_t crc = edgert_crc32(frame, body);
  if (crc != get32(frame + body)) {
    send_link_error(seq, cmd, EDGERT_ERR_BAD_CRC, crc);
    return;
  }
  size_t len = body - EDGERT_HEADER_BYTES;
  if (get16(frame + 3) != len) {
    send_link_error(seq, cmd, EDGERT_ERR_BAD_LENGTH, (uint32_t)len);
    return;
  }
  if (last_valid && cmd == last_cmd && seq == last_seq && crc == last_crc) {
    board_write(tx, tx_len); /* a retry: the same answer, not a second execution */
    return;
  }
  /* A request numbered before the last one executed is a delayed copy of one the host has
   * moved past: executing it could overwrite the next sample's input. HELLO starts a new
   * numbering and is always served. */
  if (last_valid && cmd != EDGERT_CMD_HELLO && seq != last_seq && (uint16_t)(last_seq - seq) < 0x8000u) {
    send_link_error(seq, cmd, EDGERT_ERR_STALE, last_seq);
    return;
  }
  const uint8_t *p = frame + EDGERT_HEADER_BYTES;
  if (!synced && cmd != EDGERT_CMD_HELLO) {
    send_error(seq, cmd, EDGERT_ERR_NOT_SYNCED, 0);
  } else {
    switch (cmd) {
      case EDGERT_CMD_HELLO: do_hello(seq, p, len); break;
      case EDGERT_CMD_SET_INPUT: do_set_input(seq, p, len); break;
      case EDGERT_CMD_INVOKE: do_invoke(seq, p, len); break;
      case EDGERT_CMD_GET_OUTPUT: do_get_output(seq, p, len); break;
      case EDGERT_CMD_GET_LAYERS: do_get_layers(seq, p, len); break;
      default: send_error(seq, cmd, EDGERT_ERR_UNKNOWN_CMD, cmd); break;
    }
  }
  last_valid = 1;
  last_cmd = cmd;
  last_seq = seq;
  last_crc = crc;
}

void edgert_server_reset(void) {
  rx_len = 0;
  rx_overflow = 0;
  tx_len = 0;
  last_valid = 0;
  synced = 0;
  profiling = 0;
  profiled = 0;
}

void edgert_server_byte(uint8_t byte) {
  if (byte != 0) {
    if (rx_len < sizeof rx) {
      rx[rx_len++] = byte;
    } else {
      rx_overflow = 1;
    }
    return;
  }
  if (rx_overflow) {
    send_link_error(0, 0, EDGERT_ERR_TOO_LONG, EDGERT_MAX_PAYLOAD);
  } else if (rx_len > 0) {
    handle_frame(rx_len);
  } /* else: an empty frame, the host's flush: ignored */
  rx_len = 0;
  rx_overflow = 0;
}
