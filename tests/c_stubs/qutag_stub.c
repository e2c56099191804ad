/* C stub of qutools' tdcbase library (quTAG), for the ctypes marshalling tests.
 *
 * Signatures transcribed from the vendor headers, NOT from drivers/qutag/tdcbase.py:
 *  - standard quTAG, library 1.5.2: tdcbase.h "v 1.15 2019/11/29"
 *    (public copy: fluorine21/quantum_time_sync python_drivers/QUTAG-LIB-WIN64-V1.5.2/userlib/inc/tdcbase.h);
 *  - built with -DQUTAG_MC: the quTAG MC/HR library, tdcbase.h "v 1.8 2022/02/03"
 *    (TDC_enableChannels(Bln32 enStart, Int32 mask), TDC_getChannelCount,
 *    TDC_setChannelDelay(Int32 channel, Int32 delay); no TDC_setChannelDelays,
 *    TDC_setDeadTime or TDC_setFiveChannelMode).
 * Types of tdcdecl.h: Int32 = int32, Int64 = int64, Uint8 = uint8, Bln32 = int32.
 * Every call is logged (stub_common.h).  Output values come from stub_set_value /
 * stub_set_double / stub_set_timestamps.
 */
#include <stdint.h>
#include "stub_common.h"

typedef int32_t Int32;
typedef int64_t Int64;
typedef uint8_t Uint8;
typedef int32_t Bln32;
typedef enum { SCOND_LVTTL = 1, SCOND_NIM = 2, SCOND_MISC = 3, SCOND_NONE = 4 } TDC_SignalCond;
typedef Int32 TDC_FeatureFlags;

#define STUB_MAX_TAGS 4096
static Int64 stub_ts[STUB_MAX_TAGS];
static Uint8 stub_ch[STUB_MAX_TAGS];
static int stub_n_tags = 0;
static Int32 stub_buffer_size = 0;

/* Tags the next TDC_getLastTimestamps returns (at most the buffer size set). */
void stub_set_timestamps(const int64_t *ts, const uint8_t *ch, int n) {
    if (n > STUB_MAX_TAGS) n = STUB_MAX_TAGS;
    for (int i = 0; i < n; i++) { stub_ts[i] = ts[i]; stub_ch[i] = ch[i]; }
    stub_n_tags = n;
}

double TDC_getVersion(void) { stub_log("TDC_getVersion"); return stub_double("version", 1.52); }

const char *TDC_perror(int rc) {
    static char text[64];
    stub_log("TDC_perror rc=%d", rc);
    snprintf(text, sizeof text, "stub text of %d", rc);
    return text;
}

int TDC_init(int deviceId) { stub_log("TDC_init deviceId=%d", deviceId); return stub_ret("TDC_init", 0); }
int TDC_deInit(void) { stub_log("TDC_deInit"); return stub_ret("TDC_deInit", 0); }

int TDC_getTimebase(double *timebase) {
    stub_log("TDC_getTimebase timebase=%s", STUB_PTR(timebase));
    if (timebase) *timebase = stub_double("timebase_s", 1e-12);
    return stub_ret("TDC_getTimebase", 0);
}

TDC_FeatureFlags TDC_checkFeatures(void) {
    stub_log("TDC_checkFeatures");
    return (TDC_FeatureFlags)stub_int("features", 0x10 | 0x20);
}

int TDC_configureSignalConditioning(Int32 channel, TDC_SignalCond conditioning, Bln32 edge, double threshold) {
    stub_log("TDC_configureSignalConditioning channel=%d conditioning=%d edge=%d threshold=%.17g",
             channel, (int)conditioning, edge, threshold);
    return stub_ret("TDC_configureSignalConditioning", 0);
}

int TDC_configureSyncDivider(Int32 divider, Bln32 reconstruct) {
    stub_log("TDC_configureSyncDivider divider=%d reconstruct=%d", divider, reconstruct);
    return stub_ret("TDC_configureSyncDivider", 0);
}

int TDC_setExposureTime(Int32 expTime) {
    stub_log("TDC_setExposureTime expTime=%d", expTime);
    return stub_ret("TDC_setExposureTime", 0);
}

int TDC_setTimestampBufferSize(Int32 size) {
    stub_log("TDC_setTimestampBufferSize size=%d", size);
    int rc = stub_ret("TDC_setTimestampBufferSize", 0);
    if (rc == 0) stub_buffer_size = size;
    return rc;
}

int TDC_getLastTimestamps(Bln32 reset, Int64 *timestamps, Uint8 *channels, Int32 *valid) {
    int n = stub_n_tags < stub_buffer_size ? stub_n_tags : stub_buffer_size;
    stub_log("TDC_getLastTimestamps reset=%d timestamps=%s channels=%s valid=%s", reset,
             STUB_PTR(timestamps), STUB_PTR(channels), STUB_PTR(valid));
    for (int i = 0; i < n; i++) {
        if (timestamps) timestamps[i] = stub_ts[i];
        if (channels) channels[i] = stub_ch[i];
    }
    if (valid) *valid = n;
    if (reset) stub_n_tags = 0;
    return stub_ret("TDC_getLastTimestamps", 0);
}

int TDC_getDataLost(Bln32 *lost) {
    stub_log("TDC_getDataLost lost=%s", STUB_PTR(lost));
    if (lost) *lost = (Bln32)stub_int("data_lost", 0);
    return stub_ret("TDC_getDataLost", 0);
}

int TDC_freezeBuffers(Bln32 freeze) {
    stub_log("TDC_freezeBuffers freeze=%d", freeze);
    return stub_ret("TDC_freezeBuffers", 0);
}

#ifndef QUTAG_MC
/* standard quTAG, tdcbase.h v1.15 */
int TDC_enableChannels(Int32 channelMask) {
    stub_log("TDC_enableChannels channelMask=%d", channelMask);
    return stub_ret("TDC_enableChannels", 0);
}

int TDC_setFiveChannelMode(Bln32 on) {
    stub_log("TDC_setFiveChannelMode on=%d", on);
    return stub_ret("TDC_setFiveChannelMode", 0);
}

/* "The array must have at least 5 elements": the stub logs the first 8. */
int TDC_setChannelDelays(const Int32 *delays) {
    if (delays)
        stub_log("TDC_setChannelDelays delays=ptr d0=%d d1=%d d2=%d d3=%d d4=%d d5=%d d6=%d d7=%d", delays[0],
                 delays[1], delays[2], delays[3], delays[4], delays[5], delays[6], delays[7]);
    else
        stub_log("TDC_setChannelDelays delays=NULL");
    return stub_ret("TDC_setChannelDelays", 0);
}

int TDC_setDeadTime(Int32 channel, Int32 dTime) {
    stub_log("TDC_setDeadTime channel=%d dTime=%d", channel, dTime);
    return stub_ret("TDC_setDeadTime", 0);
}
#else
/* quTAG MC / HR, tdcbase.h v1.8 */
int TDC_enableChannels(Bln32 enStart, Int32 channelMask) {
    stub_log("TDC_enableChannels enStart=%d channelMask=%d", enStart, channelMask);
    return stub_ret("TDC_enableChannels", 0);
}

Int32 TDC_getChannelCount(void) {
    stub_log("TDC_getChannelCount");
    return (Int32)stub_int("channel_count", 33);
}

int TDC_setChannelDelay(Int32 channel, Int32 delay) {
    stub_log("TDC_setChannelDelay channel=%d delay=%d", channel, delay);
    return stub_ret("TDC_setChannelDelay", 0);
}
#endif
