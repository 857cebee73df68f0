/* Traffic by message type for the metrics: messages and their bytes (header + payload, as
 * framed inside the encryption) received and sent. Called once per message on the hot path:
 * an array lookup and two adds. Loop thread only. */
#ifndef TN_TRAFFIC_H
#define TN_TRAFFIC_H

#include "tn_common.h"

/* Core types below this get their own series (tn_msg_name); other core types count as
 * "unknown", and the experiment range 0x8000+ as "experiment". */
#define TN_TRAFFIC_TYPES 256

void tn_traffic_in(uint16_t type, uint32_t payload_len);
void tn_traffic_out(uint16_t type, uint32_t payload_len);

#endif
