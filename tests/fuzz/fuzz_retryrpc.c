/*
 * libFuzzer target for retryrpc's decoders: the input is read as a byte
 * stream of frames, as a connection would deliver it; every frame body goes
 * through the decoder its type selects (RPC bodies through both the request
 * and the reply decoder). Decoded envelopes are re-encoded and decoded again
 * and must come back equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rrpc_internal.h"

#define MAX_FRAME 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip_request(const rrpc_request *r) {
  rrpc_frame f;
  if (rrpc_request_encode(r->client_id, r->request_id, r->highest_reply_seen, r->method,
                          r->params0, &f) != 0)
    return;
  rrpc_request again;
  /* Our own encoding must decode (unless a string held invalid UTF-8,
   * which cannot come out of jansson). */
  if (rrpc_request_decode(f.p + RRPC_HDR_LEN, f.len - RRPC_HDR_LEN, &again) != 0)
    abort();
  if (again.request_id != r->request_id || again.client_id != r->client_id ||
      again.highest_reply_seen != r->highest_reply_seen || strcmp(again.method, r->method) ||
      !json_equal(again.params0, r->params0))
    abort();
  rrpc_request_clear(&again);
  free(f.p);
}

static void round_trip_reply(const rrpc_reply *r) {
  rrpc_frame f;
  if (rrpc_reply_encode(r->client_id, r->request_id, r->errstr, r->result, &f) != 0)
    return;
  rrpc_reply again;
  if (rrpc_reply_decode(f.p + RRPC_HDR_LEN, f.len - RRPC_HDR_LEN, &again) != 0)
    abort();
  if (again.request_id != r->request_id || strcmp(again.errstr, r->errstr))
    abort();
  rrpc_reply_clear(&again);
  free(f.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  while (size >= RRPC_HDR_LEN) {
    rrpc_hdr h;
    if (rrpc_hdr_decode(data, MAX_FRAME, &h) != 0)
      return 0; /* the server would close the connection here */
    data += RRPC_HDR_LEN;
    size -= RRPC_HDR_LEN;
    if (h.len > size)
      return 0; /* short read */
    uint64_t id;
    switch (h.type) {
    case RRPC_MSG_RPC: {
      rrpc_request rq;
      if (rrpc_request_decode(data, h.len, &rq) == 0) {
        round_trip_request(&rq);
        rrpc_request_clear(&rq);
      }
      rrpc_reply rp;
      if (rrpc_reply_decode(data, h.len, &rp) == 0) {
        round_trip_reply(&rp);
        rrpc_reply_clear(&rp);
      }
      break;
    }
    case RRPC_MSG_RETURN_ID:
    case RRPC_MSG_PASS_ID:
      if (rrpc_id_decode(data, h.len, &id) == 0) {
        char b[24];
        int n = rrpc_id_encode(id, b);
        uint64_t again;
        if (rrpc_id_decode(b, (size_t)n, &again) != 0 || again != id)
          abort();
      }
      break;
    default:
      break; /* Upcall payloads are opaque; AskMyUniqueID has no body */
    }
    data += h.len;
    size -= h.len;
  }
  return 0;
}
