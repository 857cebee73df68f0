/* Fuzz target `state`: tn_state_deserialize, the decoder of persisted policy state (the
 * policy_state.data blobs of the store, and the state handed from one policy generation to
 * the next). Runs in a Lua state capped at policy_memory_max's smallest allowed value, as a
 * policy generation's is. Whatever decodes must encode again (tn_state_serialize) — or the
 * node would read back a state it can never save — and the re-encoding must decode to a
 * value of the same encoded size. */
#include "fz_common.h"
#include "tn_lua.h"
#include "tn_policy_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STATE_MEM_MAX (1u << 20) /* policy_memory_max lower bound (tn_config_keys.h) */
#define STATE_OUT_MAX (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16)) return 0;
    tn_lua_mem_t mem = {0, 0, STATE_MEM_MAX};
    lua_State *L = lua_newstate(tn_lua_alloc, &mem);
    if (!L) return 0;
    int rc = tn_state_deserialize(L, data, size);
    FZ_CHECK(rc == TN_OK || rc == TN_EINVAL || rc == TN_ENOMEM, "rc %d", rc);
    FZ_CHECK(lua_gettop(L) == (rc == TN_OK ? 1 : 0), "stack %d after rc %d", lua_gettop(L), rc);
    if (rc == TN_OK) {
        char err[256];
        tn_buf_t out, again;
        mem.max = SIZE_MAX; /* the round trip is the check, not the cap */
        int s = tn_state_serialize(L, -1, &out, STATE_OUT_MAX, err, sizeof err);
        FZ_CHECK(s == TN_OK, "decoded state does not encode again: %s", err);
        FZ_CHECK(out.len <= size, "re-encoding grew from %zu to %zu bytes", size, out.len);
        lua_settop(L, 0);
        FZ_CHECK(tn_state_deserialize(L, out.p, out.len) == TN_OK, "re-encoding does not decode");
        FZ_CHECK(tn_state_serialize(L, -1, &again, STATE_OUT_MAX, err, sizeof err) == TN_OK,
                 "second encoding: %s", err);
        FZ_CHECK(again.len == out.len, "encoded size changed %zu -> %zu", out.len, again.len);
        tn_buf_free(&out);
        tn_buf_free(&again);
    }
    lua_close(L);
    return 0;
}
