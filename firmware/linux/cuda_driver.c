/* The CUDA driver API, resolved at run time (see edgert_cuda.h). The few declarations used
 * are written out from NVIDIA's documented driver API (cuda.h): CUresult is an int, handles
 * are pointers, device pointers are 64-bit. */
#define _DEFAULT_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgert_cuda.h"

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef unsigned long long CUdeviceptr;

#define MAX_KERNELS 512

static struct {
  CUresult (*init)(unsigned);
  CUresult (*device_get)(CUdevice *, int);
  CUresult (*ctx_create)(CUcontext *, unsigned, CUdevice);
  CUresult (*module_load_data)(CUmodule *, const void *);
  CUresult (*module_get_function)(CUfunction *, CUmodule, const char *);
  CUresult (*mem_alloc)(CUdeviceptr *, size_t);
  CUresult (*htod)(CUdeviceptr, const void *, size_t);
  CUresult (*dtoh)(void *, CUdeviceptr, size_t);
  CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *,
                     void **, void **);
  CUresult (*sync)(void);
  CUresult (*error_name)(CUresult, const char **);
} cu;

static int state = -1; /* -1: not initialised; else edgert_cuda_init's result */
static CUdeviceptr arena, consts;
static const struct edgert_cuda_model *model;
static CUfunction functions[MAX_KERNELS];

static int fail(const char *what, CUresult rc) {
  const char *name = "?";
  if (cu.error_name) cu.error_name(rc, &name);
  fprintf(stderr, "edgert-runner: %s failed: CUDA error %d (%s)\n", what, rc, name);
  return rc;
}

#define CHECK(call, what)          \
  do {                             \
    CUresult rc_ = (call);         \
    if (rc_ != 0) return fail(what, rc_); \
  } while (0)

static int load_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "edgert-runner: cannot load the CUDA driver (%s); this runner needs an NVIDIA GPU and its "
                    "driver (on a Jetson: JetPack)\n", dlerror());
    return EDGERT_CUDA_NO_DRIVER;
  }
  struct { void **slot; const char *name; } syms[] = {
      {(void **)&cu.init, "cuInit"},
      {(void **)&cu.device_get, "cuDeviceGet"},
      {(void **)&cu.ctx_create, "cuCtxCreate_v2"},
      {(void **)&cu.module_load_data, "cuModuleLoadData"},
      {(void **)&cu.module_get_function, "cuModuleGetFunction"},
      {(void **)&cu.mem_alloc, "cuMemAlloc_v2"},
      {(void **)&cu.htod, "cuMemcpyHtoD_v2"},
      {(void **)&cu.dtoh, "cuMemcpyDtoH_v2"},
      {(void **)&cu.launch, "cuLaunchKernel"},
      {(void **)&cu.sync, "cuCtxSynchronize"},
      {(void **)&cu.error_name, "cuGetErrorName"},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(lib, syms[i].name);
    if (!*syms[i].slot) {
      fprintf(stderr, "edgert-runner: the CUDA driver has no %s; update the driver\n", syms[i].name);
      return EDGERT_CUDA_NO_DRIVER;
    }
  }
  return 0;
}

static int init(const struct edgert_cuda_model *m) {
  if (m->num_kernels > MAX_KERNELS) {
    fprintf(stderr, "edgert-runner: %d kernels, at most %d\n", m->num_kernels, MAX_KERNELS);
    return EDGERT_CUDA_NO_DRIVER;
  }
  int rc = load_driver();
  if (rc) return rc;
  CUdevice dev;
  CUcontext ctx;
  CUmodule mod;
  CHECK(cu.init(0), "cuInit");
  CHECK(cu.device_get(&dev, 0), "cuDeviceGet");
  CHECK(cu.ctx_create(&ctx, 0, dev), "cuCtxCreate");
  CHECK(cu.module_load_data(&mod, m->cubin), "loading the kernels (cuModuleLoadData)");
  for (int i = 0; i < m->num_kernels; i++) CHECK(cu.module_get_function(&functions[i], mod, m->kernels[i]), m->kernels[i]);
  CHECK(cu.mem_alloc(&arena, m->arena_bytes ? m->arena_bytes : 1), "allocating the arena");
  CHECK(cu.mem_alloc(&consts, m->const_bytes ? m->const_bytes : 1), "allocating the weights");
  for (int i = 0; i < m->num_consts; i++)
    CHECK(cu.htod(consts + m->consts[i].offset, m->consts[i].data, m->consts[i].bytes), "uploading the weights");
  model = m;
  return 0;
}

int edgert_cuda_init(const struct edgert_cuda_model *m) {
  if (state < 0) state = init(m);
  return state;
}

uint64_t edgert_cuda_arena(size_t offset) { return arena + offset; }
uint64_t edgert_cuda_const(int index) { return consts + model->consts[index].offset; }

int edgert_cuda_to_device(const void *host, size_t offset, size_t bytes) {
  CHECK(cu.htod(arena + offset, host, bytes), "copying an input to the GPU");
  return 0;
}

int edgert_cuda_to_host(void *host, size_t offset, size_t bytes) {
  CHECK(cu.dtoh(host, arena + offset, bytes), "copying an output from the GPU");
  return 0;
}

int edgert_cuda_launch(int index, unsigned grid, unsigned block, const uint64_t *args, int num_args) {
  void *params[64];
  CUdeviceptr values[64];
  if (num_args > 64) return fail("too many kernel arguments", 1);
  for (int i = 0; i < num_args; i++) {
    values[i] = args[i];
    params[i] = &values[i];
  }
  CHECK(cu.launch(functions[index], grid, 1, 1, block, 1, 1, 0, NULL, params, NULL), model->kernels[index]);
  CHECK(cu.sync(), model->kernels[index]);
  return 0;
}
