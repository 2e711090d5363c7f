/* A connection's shared-memory lane (docs/PROTOCOL.md, "The lane";
 * docs/SECURITY.md, "The lane"): the section, its handle in the client's
 * process, and the two ends of the pipe path that use it: payloads read
 * out of the client's ring before a frame is routed, and big payloads moved
 * into the client's ring just before a write.
 *
 * The section is unnamed, so no other process can open, squat or guess it;
 * its DACL grants only SYSTEM and the client's own user SID; the one handle
 * outside this process is the one duplicated into the client's process
 * (which the pipe's client process id names). Everything in it is read as
 * hostile: lane.c checks every counter and descriptor before a byte moves. */
#include "internal.h"

#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "platform.h"

/* c->lock held. */
static void lane_free(ph_conn *c)
{
    ph_server *srv = c->srv;

    if (c->lane.view == NULL)
        return;
    UnmapViewOfFile(c->lane.view);
    InterlockedDecrement64(&srv->lanes_current);
    InterlockedAdd64(&srv->lane_section_bytes, -(LONG64)c->lane.bytes);
    ph_free(c->lane.in);
    memset(&c->lane, 0, sizeof c->lane);
    c->decoder.flags_ok = 0;
}

void ph_conn_lane_close(ph_conn *c)
{
    lane_free(c);
}

/* The section: unnamed, SYSTEM and the client's SID only. */
static HANDLE make_section(ph_conn *c, size_t bytes, DWORD *e)
{
    SECURITY_ATTRIBUTES sa;
    char sddl[300];
    HANDLE h;

    snprintf(sddl, sizeof sddl, "D:P(A;;GA;;;SY)(A;;GA;;;%s)", c->sid);
    memset(&sa, 0, sizeof sa);
    sa.nLength = sizeof sa;
    if (c->sid[0] == '\0' ||
        !ConvertStringSecurityDescriptorToSecurityDescriptorA(
            sddl, SDDL_REVISION_1, &sa.lpSecurityDescriptor, NULL)) {
        *e = c->sid[0] ? GetLastError() : ERROR_INVALID_SID;
        return NULL;
    }
    h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE,
                           (DWORD)((uint64_t)bytes >> 32), (DWORD)bytes, NULL);
    *e = h == NULL ? GetLastError() : 0;
    LocalFree(sa.lpSecurityDescriptor);
    return h;
}

ph_err ph_conn_lane_open(ph_conn *c, uint32_t ring, ph_lane_offer *offer,
                         char *why, size_t cap)
{
    ph_server *srv = c->srv;
    const ph_options *live = ph_server_live(srv);
    size_t bytes;
    HANDLE section = NULL, proc = NULL, remote = NULL;
    uint8_t *view = NULL;
    LONG64 total;
    DWORD e = 0;

    if (!live->lane_enabled) {
        snprintf(why, cap, "lanes are off ([lane] enabled = false)");
        return PH_EFORBIDDEN;
    }
    if (c->lane.view != NULL) {
        snprintf(why, cap, "this connection has a lane already");
        return PH_EBADREQ;
    }
    /* More than max_bytes gets max_bytes: the answer says what it got. */
    if (ring > live->lane_max_bytes)
        ring = live->lane_max_bytes;
    bytes = ph_lane_section_bytes(ring);
    if (ring < 4096 || bytes == 0) {
        snprintf(why, cap, "a lane's ring is 4096..%u bytes ([lane] "
                 "max_bytes), not %u", (unsigned)live->lane_max_bytes,
                 (unsigned)ring);
        return PH_EBADREQ;
    }
    total = InterlockedAdd64(&srv->lane_section_bytes, (LONG64)bytes);
    if ((uint64_t)total > live->lane_max_total_bytes) {
        InterlockedAdd64(&srv->lane_section_bytes, -(LONG64)bytes);
        snprintf(why, cap, "lanes hold %lld of max_total_bytes %u already",
                 (long long)(total - (LONG64)bytes),
                 (unsigned)live->lane_max_total_bytes);
        return PH_EBUSY;
    }
    section = make_section(c, bytes, &e);
    if (section != NULL)
        view = MapViewOfFile(section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0,
                             bytes);
    if (view == NULL && e == 0)
        e = GetLastError();
    /* The handle goes into the process at the pipe's other end, and only
     * there: its id comes from the pipe, not from anything the client
     * says. */
    if (view != NULL) {
        proc = OpenProcess(PROCESS_DUP_HANDLE, FALSE, c->peer.pid);
        if (proc == NULL ||
            !DuplicateHandle(GetCurrentProcess(), section, proc, &remote,
                             FILE_MAP_READ | FILE_MAP_WRITE, FALSE, 0))
            e = GetLastError();
    }
    if (proc != NULL)
        CloseHandle(proc);
    /* The view keeps the section alive; this process needs no handle. */
    if (section != NULL)
        CloseHandle(section);
    if (remote == NULL) {
        if (view != NULL)
            UnmapViewOfFile(view);
        InterlockedAdd64(&srv->lane_section_bytes, -(LONG64)bytes);
        snprintf(why, cap, "cannot set up a lane of %u bytes (error %lu)",
                 (unsigned)ring, (unsigned long)e);
        ph_log(PH_LOG_WARN, "conn %llu pid %lu (%s): sys.lane: %s",
               (unsigned long long)c->peer.conn_id, (unsigned long)c->peer.pid,
               c->who, why);
        return PH_EINTERNAL;
    }
    /* A fresh section is zero-filled by the system. */
    (void)ph_lane_format(view, bytes, &c->lane.rings);
    c->lane.view = view;
    c->lane.bytes = bytes;
    c->lane.threshold = live->lane_threshold_bytes;
    c->decoder.flags_ok = PH_FLAG_LANE;
    InterlockedIncrement64(&srv->lanes_current);
    if (c->in_hub) {
        /* hub_lock after c->lock, the order every router keeps. */
        EnterCriticalSection(&srv->hub_lock);
        ph_hub_set_lane(srv->hub, (uint32_t)c->peer.conn_id);
        LeaveCriticalSection(&srv->hub_lock);
    }
    offer->handle = (uint64_t)(uintptr_t)remote;
    offer->ring_bytes = c->lane.rings.out.size;
    offer->section_bytes = bytes;
    offer->threshold = c->lane.threshold;
    ph_log(PH_LOG_DEBUG, "conn %llu pid %lu (%s): lane of %u bytes each way",
           (unsigned long long)c->peer.conn_id, (unsigned long)c->peer.pid,
           c->who, (unsigned)offer->ring_bytes);
    return PH_OK;
}

