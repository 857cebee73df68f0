/* Fuzz target `prologue`: tn_prologue_check, the first 16 bytes a peer sends. Input: their
 * 16 bytes, or our 16 then theirs (to vary our side of the version check too). The decoded
 * prologue must re-encode to the input, the verdict must be one of the documented codes, and
 * compatibility must be symmetric between two well-formed prologues of one network. */
#include "fz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size != TN_PROLOGUE_LEN && size != 2 * TN_PROLOGUE_LEN) return 0;
    fz_init();
    tn_prologue_t ours = FZ.pro_r, theirs;
    const uint8_t *in = data;
    if (size == 2 * TN_PROLOGUE_LEN) {
        memset(&ours, 0xa5, sizeof ours); /* every field is overwritten */
        tn_prologue_check(&FZ.pro_r, data, &ours);
        in = data + TN_PROLOGUE_LEN;
    }
    int rc = tn_prologue_check(&ours, in, &theirs);
    FZ_CHECK(rc == TN_OK || rc == TN_EMAGIC || rc == TN_EVERSION, "rc %d", rc);
    uint8_t enc[TN_PROLOGUE_LEN];
    tn_prologue_encode(&theirs, enc);
    FZ_CHECK(memcmp(enc, in, TN_PROLOGUE_LEN) == 0, "prologue does not re-encode to its input");
    bool same_net = memcmp(ours.magic, theirs.magic, 4) == 0;
    FZ_CHECK(same_net == (rc != TN_EMAGIC), "magic verdict %d", rc);
    if (rc == TN_OK)
        FZ_CHECK(theirs.min_version <= theirs.version && theirs.version >= ours.min_version &&
                     ours.version >= theirs.min_version,
                 "accepted versions %u..%u against ours %u..%u", theirs.min_version, theirs.version,
                 ours.min_version, ours.version);
    if (same_net && ours.min_version <= ours.version && theirs.min_version <= theirs.version) {
        uint8_t ours_enc[TN_PROLOGUE_LEN];
        tn_prologue_t x;
        tn_prologue_encode(&ours, ours_enc);
        int rev = tn_prologue_check(&theirs, ours_enc, &x);
        FZ_CHECK((rc == TN_OK) == (rev == TN_OK), "compatibility not symmetric: %d vs %d", rc, rev);
    }
    return 0;
}
