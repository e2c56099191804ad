/* C stub of Andor SDK2 (atmcd), for the ctypes marshalling tests.
 *
 * Signatures transcribed from Andor's Linux header atmcdLXd.h (public copy:
 * areaDetector/ADAndor andorSupport/atmcdLXd.h), NOT from drivers/andor/atmcd.py.
 * There at_32 is `int` and at_u32 `unsigned int` under _LP64 (`long` on 32-bit);
 * the Windows header ATMCD32D.h uses `long` / `unsigned long` (32-bit on Win64).
 * Every function returns unsigned int (DRV_SUCCESS = 20002).
 *
 * Behaviour: outputs from stub_set_value / stub_set_double (keys named in each
 * function); GetImages16 fills arr[k] = (image number * 1000 + pixel index) & 0xFFFF
 * for the images first..last, pixels = size / (last - first + 1); with the value
 * out_of_range_calls > 0 it answers DRV_GENERAL_ERRORS that many times (see there).
 */
#include "stub_common.h"

#ifdef _LP64
#define at_32 int
#define at_u32 unsigned int
#else
#define at_32 long
#define at_u32 unsigned long
#endif

#define DRV_SUCCESS 20002
#define DRV_NO_NEW_DATA 20024
#define DRV_GENERAL_ERRORS 20049
#define DRV_TEMPERATURE_OFF 20034
#define DRV_TEMPERATURE_STABILIZED 20036
#define DRV_IDLE 20073

#define RET(fn) return (unsigned int)stub_ret(fn, DRV_SUCCESS)

static int stub_cooler_on = 0;

unsigned int Initialize(char *dir) {
    stub_log("Initialize dir=\"%s\" dir_len=%d", dir ? dir : "", dir ? (int)strlen(dir) : -1);
    stub_cooler_on = 0;
    RET("Initialize");
}
unsigned int ShutDown() { stub_log("ShutDown"); RET("ShutDown"); }

unsigned int GetDetector(int *xpixels, int *ypixels) {
    stub_log("GetDetector xpixels=%s ypixels=%s", STUB_PTR(xpixels), STUB_PTR(ypixels));
    if (xpixels) *xpixels = (int)stub_int("xpixels", 1024);
    if (ypixels) *ypixels = (int)stub_int("ypixels", 1024);
    RET("GetDetector");
}

unsigned int GetPixelSize(float *xSize, float *ySize) {
    stub_log("GetPixelSize xSize=%s ySize=%s", STUB_PTR(xSize), STUB_PTR(ySize));
    if (xSize) *xSize = (float)stub_double("pixel_x_um", 13.0);
    if (ySize) *ySize = (float)stub_double("pixel_y_um", 13.0);
    RET("GetPixelSize");
}

/* The header gives no buffer size; the SDK manual asks for MAX_PATH (260) bytes. */
unsigned int GetHeadModel(char *name) {
    stub_log("GetHeadModel name=%s", STUB_PTR(name));
    if (name) snprintf(name, 32, "%s", "DU888_BV_STUB");
    RET("GetHeadModel");
}

unsigned int GetCameraSerialNumber(int *number) {
    stub_log("GetCameraSerialNumber number=%s", STUB_PTR(number));
    if (number) *number = (int)stub_int("serial", 12345);
    RET("GetCameraSerialNumber");
}

unsigned int GetTemperatureRange(int *mintemp, int *maxtemp) {
    stub_log("GetTemperatureRange mintemp=%s maxtemp=%s", STUB_PTR(mintemp), STUB_PTR(maxtemp));
    if (mintemp) *mintemp = (int)stub_int("mintemp", -100);
    if (maxtemp) *maxtemp = (int)stub_int("maxtemp", 20);
    RET("GetTemperatureRange");
}

unsigned int SetTemperature(int temperature) { stub_log("SetTemperature temperature=%d", temperature); RET("SetTemperature"); }
unsigned int CoolerON() { stub_log("CoolerON"); stub_cooler_on = 1; RET("CoolerON"); }
unsigned int CoolerOFF() { stub_log("CoolerOFF"); stub_cooler_on = 0; RET("CoolerOFF"); }

unsigned int IsCoolerOn(int *iCoolerStatus) {
    stub_log("IsCoolerOn iCoolerStatus=%s", STUB_PTR(iCoolerStatus));
    if (iCoolerStatus) *iCoolerStatus = stub_cooler_on;
    RET("IsCoolerOn");
}

/* Returns the cooler state as its status: STABILIZED while the cooler is on, OFF (and 20 degC) otherwise. */
unsigned int GetTemperature(int *temperature) {
    stub_log("GetTemperature temperature=%s", STUB_PTR(temperature));
    if (temperature) *temperature = stub_cooler_on ? (int)stub_int("temperature", -80) : 20;
    return (unsigned int)stub_ret("GetTemperature", stub_cooler_on ? DRV_TEMPERATURE_STABILIZED : DRV_TEMPERATURE_OFF);
}

unsigned int SetReadMode(int mode) { stub_log("SetReadMode mode=%d", mode); RET("SetReadMode"); }
unsigned int SetAcquisitionMode(int mode) { stub_log("SetAcquisitionMode mode=%d", mode); RET("SetAcquisitionMode"); }
unsigned int SetExposureTime(float time) { stub_log("SetExposureTime time=%.17g", (double)time); RET("SetExposureTime"); }
unsigned int SetKineticCycleTime(float time) { stub_log("SetKineticCycleTime time=%.17g", (double)time); RET("SetKineticCycleTime"); }
unsigned int SetNumberKinetics(int number) { stub_log("SetNumberKinetics number=%d", number); RET("SetNumberKinetics"); }
unsigned int SetFrameTransferMode(int mode) { stub_log("SetFrameTransferMode mode=%d", mode); RET("SetFrameTransferMode"); }

