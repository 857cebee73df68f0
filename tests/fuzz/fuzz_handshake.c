/* Fuzz target `handshake`: the handshake messages — the peer's first flight
 * (tn_hs_read_flight: prologue, ephemeral key) and its auth payload (tn_hs_verify: identity
 * and signature over the transcript). Input: role byte (bit 0 set: we are the initiator),
 * the 48-byte flight, then optionally the 96-byte auth payload. The real counterpart flight
 * must give the keys the counterpart derived, and its real auth must verify; whatever
 * verifies must name the identity it carries. */
#include "fz_common.h"

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 + TN_FLIGHT1_LEN || size > 1 + TN_FLIGHT1_LEN + TN_AUTH_LEN) return 0;
    fz_init();
    bool initiator = data[0] & 1;
    const uint8_t *flight = data + 1, *auth = data + 1 + TN_FLIGHT1_LEN;
    bool has_auth = size == 1 + TN_FLIGHT1_LEN + TN_AUTH_LEN;
    /* us and the counterpart whose flight and auth we would expect */
    tn_hs_t hs = initiator ? FZ.peer_start : FZ.local_start;
    const tn_hs_t *them = initiator ? &FZ.local_authwait : &FZ.peer_done;
    const uint8_t *their_auth = initiator ? FZ.local_auth : FZ.peer_auth;
    const tn_prologue_t *ours = initiator ? &FZ.pro_i : &FZ.pro_r;

    int rc = tn_hs_read_flight(&hs, ours, flight);
    FZ_CHECK(rc == TN_OK || rc == TN_EMAGIC || rc == TN_EVERSION || rc == TN_ECRYPTO, "rc %d", rc);
    bool canonical = memcmp(flight, them->flight_mine, TN_FLIGHT1_LEN) == 0;
    if (canonical) {
        FZ_CHECK(rc == TN_OK, "the counterpart's own flight is refused (%d)", rc);
        FZ_CHECK(memcmp(hs.rx.key, them->tx.key, TN_KEY_LEN) == 0 &&
                     memcmp(hs.tx.key, them->rx.key, TN_KEY_LEN) == 0,
                 "keys differ from the counterpart's");
    }
    if (rc == TN_OK && has_auth) {
        int v = tn_hs_verify(&hs, auth);
        FZ_CHECK(v == TN_OK || v == TN_ECRYPTO, "verify rc %d", v);
        if (v == TN_OK) FZ_CHECK(memcmp(hs.their_id, auth, TN_ID_LEN) == 0, "their_id");
        if (canonical && memcmp(auth, their_auth, TN_AUTH_LEN) == 0)
            FZ_CHECK(v == TN_OK, "the counterpart's own auth does not verify");
    }
    tn_hs_wipe(&hs);
    return 0;
}
