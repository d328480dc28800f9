/* libFuzzer target of iclient's decoders of imgr replies (ic_imgr_json.h):
 * any bytes are parsed as JSON and handed to every reply decoder, which
 * must either accept or answer -EINVAL. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ic_imgr_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t e;
  json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (!j) return 0;
  ic_mount_reply m;
  ic_volume_status_reply vs;
  ic_fetch_nonce_range_reply nr;
  ic_get_inode_table_entry_reply gr;
  ic_lease_reply lr;
  int rc[5] = {ic_json_mount_reply(j, &m), ic_json_volume_status_reply(j, &vs),
               ic_json_fetch_nonce_range_reply(j, &nr), ic_json_get_inode_table_entry_reply(j, &gr),
               ic_json_lease_reply(j, &lr)};
  for (int i = 0; i < 5; i++)
    if (rc[i] != 0 && rc[i] != -EINVAL) abort();
  if (rc[0] == 0 && m.mount_id[IC_MOUNT_ID_MAX - 1] != '\0') abort();
  json_decref(j);
  return 0;
}
