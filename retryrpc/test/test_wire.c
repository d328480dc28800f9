/* Frame and envelope codecs against the spec's byte vectors (retryrpc.md 3, 5, 15). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rrpc_internal.h"

static void assert_frame(const rrpc_frame *f, const char *hdr_hex, const char *body) {
  uint8_t hdr[RRPC_HDR_LEN];
  for (size_t i = 0; i < RRPC_HDR_LEN; i++) {
    unsigned v;
    sscanf(hdr_hex + 3 * i, "%02x", &v);
    hdr[i] = (uint8_t)v;
  }
  assert_int_equal(f->len, RRPC_HDR_LEN + strlen(body));
  assert_memory_equal(f->p, hdr, RRPC_HDR_LEN);
  assert_memory_equal(f->p + RRPC_HDR_LEN, body, strlen(body));
}

static void test_request_vector(void **state) {
  (void)state;
  json_t *req = json_pack("{s:s}", "Message", "Ping Me!");
  rrpc_frame f;
  assert_int_equal(rrpc_request_encode(1, 1, 0, "RpcTestPing", req, &f), 0);
  assert_frame(&f, "00 00 00 6c 00 01 00 01 00 01 ca fe fe ed",
               "{\"myuniqueid\":1,\"requestid\":1,\"highestReplySeen\":0,"
               "\"method\":\"RpcTestPing\",\"params\":[{\"Message\":\"Ping Me!\"}]}");
  rrpc_request r;
  assert_int_equal(rrpc_request_decode(f.p + RRPC_HDR_LEN, f.len - RRPC_HDR_LEN, &r), 0);
  assert_int_equal(r.client_id, 1);
  assert_int_equal(r.request_id, 1);
  assert_int_equal(r.highest_reply_seen, 0);
  assert_string_equal(r.method, "RpcTestPing");
  assert_true(json_equal(r.params0, req));
  rrpc_request_clear(&r);
  free(f.p);
  json_decref(req);
}

static void test_reply_vectors(void **state) {
  (void)state;
  json_t *res = json_pack("{s:s}", "Message", "pong 8 bytes");
  rrpc_frame f;
  assert_int_equal(rrpc_reply_encode(1, 1, "", res, &f), 0);
  assert_frame(&f, "00 00 00 4e 00 01 00 01 00 01 ca fe fe ed",
               "{\"myuniqueid\":1,\"requestid\":1,\"errstr\":\"\","
               "\"result\":{\"Message\":\"pong 8 bytes\"}}");
  rrpc_reply r;
  assert_int_equal(rrpc_reply_decode(f.p + RRPC_HDR_LEN, f.len - RRPC_HDR_LEN, &r), 0);
  assert_int_equal(r.request_id, 1);
  assert_string_equal(r.errstr, "");
  assert_true(json_equal(r.result, res));
  rrpc_reply_clear(&r);
  free(f.p);
  /* an error reply carries null whatever the result */
  assert_int_equal(rrpc_reply_encode(1, 4, "errno: 2", res, &f), 0);
  const char *want = "{\"myuniqueid\":1,\"requestid\":4,\"errstr\":\"errno: 2\",\"result\":null}";
  assert_int_equal(strlen(want), 64);
  assert_frame(&f, "00 00 00 40 00 01 00 01 00 01 ca fe fe ed", want);
  assert_int_equal(rrpc_reply_decode(f.p + RRPC_HDR_LEN, f.len - RRPC_HDR_LEN, &r), 0);
  assert_string_equal(r.errstr, "errno: 2");
  assert_true(json_is_null(r.result));
  rrpc_reply_clear(&r);
  free(f.p);
  json_decref(res);
}