unsigned int SetImage(int hbin, int vbin, int hstart, int hend, int vstart, int vend) {
    stub_log("SetImage hbin=%d vbin=%d hstart=%d hend=%d vstart=%d vend=%d", hbin, vbin, hstart, hend, vstart, vend);
    RET("SetImage");
}

unsigned int SetSingleTrack(int centre, int height) { stub_log("SetSingleTrack centre=%d height=%d", centre, height); RET("SetSingleTrack"); }

unsigned int GetEMGainRange(int *low, int *high) {
    stub_log("GetEMGainRange low=%s high=%s", STUB_PTR(low), STUB_PTR(high));
    if (low) *low = (int)stub_int("gain_low", 1);
    if (high) *high = (int)stub_int("gain_high", 1000);
    RET("GetEMGainRange");
}

unsigned int SetEMAdvanced(int state) { stub_log("SetEMAdvanced state=%d", state); RET("SetEMAdvanced"); }
unsigned int SetEMCCDGain(int gain) { stub_log("SetEMCCDGain gain=%d", gain); RET("SetEMCCDGain"); }
unsigned int SetTriggerMode(int mode) { stub_log("SetTriggerMode mode=%d", mode); RET("SetTriggerMode"); }

unsigned int SetShutter(int typ, int mode, int closingtime, int openingtime) {
    stub_log("SetShutter typ=%d mode=%d closingtime=%d openingtime=%d", typ, mode, closingtime, openingtime);
    RET("SetShutter");
}

unsigned int GetAcquisitionTimings(float *exposure, float *accumulate, float *kinetic) {
    stub_log("GetAcquisitionTimings exposure=%s accumulate=%s kinetic=%s", STUB_PTR(exposure), STUB_PTR(accumulate),
             STUB_PTR(kinetic));
    if (exposure) *exposure = (float)stub_double("exposure_s", 0.05);
    if (accumulate) *accumulate = (float)stub_double("accumulate_s", 0.06);
    if (kinetic) *kinetic = (float)stub_double("kinetic_s", 0.0625);
    RET("GetAcquisitionTimings");
}

unsigned int StartAcquisition() { stub_log("StartAcquisition"); RET("StartAcquisition"); }
unsigned int AbortAcquisition() { stub_log("AbortAcquisition"); RET("AbortAcquisition"); }

unsigned int GetStatus(int *status) {
    stub_log("GetStatus status=%s", STUB_PTR(status));
    if (status) *status = (int)stub_int("status", DRV_IDLE);
    RET("GetStatus");
}

unsigned int SendSoftwareTrigger() { stub_log("SendSoftwareTrigger"); RET("SendSoftwareTrigger"); }

unsigned int GetSizeOfCircularBuffer(at_32 *index) {
    stub_log("GetSizeOfCircularBuffer index=%s", STUB_PTR(index));
    if (index) *index = (at_32)stub_int("circular_buffer", 64);
    RET("GetSizeOfCircularBuffer");
}

unsigned int GetTotalNumberImagesAcquired(at_32 *index) {
    stub_log("GetTotalNumberImagesAcquired index=%s", STUB_PTR(index));
    if (index) *index = (at_32)stub_int("total", 0);
    RET("GetTotalNumberImagesAcquired");
}

unsigned int GetNumberNewImages(at_32 *first, at_32 *last) {
    stub_log("GetNumberNewImages first=%s last=%s", STUB_PTR(first), STUB_PTR(last));
    if (first) *first = (at_32)stub_int("first", 1);
    if (last) *last = (at_32)stub_int("last", 0);
    return (unsigned int)stub_ret("GetNumberNewImages", stub_int("last", 0) >= stub_int("first", 1) ? DRV_SUCCESS : DRV_NO_NEW_DATA);
}

unsigned int GetImages16(at_32 first, at_32 last, unsigned short *arr, at_u32 size, at_32 *validfirst, at_32 *validlast) {
    stub_log("GetImages16 first=%lld last=%lld arr=%s size=%llu validfirst=%s validlast=%s", (long long)first,
             (long long)last, STUB_PTR(arr), (unsigned long long)size, STUB_PTR(validfirst), STUB_PTR(validlast));
    if (stub_int("out_of_range_calls", 0) > 0) {
        /* SDK2 manual: "If the specified series is out of range (i.e. the images have been
         * overwritten or have not yet been acquired) then an error will be returned":
         * DRV_GENERAL_ERRORS "The series is out of range".  The overwritten images then
         * count as retrieved: the next GetNumberNewImages starts at "first_after". */
        stub_set_value("out_of_range_calls", stub_int("out_of_range_calls", 0) - 1);
        stub_set_value("first", stub_int("first_after", first));
        return (unsigned int)DRV_GENERAL_ERRORS;
    }
    at_32 vf = (at_32)stub_int("validfirst", first), vl = (at_32)stub_int("validlast", last);
    long long images = (long long)last - (long long)first + 1;
    if (arr && images > 0) {
        unsigned long long pixels = (unsigned long long)size / (unsigned long long)images;
        for (long long k = 0; k <= (long long)vl - vf; k++)
            for (unsigned long long p = 0; p < pixels; p++)
                arr[k * pixels + p] = (unsigned short)(((vf + k) * 1000 + p) & 0xFFFF);
    }
    if (validfirst) *validfirst = vf;
    if (validlast) *validlast = vl;
    RET("GetImages16");
}
