/* Optional GeoIP/ASN lookups for diversity (seed §21 Geographic Diversity): with geoip_db set
 * to a MaxMind database (GeoLite2-ASN, -Country or -City; libmaxminddb reads it memory-mapped,
 * so a lookup never blocks), outbound dials prefer peers in ASNs (or countries) they have no
 * outbound peer in yet, on top of distinct network groups; policies see `asn` and `country`
 * in rank_candidates and evict. Without it nothing here runs. */
#include "tn_geoip.h"

#include "tn_log.h"

#include <maxminddb.h>
#include <stdio.h>
#include <stdlib.h>

struct tn_geoip {
    MMDB_s db;
};

int tn_geoip_open(tn_geoip_t **out, const char *path, char *err, size_t errlen)
{
    tn_geoip_t *g = calloc(1, sizeof(*g));
    if (!g) return TN_ENOMEM;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    if (rc != MMDB_SUCCESS) {
        snprintf(err, errlen, "geoip_db %s: %s", path, MMDB_strerror(rc));
        free(g);
        return TN_EIO;
    }
    *out = g;
    return TN_OK;
}

void tn_geoip_close(tn_geoip_t *g)
{
    if (!g) return;
    MMDB_close(&g->db);
    free(g);
}

const char *tn_geoip_type(const tn_geoip_t *g)
{
    return g->db.metadata.database_type ? g->db.metadata.database_type : "?";
}

bool tn_geoip_lookup(tn_geoip_t *g, const tn_addr_t *a, tn_geo_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!g) return false;
    struct sockaddr_storage ss;
    tn_addr_to_sockaddr(a, &ss);
    int mmdb_err = 0;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&g->db, (struct sockaddr *)&ss, &mmdb_err);
    if (mmdb_err != MMDB_SUCCESS || !r.found_entry) return false;
    MMDB_entry_data_s d;
    if (MMDB_get_value(&r.entry, &d, "autonomous_system_number", NULL) == MMDB_SUCCESS &&
        d.has_data && d.type == MMDB_DATA_TYPE_UINT32)
        out->asn = d.uint32;
    if (MMDB_get_value(&r.entry, &d, "country", "iso_code", NULL) == MMDB_SUCCESS && d.has_data &&
        d.type == MMDB_DATA_TYPE_UTF8_STRING && d.data_size == 2) {
        memcpy(out->country, d.utf8_string, 2);
        out->country[2] = 0;
    }
    return out->asn || out->country[0];
}

uint64_t tn_geo_key(const tn_geo_t *geo)
{
    if (geo->asn) return (1ull << 32) | geo->asn;
    if (geo->country[0])
        return (2ull << 32) | ((uint64_t)(uint8_t)geo->country[0] << 8) | (uint8_t)geo->country[1];
    return 0;
}