static void test_handshake_frames(void **state) {
  (void)state;
  rrpc_frame f;
  assert_int_equal(rrpc_frame_make(RRPC_MSG_ASK_ID, NULL, 0, &f), 0);
  assert_frame(&f, "00 00 00 00 00 01 00 01 00 03 ca fe fe ed", "");
  free(f.p);
  char b[24];
  assert_int_equal(rrpc_id_encode(1, b), 1);
  assert_int_equal(rrpc_frame_make(RRPC_MSG_RETURN_ID, b, 1, &f), 0);
  assert_frame(&f, "00 00 00 01 00 01 00 01 00 04 ca fe fe ed", "1");
  free(f.p);
  assert_int_equal(rrpc_frame_make(RRPC_MSG_PASS_ID, b, 1, &f), 0);
  assert_frame(&f, "00 00 00 01 00 01 00 01 00 05 ca fe fe ed", "1");
  free(f.p);
  const char *up = "server msg back to client";
  assert_int_equal(rrpc_frame_make(RRPC_MSG_UPCALL, up, strlen(up), &f), 0);
  assert_frame(&f, "00 00 00 19 00 01 00 01 00 02 ca fe fe ed", up);
  free(f.p);
}

static void test_header_decode(void **state) {
  (void)state;
  uint8_t h[RRPC_HDR_LEN];
  rrpc_hdr d;
  rrpc_hdr_encode(h, 100, RRPC_MSG_RPC);
  assert_int_equal(rrpc_hdr_decode(h, 100, &d), 0);
  assert_int_equal(d.len, 100);
  assert_int_equal(d.type, RRPC_MSG_RPC);
  assert_int_equal(rrpc_hdr_decode(h, 99, &d), -EMSGSIZE);
  uint8_t bad[RRPC_HDR_LEN];
  memcpy(bad, h, sizeof h);
  bad[13] = 0xee; /* magic */
  assert_int_equal(rrpc_hdr_decode(bad, 100, &d), -EINVAL);
  memcpy(bad, h, sizeof h);
  bad[5] = 2; /* protocol */
  assert_int_equal(rrpc_hdr_decode(bad, 100, &d), -EINVAL);
  memcpy(bad, h, sizeof h);
  bad[7] = 2; /* version */
  assert_int_equal(rrpc_hdr_decode(bad, 100, &d), -EINVAL);
  memcpy(bad, h, sizeof h);
  bad[9] = 6; /* type */
  assert_int_equal(rrpc_hdr_decode(bad, 100, &d), -EINVAL);
  bad[9] = 0;
  assert_int_equal(rrpc_hdr_decode(bad, 100, &d), -EINVAL);
}

static void test_go_escaping(void **state) {
  (void)state;
  rrpc_frame f;
  assert_int_equal(rrpc_reply_encode(7, 9, "a<b>&\"\\\n\x01\xff\xe2\x80\xa8z", NULL, &f), 0);
  const char *want = "{\"myuniqueid\":7,\"requestid\":9,\"errstr\":"
                     "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\ufffd\\u2028z\","
                     "\"result\":null}";
  assert_int_equal(f.len - RRPC_HDR_LEN, strlen(want));
  assert_memory_equal(f.p + RRPC_HDR_LEN, want, strlen(want));
  free(f.p);
}

