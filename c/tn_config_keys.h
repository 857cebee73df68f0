/* Every configuration key, its type, default, bounds and documentation: the one place where
 * defaults live. C code, the config loader, `timenetd --print-config` and the policy API all
 * read this list. Durations are seconds (fractions allowed, so tests run at sub-second
 * scale). "Seed §N" refers to sections of the requirements note (seed/000_*.txt).
 *
 * INT(name, default, min, max, doc)       64-bit integer
 * NUM(name, default, min, max, doc)       number (durations in seconds)
 * BOOL(name, default, doc)
 * STR(name, default, allowed, doc)        allowed = "a|b|c" or NULL for free text
 * LIST(name, max_items, doc)              list of strings, default empty
 * NLIST(name, max_items, default, doc)    list of numbers, default given as "1 2 3"
 */
#ifndef TN_CONFIG_KEYS_H
#define TN_CONFIG_KEYS_H

#define TN_CONFIG_KEYS(INT, NUM, BOOL, STR, LIST, NLIST)                                           \
    STR(node_name, "", NULL, "Name shown in every log line; empty = the host name (seed §14).")    \
    STR(network, "testnet", "testnet|mainnet",                                                     \
        "Network: testnet (magic 'TIME' = 84 73 77 69, seed §11) or mainnet (C0 1D 7E 4D).")       \
    STR(listen, "127.0.0.1:24100", NULL,                                                           \
        "Address and port to accept peers on: 'IPv4:port' or '[IPv6]:port'; port 0 = none.")       \
    STR(advertise, "", NULL, "Address peers should dial us at; empty = the listen address.")       \
    STR(data_dir, "var", NULL, "Directory for the key, store, lock and control socket.")           \
    STR(log_level, "info", "debug|info|warn|error", "Least severe level written to the log.")      \
    STR(log_file, "", NULL,                                                                        \
        "File to append the log to, reopened on SIGUSR1 (logrotate); empty = stderr (journald).")   \
    STR(metrics_listen, "auto", NULL,                                                              \
        "Prometheus /metrics over HTTP: 'IP:port'; 'auto' = the listen port + 1 on the listen IP " \
        "if it is a loopback address, else on 127.0.0.1; empty = off.")                            \
    BOOL(allow_local_addresses, false,                                                             \
         "Accept loopback/private addresses from peer exchange (test and demo networks).")         \
    INT(max_peers, 50, 1, 100000, "Most ordinary peers at once (seed §10 Peer Limits).")           \
    INT(min_peers, 8, 0, 100000, "Dial more peers while below this (seed §10 Peer Limits).")       \
    INT(masternode_slots, 128, 0, 100000,                                                          \
        "Sessions with active masternodes kept beyond max_peers (seed §23); the status is "        \
        "proven by the handshake, never claimed.")                                                 \
    NUM(discovery_interval, 5, 0.05, 3600,                                                         \
        "How often the node checks its peers and, below min_peers, looks for more (seed §8); "     \
        "a lost peer or failed dial checks at once. min_peers = 0 turns discovery off.")           \
    STR(peer_api_url, "", NULL,                                                                    \
        "HTTP peer API (seed §8 method 2): an http(s) URL answering a JSON list of addresses; "    \
        "empty = none.")                                                                           \
    NUM(peer_api_timeout, 10, 0.05, 300, "Deadline of one peer API request, connect included.")   \
    INT(peer_api_max_bytes, 262144, 1024, 67108864,                                               \
        "Largest peer API answer; a larger one is ignored.")                                       \
    NUM(peer_api_interval, 300, 0.05, 86400, "Least time between two peer API requests.")          \
    NUM(peer_exchange_interval, 600, 0.05, 86400,                                                  \
        "Least time between two get_peers to one peer, and between two answers to one peer.")      \
    NUM(peer_exchange_rate, 0.1, 0, 1000000,                                                       \
        "Addresses per second learned from one peer beyond its answer to our get_peers "           \
        "(a token bucket; an answer may hold 1000).")                                              \
    NUM(addr_max_age, 2592000, 1, 315360000,                                                       \
        "Addresses neither seen nor connected to for this long leave the address table.")          \
    STR(geoip_db, "", NULL,                                                                        \
        "MaxMind DB file (GeoLite2-ASN, -Country or -City): outbound dials then prefer distinct "  \
        "ASNs (else countries) besides distinct network groups (seed §21); empty = off.")          \
    INT(max_inbound_pending, 256, 1, 100000,                                                       \
        "Most accepted connections still in their handshake; more are closed at accept.")          \
    INT(max_frame_size, 8388608, 1024, 67108864,                                                   \
        "Largest encrypted frame accepted, in bytes; larger ones close the session.")              \
    INT(write_buffer_max, 16777216, 65536, 1073741824,                                             \
        "Bytes queued to one peer before it is closed for not reading.")                           \
    INT(reconnect_max_attempts, 10, 1, 1000,                                                       \
        "Failed redials before giving up on a peer for reconnect_cooldown (seed §3).")             \
    INT(strike_limit, 3, 1, 1000,                                                                  \
        "Invalid messages from one IP after which its session is closed (seed §12: 3 strikes)."   \
        " Bans are decided by the bans policy.")                                                   \
    INT(missed_pongs_close, 3, 1, 1000,                                                            \
        "Consecutive missed pongs that close a session (seed §22).")                               \
    NUM(connection_timeout, 30, 0.01, 3600, "Dial timeout, TCP connect to handshake (seed §28).")  \
    NUM(handshake_timeout, 10, 0.01, 3600,                                                         \
        "Time an accepted connection has to complete its handshake.")                              \
    NUM(reconnect_delay, 5, 0.01, 3600, "First redial delay after a loss (seed §3: 5 s).")         \
    NLIST(reconnect_backoff, 32, "1 2 6 12 60",                                                    \
          "Redial delays as multiples of reconnect_delay, one per consecutive failure, the last "  \
          "repeating: 5-10-30-60-300 s (seed §3 Fast Reconnection).")                              \
    NUM(reconnect_cooldown, 3600, 0.01, 604800,                                                    \
        "Pause after reconnect_max_attempts failures before trying again (seed §3 says give up; " \
        "a peer that comes back must be reachable again).")                                        \
    NUM(sync_interval, 300, 0.05, 86400, "Height check interval (seed §6).")                       \
    NUM(heartbeat_interval, 30, 0.05, 3600, "Ping interval (seed §22 Health Checks).")             \
    NUM(pong_deadline, 5, 0.01, 3600,                                                              \
        "A pong later than this is 'late' and lowers the score; it does not close (DESIGN.md).")   \
    NUM(status_interval, 300, 0.05, 86400, "Status line interval (seed §15).")                     \
    NUM(log_fold_window, 10, 0, 3600,                                                              \
        "Identical log lines within this window fold into one line with a count (seed §16).")      \
    NUM(store_flush_interval, 0.25, 0.001, 60,                                                     \
        "Longest time a store write waits to be batched with others.")                             \
    NUM(test_handshake_delay, 0, 0, 60,                                                            \
        "Test only: outbound dials wait this long before their first flight, to force "            \
        "simultaneous dials to overlap.")                                                          \
    STR(policy_dir, "policies", NULL,                                                           \
        "Directory of the Lua policy files; watched and hot-reloaded on change.")             \
    NUM(policy_budget, 0.01, 0.0001, 10, "CPU time one policy hook call may take.")            \
    NUM(policy_load_budget, 1, 0.001, 60,                                                       \
        "CPU time for loading one policy file or running one self-test.")                     \
    INT(policy_memory_max, 33554432, 1048576, 1073741824,                                       \
        "Lua memory of one policy generation, in bytes.")                                     \
    INT(policy_state_max, 1048576, 1024, 268435456,                                             \
        "Bytes of one persisted policy state (tn.persist) after serialisation.")              \
    INT(policy_breaker_errors, 10, 1, 1000000,                                                  \
        "Consecutive failed hook calls that open the circuit breaker (C defaults until a "     \
        "successful reload).")                                                                 \
    NUM(policy_tick_interval, 10, 0.05, 3600,                                                   \
        "Interval of the on_tick hook, peer scoring and saving policy state.")                \
    NUM(policy_reload_debounce, 0.2, 0, 60,                                                     \
        "Quiet time after a change in policy_dir before reloading (editors save in bursts).") \
    STR(policy_record, "", NULL,                                                                \
        "File to append one JSON line per hook decision (for the replay kit); empty = off.")  \
    STR(trace_file, "", NULL,                                                                   \
        "File to append one JSON line per relay and experiment message event (propagation "   \
        "traces: id, type, from, to, time); empty = off.")                                    \
    NUM(ban_temporary, 300, 1, 31536000,                                                        \
        "Temporary ban (seed §12: 5 minutes); the C default verdict when strikes reach the "   \
        "limit.")                                                                              \
    NUM(ban_long, 86400, 1, 315360000, "Long ban (seed §12: 24 hours), for the bans policy.")  \
    INT(connection_attempts_free, 5, 1, 1000000,                                                \
        "Connection attempts from one IP within connection_attempt_window never reported (seed " \
        "§12: more than 5 a minute is a violation); each further one goes to the bans policy as " \
        "'connections' and is refused unless the verdict is 'ignore'.")                        \
    INT(connection_attempts_max, 10, 1, 1000000,                                                \
        "Attempts from one IP within the window beyond which more are refused at accept "        \
        "without a report or any other work (seed §13: 10 per IP per minute).")                \
    NUM(connection_attempt_window, 60, 0.05, 86400,                                             \
        "The window of both attempt counts, per IP, from its first attempt (seed §12, §13).")  \
    NLIST(rate_control, 2, "100 60",                                                            \
          "Per peer, control messages (hello, heights, get_mempool, core types without a "      \
          "class) as { count, seconds }: a bucket of count refilled over seconds (DESIGN.md: " \
          "100 messages/min). Excess is dropped and reported as 'flood'; { 0, 0 } = no limit.") \
    NLIST(rate_heartbeat, 2, "200 10",                                                          \
          "Per peer, ping and pong: their own bucket, so data never throttles heartbeats.")    \
    NLIST(rate_addresses, 2, "5 60", "Per peer, get_peers and peers: a few per minute.")       \
    NLIST(rate_inventory, 2, "20000 4",                                                         \
          "Per peer, ids in inv, getdata and notfound, and tx messages: 5000 a second in "     \
          "bursts of 20000, room for an honest relay of 1000 tx/s and a get_mempool answer.")  \
    NLIST(rate_blocks, 2, "200 10", "Per peer, block, get_blocks and blocks messages.")        \
    NLIST(rate_custom, 2, "1000 10", "Per peer, messages of Lua-registered types (0x8000+).")  \
    NUM(frame_timeout, 60, 0.05, 3600,                                                          \
        "Time a started frame has to arrive whole (slowloris: a frame trickled byte by byte); " \
        "later is an invalid frame.")                                                          \
    NUM(write_timeout, 60, 0.05, 3600,                                                          \
        "Time bytes queued to a peer may wait with none of them taken before the peer is "     \
        "closed for not reading (whatever its backlog's size).")                               \
    INT(buffer_memory_max, 268435456, 1048576, 68719476736,                                     \
        "Bytes held for all peers together (queued writes and partial frames); above it the " \
        "peers holding the most are closed.")                                                  \
    INT(bandwidth_in, 0, 0, 1000000000000,                                                      \
        "Node-wide inbound cap in bytes per second (reads pause while it is spent); 0 = none.") \
    INT(bandwidth_out, 0, 0, 1000000000000,                                                     \
        "Node-wide outbound cap in bytes per second (frames wait, in order, while it is "      \
        "spent); 0 = none.")                                                                   \
    LIST(masternodes, 4096,                                                                     \
         "The active masternode set: node ids (64 hex). A node whose key is listed produces "  \
         "blocks in its slots; peers are masternodes when their handshake proves a listed key.") \
    INT(genesis_time, 1765324800000, 0, 4102444800000,                                          \
        "The network's genesis block time in unix ms (fixes the genesis block and its id).")  \
    NUM(block_interval, 600, 0.05, 86400,                                                       \
        "Slot length: one scheduled masternode per slot (seed §6: a block every 10 minutes).") \
    NUM(clock_skew, 15, 0, 3600, "Tolerance for block timestamps against slots and our clock.") \
    INT(max_tx_size, 65536, 128, 1048576, "Largest transaction in bytes.")                     \
    INT(max_block_size, 4194304, 1024, 33554432,                                                \
        "Largest block in bytes (must fit a frame: below max_frame_size).")                  \
    NUM(tx_max_lifetime, 86400, 1, 31536000,                                                    \
        "Transactions expiring further in the future than this are invalid.")                \
    INT(mempool_max_txs, 100000, 1, 10000000, "Transactions held in the mempool.")            \
    INT(mempool_max_bytes, 67108864, 1024, 4294967296, "Bytes of transactions in the mempool.") \
    INT(max_reorg_depth, 100, 1, 100000, "Deepest reorganisation followed (DESIGN.md).")        \
    INT(dedup_capacity, 1200000, 1000, 100000000,                                               \
        "Object ids remembered per dedup window (10 min at 1000 tx/s with 2x headroom; the "   \
        "note's 'last 1000' is a 1-second window at that rate, DESIGN.md).")                 \
    NUM(dedup_window, 600, 1, 86400, "How long a seen id is remembered, in seconds.")          \
    NUM(sync_timeout, 10, 0.05, 3600,                                                           \
        "A sync request unanswered this long fails over to the next best peer (seed §20).")   \
    NUM(relay_request_timeout, 2, 0.01, 600,                                                    \
        "A requested transaction or block not delivered in this time is asked of another "   \
        "peer that announced it.")                                                             \
    NUM(relay_inv_interval, 0.005, 0, 10,                                                       \
        "Least time between two transaction announcements (inv) to one peer: announcements "  \
        "wait and share one message, so a peer gets at most 1/interval inv messages a second " \
        "whatever the rate. 0 = one per loop iteration. Blocks are never held back.")         \
    NUM(test_sync_serve_delay, 0, 0, 60,                                                        \
        "Test only: answer every get_blocks this late, so a sync can be cut mid-download.")   \
    BOOL(test_double_timer, false,                                                             \
         "Test only: arm block production twice for every slot (both fire in one tick).")     \
    STR(test_fault, "", "|block_write",                                                         \
        "Test only: 'block_write' kills the process between the statements of a block write.") \
    LIST(seeds, 256, "Addresses dialed at start-up (seed §8 Peer Discovery, method 1).")           \
    LIST(persistent_peers, 1024,                                                                   \
         "Addresses kept connected, redialed with backoff after a loss (seed §2, §3).")            \
    LIST(whitelist, 1024, "IP addresses exempt from the one-connection-per-IP rule and bans.")     \
    LIST(features, 64, "Feature flags switched on (seed §29), by name.")

#endif