ph_err ph_conn_lane_take(ph_conn *c, const ph_frame *f, int in_place,
                         ph_frame *out, uint64_t *end, char *why, size_t cap)
{
    uint32_t off, len;
    ph_err err;

    if (c->lane.view == NULL) {
        snprintf(why, cap, "a lane frame, and this connection has no lane");
        return PH_EBADFRAME;
    }
    if (f->payload_len != PH_LANE_DESC_BYTES) {
        snprintf(why, cap, "a lane frame's payload is an 8-byte descriptor, "
                 "not %u bytes", (unsigned)f->payload_len);
        return PH_EBADFRAME;
    }
    ph_lane_desc_get(f->payload, &off, &len);
    if (len > c->lane.rings.in.size) {
        snprintf(why, cap, "lane payload of %u bytes, and the ring holds %u",
                 (unsigned)len, (unsigned)c->lane.rings.in.size);
        return PH_EBADFRAME;
    }
    if (in_place) {
        const uint8_t *at;
        err = ph_lane_peek(&c->lane.rings.in, off, len, &at, end);
        if (err != PH_OK) {
            snprintf(why, cap, "lane descriptor (offset %u, %u bytes) or "
                     "ring counters make no sense", (unsigned)off,
                     (unsigned)len);
            return err;
        }
        *out = *f;
        out->flags = 0;
        out->payload = at;
        out->payload_len = len;
        InterlockedAdd64(&c->srv->lane_bytes_in, (LONG64)len);
        return PH_OK;
    }
    *end = 0;
    if (len > c->lane.in_cap) {
        uint8_t *p = ph_realloc(c->lane.in, len);
        if (p == NULL) {
            snprintf(why, cap, "server out of memory");
            return PH_ENOMEM;
        }
        c->lane.in = p;
        c->lane.in_cap = len;
    }
    err = ph_lane_read(&c->lane.rings.in, off, len, c->lane.in);
    if (err != PH_OK) {
        snprintf(why, cap, "lane descriptor (offset %u, %u bytes) or ring "
                 "counters make no sense", (unsigned)off, (unsigned)len);
        return err;
    }
    *out = *f;
    out->flags = 0;
    out->payload = c->lane.in;
    out->payload_len = len;
    InterlockedAdd64(&c->srv->lane_bytes_in, (LONG64)len);
    return PH_OK;
}

/* Should a payload of plen bytes, in a frame of n bytes, go through c's
 * lane: big, or too big for the pipe (a lane payload from another client,
 * or an echo of one), and no bigger than the ring. c->lock held. */
static int goes_to_lane(const ph_conn *c, uint32_t n, uint32_t plen)
{
    return (plen >= c->lane.threshold || n > c->peer.max_frame) &&
           plen <= c->lane.rings.out.size;
}

