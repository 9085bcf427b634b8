/* The device side of the edgert serial protocol (edgert/device/protocol.py).
 *
 * Feed it every received byte; it answers each complete frame with exactly one frame
 * through board_write(). It never blocks except in board_write, keeps no state between
 * frames other than the model's arena and the last profile, and recovers from any input:
 * garbage, bad CRC, truncated, oversized or unknown frames get an ERROR frame. */
#ifndef EDGERT_SERVER_H_
#define EDGERT_SERVER_H_

#include <stdint.h>

/* Generated per build by edgert: the model hash followed by one tensor descriptor per input
 * and output, sent in the HELLO reply. */
extern const uint8_t edgert_model_desc[];
extern const uint32_t edgert_model_desc_bytes;

void edgert_server_byte(uint8_t byte);

/* Called by the model around every layer (EDGERT_LAYER_HOOK); records layer times while a
 * profiled INVOKE runs. */
void edgert_layer_hook(int layer, int phase);

#endif /* EDGERT_SERVER_H_ */
