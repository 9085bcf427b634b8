/* Frame coding shared by the firmware and its host build: COBS and CRC-32 (IEEE 802.3).
 * The frame layout is documented in edgert/device/protocol.py. */
#ifndef EDGERT_FRAMING_H_
#define EDGERT_FRAMING_H_

#include <stddef.h>
#include <stdint.h>

uint32_t edgert_crc32(const uint8_t *data, size_t n);

/* Decodes n COBS bytes (no delimiter) into out (capacity cap). Returns the decoded length,
 * -1 if the input is not valid COBS, -2 if the result would not fit in cap. */
long edgert_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Encodes n bytes into out, which must hold n + n / 254 + 1 bytes; returns the encoded
 * length (no delimiter appended). */
size_t edgert_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);

#endif /* EDGERT_FRAMING_H_ */