ph_err ph_conn_lane_direct(ph_conn *c, const uint8_t *head, uint32_t head_len,
                           const uint8_t *payload, uint32_t plen)
{
    size_t inbox;
    uint32_t off;
    uint8_t *fr;

    if (c->lane.view == NULL || c->state != PH_CONN_OPEN ||
        c->close_after_flush || c->lane.blocked || c->send_queue.len != 0 ||
        head_len < PH_FRAME_HEADER_LEN ||
        !goes_to_lane(c, head_len + plen, plen))
        return PH_EAGAIN;
    /* Frames routed to c before this one may wait in its inbox: they go
     * first. Only routers holding hub_lock append to it, so what is seen
     * here holds until this frame is queued. */
    EnterCriticalSection(&c->inbox_lock);
    inbox = c->inbox.len;
    LeaveCriticalSection(&c->inbox_lock);
    if (inbox != 0)
        return PH_EAGAIN;
    /* Room for the descriptor first: once the payload is in the ring, its
     * descriptor must follow. */
    if (ph_buf_reserve(&c->send_queue, head_len + PH_LANE_DESC_BYTES) !=
        PH_OK)
        return PH_ENOMEM;
    /* The client's head is read once and checked (ph_lane_write); a ring
     * without room, or a head that makes no sense, leaves the payload to
     * the queued path, which waits for room or closes c. */
    if (ph_lane_write(&c->lane.rings.out, payload, plen, &off) != PH_OK)
        return PH_EAGAIN;
    fr = c->send_queue.data;
    memcpy(fr, head, head_len);
    ph_put_u32le(fr, head_len + PH_LANE_DESC_BYTES);
    fr[7] = PH_FLAG_LANE;
    ph_lane_desc_put(fr + head_len, off, plen);
    c->send_queue.len = head_len + PH_LANE_DESC_BYTES;
    InterlockedAdd64(&c->srv->lane_bytes_out, (LONG64)plen);
    InterlockedAdd64(&c->srv->lane_bytes_direct, (LONG64)plen);
    return PH_OK;
}

ph_err ph_conn_lane_echo(ph_conn *c, const ph_frame *f)
{
    ph_frame rep;
    uint8_t head[PH_FRAME_HEADER_LEN];
    size_t n;

    memset(&rep, 0, sizeof rep);
    rep.kind = PH_REPLY;
    rep.id = f->id;
    if (ph_frame_encode(&rep, head, sizeof head, &n) != PH_OK)
        return PH_EINVAL;
    return ph_conn_lane_direct(c, head, (uint32_t)n, f->payload,
                               f->payload_len);
}

/* c->lock held, c->in_flight just taken from the send queue: move every
 * big payload into the client's ring and leave its descriptor in the
 * frame. A payload that finds the ring full stops the walk: that frame
 * and all after it go back to the send queue, in order, and the
 * connection writes nothing more until the client's wake-up frame. The
 * frames are the server's own encoding, so their lengths are trusted. */
ph_err ph_conn_lane_outgoing(ph_conn *c)
{
    ph_buf *b = &c->in_flight;
    size_t rd = 0, wr = 0;
    ph_err err = PH_OK;

    while (rd < b->len) {
        uint8_t *fr = b->data + rd;
        uint32_t n = ph_get_u32le(fr), at, plen, small;
        at = PH_FRAME_HEADER_LEN + fr[6];
        plen = n - at;
        if (fr[7] == 0 && goes_to_lane(c, n, plen)) {
            err = ph_lane_put_frame(&c->lane.rings.out, fr, &small);
            if (err == PH_EAGAIN) {
                int fits = ph_lane_wait(&c->lane.rings, plen);
                if (fits == 1)
                    continue; /* room came while we looked */
                err = fits == 0 ? PH_EAGAIN : PH_EBADFRAME;
            }
            if (err == PH_OK) {
                memmove(b->data + wr, fr, small);
                wr += small;
                rd += n;
                InterlockedAdd64(&c->srv->lane_bytes_out, (LONG64)plen);
                continue;
            }
            break;
        }
        memmove(b->data + wr, fr, n);
        wr += n;
        rd += n;
    }
    if (rd < b->len) {
        /* The send queue is empty here: start_write just swapped it. */
        if (err == PH_EAGAIN) {
            c->lane.blocked = 1;
            if (ph_buf_append(&c->send_queue, b->data + rd, b->len - rd) !=
                PH_OK)
                err = PH_ENOMEM;
        }
    }
    b->len = wr;
    return err == PH_EAGAIN ? PH_OK : err;
}
