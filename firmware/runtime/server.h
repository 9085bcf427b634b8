/* The device side of the edgert serial protocol (edgert/device/protocol.py).
 *
 * Feed it every received byte; it answers each complete frame with exactly one frame
 * through board_write(). It never blocks except in board_write and recovers from any input:
 * garbage, bad CRC, truncated, oversized or unknown frames get an ERROR frame. Its state
 * between frames: the model's arena, the last profile, whether a HELLO has come since it
 * started (until one has, other requests get NOT_SYNCED), and the reply to the last request
 * it executed (a retry of that request gets the same reply, and is not executed twice). */
#ifndef EDGERT_SERVER_H_
#define EDGERT_SERVER_H_

#include <stdint.h>

/* Generated per build by edgert: the model hash followed by one tensor descriptor per input
 * and output, sent in the HELLO reply. */
extern const uint8_t edgert_model_desc[];
extern const uint32_t edgert_model_desc_bytes;

void edgert_server_byte(uint8_t byte);

/* Back to the state after power-on: no frame half received, no reply kept, not synced (the
 * model's arena is left as it is, as a reset leaves RAM). For the fuzzer, which must start
 * every input from the same state. */
void edgert_server_reset(void);

/* Called by the model around every layer (EDGERT_LAYER_HOOK); records layer times while a
 * profiled INVOKE runs. */
void edgert_layer_hook(int layer, int phase);

#endif /* EDGERT_SERVER_H_ */
