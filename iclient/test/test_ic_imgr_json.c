/* RPC bodies: requests encode with the original's member names; replies
 * decode with Go's leniency (missing/null = 0) and refuse what does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_imgr_json.h"

static void expect_json(json_t *j, const char *want) {
  assert_non_null(j);
  char *got = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
  json_decref(j);
}

static json_t *parse(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  assert_non_null(j);
  return j;
}

static void test_requests(void **state) {
  (void)state;
  ic_mount_req m = {"testvol", "AUTH_tk"};
  expect_json(ic_json_mount_req(&m), "{\"AuthToken\":\"AUTH_tk\",\"VolumeName\":\"testvol\"}");
  ic_renew_mount_req rm = {"mid", "tok"};
  expect_json(ic_json_renew_mount_req(&rm), "{\"AuthToken\":\"tok\",\"MountID\":\"mid\"}");
  ic_mount_id_req mi = {"mid"};
  expect_json(ic_json_mount_id_req(&mi), "{\"MountID\":\"mid\"}");
  ic_inode_req ir = {"mid", 42};
  expect_json(ic_json_inode_req(&ir), "{\"InodeNumber\":42,\"MountID\":\"mid\"}");
  ic_adjust_open_count_req ar = {"mid", 7, -1};
  expect_json(ic_json_adjust_open_count_req(&ar),
              "{\"Adjustment\":-1,\"InodeNumber\":7,\"MountID\":\"mid\"}");
  ic_lease_req lr = {"mid", 9, IC_LEASE_REQUEST_PROMOTE};
  expect_json(ic_json_lease_req(&lr),
              "{\"InodeNumber\":9,\"LeaseRequestType\":1,\"MountID\":\"mid\"}");
  ic_inode_table_entry e[2] = {{1, 0x10, 174}, {5, 0x11, 200}};
  uint64_t deref[1] = {3};
  ic_put_inode_table_entries_req pr = {"mid", e, 2, 1, 500, -20, deref, 1};
  expect_json(ic_json_put_inode_table_entries_req(&pr),
              "{\"DereferencedObjectNumberArray\":[3],\"MountID\":\"mid\","
              "\"SuperBlockInodeBytesReferencedAdjustment\":-20,"
              "\"SuperBlockInodeBytesWrittenAdjustment\":500,"
              "\"SuperBlockInodeObjectCountAdjustment\":1,"
              "\"UpdatedInodeTableEntryArray\":[{\"InodeHeadLength\":174,"
              "\"InodeHeadObjectNumber\":16,\"InodeNumber\":1},{\"InodeHeadLength\":200,"
              "\"InodeHeadObjectNumber\":17,\"InodeNumber\":5}]}");
  ic_put_inode_table_entries_req empty = {"mid", NULL, 0, 0, 0, 0, NULL, 0};
  expect_json(ic_json_put_inode_table_entries_req(&empty),
              "{\"DereferencedObjectNumberArray\":[],\"MountID\":\"mid\","
              "\"SuperBlockInodeBytesReferencedAdjustment\":0,"
              "\"SuperBlockInodeBytesWrittenAdjustment\":0,"
              "\"SuperBlockInodeObjectCountAdjustment\":0,\"UpdatedInodeTableEntryArray\":[]}");
}

static void test_replies(void **state) {
  (void)state;
  json_t *j = parse("{\"MountID\":\"abcdefghij0123456789\"}");
  ic_mount_reply mr;
  assert_int_equal(ic_json_mount_reply(j, &mr), 0);
  assert_string_equal(mr.mount_id, "abcdefghij0123456789");
  json_decref(j);

  j = parse("{\"NumInodes\":3,\"ObjectCount\":4,\"BytesWritten\":5,\"BytesReferenced\":6}");
  ic_volume_status_reply vs;
  assert_int_equal(ic_json_volume_status_reply(j, &vs), 0);
  assert_int_equal(vs.num_inodes, 3);
  assert_int_equal(vs.object_count, 4);
  assert_int_equal(vs.bytes_written, 5);
  assert_int_equal(vs.bytes_referenced, 6);
  json_decref(j);
  j = parse("{\"NumInodes\":3,\"ObjectSize\":77}"); /* an older imgr */
  assert_int_equal(ic_json_volume_status_reply(j, &vs), 0);
  assert_int_equal(vs.bytes_written, 77);
  assert_int_equal(vs.object_count, 0);
  json_decref(j);

  j = parse("{\"NextNonce\":100,\"NumNoncesFetched\":100,\"Extra\":true}");
  ic_fetch_nonce_range_reply nr;
  assert_int_equal(ic_json_fetch_nonce_range_reply(j, &nr), 0);
  assert_int_equal(nr.next_nonce, 100);
  assert_int_equal(nr.num_nonces_fetched, 100);
  json_decref(j);

  j = parse("{\"InodeHeadObjectNumber\":2,\"InodeHeadLength\":null}");
  ic_get_inode_table_entry_reply gr;
  assert_int_equal(ic_json_get_inode_table_entry_reply(j, &gr), 0);
  assert_int_equal(gr.inode_head_object_number, 2);
  assert_int_equal(gr.inode_head_length, 0);
  json_decref(j);

  j = parse("{\"LeaseResponseType\":3}");
  ic_lease_reply lr;
  assert_int_equal(ic_json_lease_reply(j, &lr), 0);
  assert_int_equal(lr.lease_response_type, IC_LEASE_RESPONSE_EXCLUSIVE);
  json_decref(j);
  assert_int_equal(ic_json_lease_reply(NULL, &lr), 0); /* null reply: all zero */
  assert_int_equal(lr.lease_response_type, IC_LEASE_RESPONSE_DENIED);
}

static void test_bad_replies(void **state) {
  (void)state;
  const char *bad_lease[] = {"{\"LeaseResponseType\":-1}",
                             "{\"LeaseResponseType\":4294967296}",
                             "{\"LeaseResponseType\":1.5}",
                             "{\"LeaseResponseType\":\"1\"}",
                             "[1]",
                             "7"};
  for (size_t i = 0; i < sizeof(bad_lease) / sizeof(bad_lease[0]); i++) {
    json_t *j = parse(bad_lease[i]);
    ic_lease_reply lr = {99};
    assert_int_equal(ic_json_lease_reply(j, &lr), -EINVAL);
    assert_int_equal(lr.lease_response_type, 0);
    json_decref(j);
  }
  json_t *j =
      parse("{\"MountID\":\"0123456789012345678901234567890123456789012345678901234567890123\"}");
  ic_mount_reply mr;
  assert_int_equal(ic_json_mount_reply(j, &mr), -EINVAL); /* 64 characters: too long */
  json_decref(j);
  j = parse("{\"MountID\":\"a\\u0000b\"}");
  assert_int_equal(ic_json_mount_reply(j, &mr), -EINVAL); /* embedded NUL */
  json_decref(j);
  j = parse("{\"MountID\":5}");
  assert_int_equal(ic_json_mount_reply(j, &mr), -EINVAL);
  json_decref(j);
  j = parse("{\"NextNonce\":-5}");
  ic_fetch_nonce_range_reply nr;
  assert_int_equal(ic_json_fetch_nonce_range_reply(j, &nr), -EINVAL);
  assert_int_equal(nr.next_nonce, 0);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_requests),
      cmocka_unit_test(test_replies),
      cmocka_unit_test(test_bad_replies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