static void test_decode_tolerance_and_errors(void **state) {
  (void)state;
  rrpc_request r;
  const char *ok = "{\"MyUniqueID\":3,\"RequestID\":5,\"highestreplyseen\":4,"
                   "\"METHOD\":\"X\",\"extra\":[1,2],\"params\":[7,8]}";
  assert_int_equal(rrpc_request_decode(ok, strlen(ok), &r), 0);
  assert_int_equal(r.client_id, 3);
  assert_int_equal(r.request_id, 5);
  assert_int_equal(r.highest_reply_seen, 4);
  assert_string_equal(r.method, "X");
  assert_int_equal(json_integer_value(r.params0), 7);
  rrpc_request_clear(&r);
  const char *bad[] = {
      "", "{", "[]", "17", "{\"requestid\":-1}", "{\"requestid\":\"1\"}",
      "{\"method\":3}", "{\"params\":{}}", "{\"requestid\":1.5}", "\xff\xfe",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(rrpc_request_decode(bad[i], strlen(bad[i]), &r), -EINVAL);
  rrpc_reply p;
  assert_int_equal(rrpc_reply_decode("{\"errstr\":5}", 12, &p), -EINVAL);
  assert_int_equal(rrpc_reply_decode("{}", 2, &p), 0);
  assert_string_equal(p.errstr, "");
  assert_true(json_is_null(p.result));
  rrpc_reply_clear(&p);
}

static void test_ids(void **state) {
  (void)state;
  uint64_t id;
  assert_int_equal(rrpc_id_decode("17", 2, &id), 0);
  assert_int_equal(id, 17);
  assert_int_equal(rrpc_id_decode("18446744073709551615", 20, &id), 0);
  assert_true(id == UINT64_MAX);
  assert_int_equal(rrpc_id_decode("18446744073709551616", 20, &id), -EINVAL);
  assert_int_equal(rrpc_id_decode("", 0, &id), -EINVAL);
  assert_int_equal(rrpc_id_decode("-1", 2, &id), -EINVAL);
  assert_int_equal(rrpc_id_decode(" 1", 2, &id), -EINVAL);
  assert_int_equal(rrpc_id_decode("\"1\"", 3, &id), -EINVAL);
}

/* Upstream testBtree (spec 5). */
static void test_highest_consecutive(void **state) {
  (void)state;
  rrpc_seen s;
  rrpc_seen_init(&s);
  const uint64_t a[] = {10, 5, 11};
  for (size_t i = 0; i < 3; i++)
    rrpc_seen_add(&s, a[i]);
  assert_int_equal(s.hc, 0);
  for (uint64_t i = 4; i >= 1; i--)
    rrpc_seen_add(&s, i);
  assert_int_equal(s.hc, 5);
  assert_int_equal(s.set.n, 2); /* {10, 11} above N = 5 */
  for (uint64_t i = 6; i <= 9; i++)
    rrpc_seen_add(&s, i);
  assert_int_equal(s.hc, 11);
  assert_int_equal(s.set.n, 0);
  rrpc_seen_add(&s, 3); /* already below N */
  assert_int_equal(s.hc, 11);
  rrpc_seen_free(&s);
}

typedef struct {
  rrpc_map_ent me;
  int v;
} item;

static void test_map(void **state) {
  (void)state;
  rrpc_map m;
  rrpc_map_init(&m);
  enum { N = 1000 };
  item *it = calloc(N, sizeof *it);
  for (int i = 0; i < N; i++) {
    it[i].me.key = (uint64_t)i * 7919;
    it[i].v = i;
    assert_int_equal(rrpc_map_insert(&m, &it[i].me), 0);
  }
  assert_int_equal(m.n, N);
  for (int i = 0; i < N; i += 2)
    assert_ptr_equal(rrpc_map_remove(&m, (uint64_t)i * 7919), &it[i].me);
  assert_null(rrpc_map_find(&m, 0));
  assert_ptr_equal(rrpc_map_find(&m, 7919), &it[1].me);
  size_t pos = 0, seen = 0;
  long sum = 0;
  rrpc_map_ent *e = NULL;
  while ((e = rrpc_map_next(&m, &pos, e)) != NULL) {
    seen++;
    sum += rrpc_container_of(e, item, me)->v;
  }
  assert_int_equal(seen, N / 2);
  assert_int_equal(sum, (long)(N / 2) * (N / 2)); /* 1 + 3 + ... + 999 */
  rrpc_map_free(&m);
  free(it);
}

static void test_errno_from_errstr(void **state) {
  (void)state;
  assert_int_equal(rrpc_errno_from_errstr("errno: 2"), -ENOENT);
  assert_int_equal(rrpc_errno_from_errstr("errno: 2x"), -EREMOTEIO);
  assert_int_equal(rrpc_errno_from_errstr("boom"), -EREMOTEIO);
  assert_int_equal(rrpc_errno_from_errstr(NULL), -EREMOTEIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_vector),
      cmocka_unit_test(test_reply_vectors),
      cmocka_unit_test(test_handshake_frames),
      cmocka_unit_test(test_header_decode),
      cmocka_unit_test(test_go_escaping),
      cmocka_unit_test(test_decode_tolerance_and_errors),
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_highest_consecutive),
      cmocka_unit_test(test_map),
      cmocka_unit_test(test_errno_from_errstr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
