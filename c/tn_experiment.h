/* Lua-defined message types (protocol experiments): a policy or experiment file registers a
 * type in the reserved range 0x8000-0xFFFF with `tn.message{...}`, sends it with `tn.send` /
 * `tn.broadcast`, and handles it through the on_message hook (or a per-type handler), called
 * through the policy host's one call helper with the hook budget and fallback accounting.
 * The core still frames, encrypts, rate-limits and (when asked) dedups these messages.
 * Registrations belong to a policy generation: a reload rebuilds them, and a type that the
 * generation in force did not register is ignored and counted, never punished.
 * The operator's side is policies/README.md ("Protocol experiments"). */
#ifndef TN_EXPERIMENT_H
#define TN_EXPERIMENT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tn_node tn_node_t;
typedef struct tn_session tn_session_t;
typedef struct lua_State lua_State;
typedef struct tn_policy_gen tn_policy_gen_t;

#define TN_EXP_TYPES_MAX 32           /* registrations per generation */
#define TN_EXP_FIELDS_MAX 16          /* fields per schema */
#define TN_EXP_NAME_MAX 32            /* type and field names: a-z 0-9 _ */
#define TN_EXP_PAYLOAD_MAX (4u << 20) /* bytes of one message payload (and < max_frame) */
#define TN_EXP_RATE_DEFAULT 100       /* messages per second per peer and type, received */
#define TN_EXP_BUCKETS 1024           /* receive token buckets (session x type), hashed */

/* A message from an established session with a type >= 0x8000. Returns false when the
 * generation in force did not register the type (the caller counts it as ignored). */
bool tn_exp_on_message(tn_node_t *n, tn_session_t *s, uint16_t type, const uint8_t *p,
                       uint32_t len);

/* Adds tn.message, tn.send, tn.broadcast, tn.peers, tn.self and tn.feature to the global
 * `tn` table of a generation being built (tn_policy_api.c calls it). */
void tn_exp_api_open(lua_State *L, tn_policy_gen_t *g);

#endif
