#include "framing.h"

/* CRC-32, reflected polynomial 0xEDB88320, a nibble at a time: a 64-byte table instead of
 * 1 KiB, which matters more on a microcontroller than the extra shifts. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t edgert_crc32(const uint8_t *data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    crc ^= data[i];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
  }
  return ~crc;
}

long edgert_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  size_t i = 0, o = 0;
  while (i < n) {
    uint8_t code = in[i];
    if (code == 0 || i + code > n) return -1;
    for (size_t k = i + 1; k < i + code; k++) {
      if (in[k] == 0) return -1;
      if (o >= cap) return -2;
      out[o++] = in[k];
    }
    i += code;
    if (code != 0xFF && i < n) {
      if (o >= cap) return -2;
      out[o++] = 0;
    }
  }
  return (long)o;
}

size_t edgert_cobs_encode(const uint8_t *in, size_t n, uint8_t *out) {
  size_t code_at = 0, o = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < n; i++) {
    if (in[i] != 0) {
      out[o++] = in[i];
      code++;
    }
    if (in[i] == 0 || code == 0xFF) {
      out[code_at] = code;
      code_at = o++;
      code = 1;
    }
  }
  out[code_at] = code;
  return o;
}
