/* Fuzz target `frame`: the session read path after TCP — handshake flight, frame headers,
 * frame decryption (tn_frame_len, tn_frame_open), the auth frame and message framing
 * (tn_msg_next) — through the model of tn_session.c consume() in fz_common.c. The input
 * builds a byte stream (fz_common.h: frames sealed with the peer's real key, raw bytes,
 * counter skips, bit flips); it is fed once whole and once split at random points, and the
 * two runs must see the same events (messages, open, close reason) and end in the same
 * state. */
#include "fz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16)) return 0;
    fz_init();
    fz_stream_t st;
    fz_stream_build(&st, data, size, &FZ.peer_done.tx, FZ.peer_auth);
    const tn_hs_t *hs = st.start == FZ_START_FLIGHT ? &FZ.local_start : &FZ.local_authwait;
    const uint8_t *s = st.stream.p;
    size_t n = st.stream.len;

    fz_model_t whole, split;
    fz_model_init(&whole, st.start, hs);
    fz_model_consume(&whole, s, n);
    fz_model_init(&split, st.start, hs);
    uint32_t seed = st.seed;
    for (size_t off = 0; off < n;) {
        size_t want = 1 + fz_rand(&seed) % st.chunk_max; /* TN_MIN evaluates twice */
        size_t take = TN_MIN(n - off, want);
        fz_model_consume(&split, s + off, take);
        off += take;
    }
    FZ_CHECK(whole.events == split.events, "events differ whole/split (%u/%u msgs, close %d/%d)",
             whole.n_msgs, split.n_msgs, whole.close, split.close);
    FZ_CHECK(whole.state == split.state && whole.close == split.close, "end state differs");
    if (whole.state != TN_SS_CLOSING)
        FZ_CHECK(whole.hdr_have == split.hdr_have && whole.frame_need == split.frame_need &&
                     whole.rpart.len == split.rpart.len && whole.rx.counter == split.rx.counter,
                 "partial-read state differs whole/split");
    fz_model_free(&whole);
    fz_model_free(&split);
    tn_buf_free(&st.stream);
    return 0;
}
