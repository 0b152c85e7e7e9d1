/* log.c: the '$log' packet {Level, Ctx, Text} (log.h). */
#include "log.h"

#include "etfw.h"

/* Appends the whole packet to pkt, in one buffer: one allocation a line. */
static int log_packet(const char *level, long long ctx, const void *text, size_t n, pyx_buf *pkt)
{
    if (pyx_etf_version(pkt) < 0 || pyx_etf_atom(pkt, "$log") < 0 || pyx_etf_version(pkt) < 0 ||
        pyx_etf_tuple(pkt, 3) < 0 || pyx_etf_atom(pkt, level) < 0 || pyx_buf_reserve(pkt, n + 16) < 0)
        return -1;
    int rc = ctx > 0 ? pyx_etf_int(pkt, ctx) : pyx_etf_atom(pkt, ctx == PYX_LOG_SIDECAR ? "sidecar" : "undefined");
    return rc < 0 || pyx_etf_binary(pkt, text, n) < 0 ? -1 : 0;
}

int pyx_out_log(pyx_out *o, const char *level, long long ctx, const void *text, size_t n)
{
    pyx_buf pkt = {0};
    int rc = log_packet(level, ctx, text, n, &pkt);
    if (rc == 0)
        pyx_out_send(o, pkt.data, pkt.len, NULL, 0);
    pyx_buf_free(&pkt);
    return rc;
}
