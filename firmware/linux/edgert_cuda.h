/* The runner's CUDA side (Jetson targets): the model's kernels run on the GPU, launched
 * through the CUDA driver API, which is looked up at run time (dlopen of libcuda.so.1), so the
 * runner builds without any CUDA library.
 *
 * The generated model.c keeps the arena in host memory, as on every target (the protocol
 * writes inputs and reads outputs there), and mirrors it on the device: edgert_invoke copies
 * the inputs' bytes to the device arena, launches each layer's kernel with device pointers
 * into the device arena and the device copy of the weights, and copies the outputs back.
 * Every launch is followed by a synchronization, so per-layer times are the kernels' own.
 *
 * Errors: the functions return 0 or a CUresult (the driver's error code, > 0), or
 * EDGERT_CUDA_NO_DRIVER when libcuda cannot be loaded; the first failure is also printed on
 * stderr with the driver's error name. */
#ifndef EDGERT_CUDA_H_
#define EDGERT_CUDA_H_

#include <stddef.h>
#include <stdint.h>

#define EDGERT_CUDA_NO_DRIVER 0x10001

struct edgert_cuda_const {
  const void *data; /* the array in the runner (weights.c) */
  size_t bytes;
  size_t offset;    /* where the device copy starts, from the device weights' base */
};

struct edgert_cuda_model {
  const uint8_t *cubin;
  size_t cubin_bytes;
  const char *const *kernels; /* entry names, in layer order */
  int num_kernels;
  const struct edgert_cuda_const *consts;
  int num_consts;
  size_t const_bytes;         /* device bytes for all constants */
  size_t arena_bytes;
};

/* Load the driver, create a context on device 0, load the cubin, upload the weights and
 * allocate the device arena: once; later calls return the first call's result. */
int edgert_cuda_init(const struct edgert_cuda_model *m);
/* Device addresses of an arena offset and of a constant's device copy. */
uint64_t edgert_cuda_arena(size_t offset);
uint64_t edgert_cuda_const(int index);
int edgert_cuda_to_device(const void *host, size_t arena_offset, size_t bytes);
int edgert_cuda_to_host(void *host, size_t arena_offset, size_t bytes);
/* Launch kernel ``index`` on a 1-D grid with one pointer argument per parameter, and wait. */
int edgert_cuda_launch(int index, unsigned grid, unsigned block, const uint64_t *args, int num_args);

#endif /* EDGERT_CUDA_H_ */
