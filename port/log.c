/* log.c: the '$log' packet {Level, Ctx, Text} (log.h). */
#include "log.h"

#include "etfw.h"

int pyx_log_packet(const char *level, long long ctx, const void *text, size_t n, pyx_buf *head, pyx_buf *body)
{
    if (pyx_etf_version(head) < 0 || pyx_etf_atom(head, "$log") < 0 || pyx_etf_version(body) < 0 ||
        pyx_etf_tuple(body, 3) < 0 || pyx_etf_atom(body, level) < 0)
        return -1;
    int rc = ctx > 0 ? pyx_etf_int(body, ctx) : pyx_etf_atom(body, ctx == PYX_LOG_SIDECAR ? "sidecar" : "undefined");
    return rc < 0 || pyx_etf_binary(body, text, n) < 0 ? -1 : 0;
}

int pyx_out_log(pyx_out *o, const char *level, long long ctx, const void *text, size_t n)
{
    pyx_buf head = {0}, body = {0};
    int rc = pyx_log_packet(level, ctx, text, n, &head, &body);
    if (rc == 0)
        pyx_out_send(o, head.data, head.len, body.data, body.len);
    pyx_buf_free(&head);
    pyx_buf_free(&body);
    return rc;
}
