/* A QEMU TCG plugin that counts executed guest instructions into a shared file, so that a
 * program running under qemu-user can read its own exact instruction count (edgert's Linux
 * runner maps the file and uses it as its timer). The file is EDGERT_ICOUNT_FILE in the
 * environment, which qemu-user passes on to the guest as well: one 8-byte counter.
 *
 * Each translated block adds its instruction count when it starts (an inline add, no
 * callback), so the count is exact for code that runs blocks to their end, and identical
 * run to run for the same program and input.
 *
 * The plugin interface is QEMU's documented C API (include/qemu/qemu-plugin.h, API version
 * 1, QEMU 7.2 and later); the few declarations used are written out here. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t *counter;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, counter, qemu_plugin_tb_n_insns(tb));
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                                               int argc, char **argv) {
  (void)info, (void)argc, (void)argv;
  const char *path = getenv("EDGERT_ICOUNT_FILE");
  if (path == NULL || *path == 0) {
    fprintf(stderr, "edgert icount plugin: set EDGERT_ICOUNT_FILE to the counter file\n");
    return -1;
  }
  int fd = open(path, O_RDWR | O_CREAT, 0600);
  if (fd < 0 || ftruncate(fd, sizeof(uint64_t)) != 0) {
    perror(path);
    return -1;
  }
  void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    perror("edgert icount plugin: mmap");
    return -1;
  }
  counter = (uint64_t *)p;
  *counter = 0;
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  return 0;
}
