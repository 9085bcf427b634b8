/* Force-included (-include edgert_hook.h) into the generated model when it is built into
 * edgert's firmware: the model calls the runtime's layer profiler around every layer. */
#ifndef EDGERT_HOOK_H_
#define EDGERT_HOOK_H_

#include "server.h"

#define EDGERT_LAYER_HOOK(layer, phase) edgert_layer_hook(layer, phase)

#endif /* EDGERT_HOOK_H_ */
