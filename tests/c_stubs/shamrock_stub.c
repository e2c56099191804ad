/* C stub of Andor's spectrograph SDK, for the ctypes marshalling tests.
 *
 * Default: ShamrockCIF (Shamrock* names), signatures from ShamrockCIF.h (public copy:
 * areaDetector/ADAndor andorSupport/ShamrockCIF.h).  Built with -DATSPECTROGRAPH:
 * atspectrograph (ATSpectrograph* names), signatures from atspectrograph.h, where
 * GetSerialNumber and GetGratingInfo take the size of their string buffer and the slit
 * functions are SlitIsPresent / SetSlitWidth / GetSlitWidth.  NOT from
 * drivers/andor_shamrock/shamrock.py.  Every function returns unsigned int
 * (SUCCESS = 20202); enums of atspectrograph.h are int-sized.
 *
 * Device: 1 spectrograph, 3 gratings (150, 600, 1200 l/mm), input slit index 2 only.
 */
#include "stub_common.h"

#ifdef ATSPECTROGRAPH
#define FN(name) ATSpectrograph##name
#define NAME(name) "ATSpectrograph" #name
#define SLIT_PRESENT ATSpectrographSlitIsPresent
#define SLIT_SET ATSpectrographSetSlitWidth
#define SLIT_GET ATSpectrographGetSlitWidth
#define SLIT_PRESENT_NAME "ATSpectrographSlitIsPresent"
#define SLIT_SET_NAME "ATSpectrographSetSlitWidth"
#define SLIT_GET_NAME "ATSpectrographGetSlitWidth"
#else
#define FN(name) Shamrock##name
#define NAME(name) "Shamrock" #name
#define SLIT_PRESENT ShamrockAutoSlitIsPresent
#define SLIT_SET ShamrockSetAutoSlitWidth
#define SLIT_GET ShamrockGetAutoSlitWidth
#define SLIT_PRESENT_NAME "ShamrockAutoSlitIsPresent"
#define SLIT_SET_NAME "ShamrockSetAutoSlitWidth"
#define SLIT_GET_NAME "ShamrockGetAutoSlitWidth"
#endif

#define SUCCESS 20202
#define RET(fn) return (unsigned int)stub_ret(fn, SUCCESS)

static const float LINES[3] = {150.0f, 600.0f, 1200.0f};
static int grating = 1, shutter = 0, number_pixels = 1024;
static float wavelength = 600.0f, slit_width = 100.0f, pixel_width = 13.0f;

unsigned int FN(Initialize)(char *IniPath) {
    stub_log("%s IniPath=\"%s\" IniPath_len=%d", NAME(Initialize), IniPath ? IniPath : "", IniPath ? (int)strlen(IniPath) : -1);
    RET(NAME(Initialize));
}
unsigned int FN(Close)(void) { stub_log("%s", NAME(Close)); RET(NAME(Close)); }

unsigned int FN(GetNumberDevices)(int *nodevices) {
    stub_log("%s nodevices=%s", NAME(GetNumberDevices), STUB_PTR(nodevices));
    if (nodevices) *nodevices = (int)stub_int("devices", 1);
    RET(NAME(GetNumberDevices));
}

unsigned int FN(GetFunctionReturnDescription)(int error, char *description, int MaxDescStrLen) {
    char text[64];
    stub_log("%s error=%d description=%s MaxDescStrLen=%d", NAME(GetFunctionReturnDescription), error,
             STUB_PTR(description), MaxDescStrLen);
    snprintf(text, sizeof text, "stub description of %d", error);
    stub_copy_text(description, MaxDescStrLen, text);
    return SUCCESS;
}

#ifdef ATSPECTROGRAPH
unsigned int ATSpectrographGetSerialNumber(int device, char *serial, int maxSerialStrLen) {
    stub_log("ATSpectrographGetSerialNumber device=%d serial=%s maxSerialStrLen=%d", device, STUB_PTR(serial), maxSerialStrLen);
    stub_copy_text(serial, maxSerialStrLen, "KY193-STUB-0042");
    RET("ATSpectrographGetSerialNumber");
}
unsigned int ATSpectrographGetGratingInfo(int device, int Grating, float *Lines, char *Blaze, int maxBlazeStrLen, int *Home, int *Offset) {
    stub_log("ATSpectrographGetGratingInfo device=%d Grating=%d Lines=%s Blaze=%s maxBlazeStrLen=%d Home=%s Offset=%s", device,
             Grating, STUB_PTR(Lines), STUB_PTR(Blaze), maxBlazeStrLen, STUB_PTR(Home), STUB_PTR(Offset));
    if (Lines) *Lines = LINES[(Grating - 1) % 3];
    stub_copy_text(Blaze, maxBlazeStrLen, "500nm");
    if (Home) *Home = 1000 * Grating;
    if (Offset) *Offset = -Grating;
    RET("ATSpectrographGetGratingInfo");
}
#else
/* ShamrockCIF.h gives no buffer size; the caller's buffer must hold the text. */
unsigned int ShamrockGetSerialNumber(int device, char *serial) {
    stub_log("ShamrockGetSerialNumber device=%d serial=%s", device, STUB_PTR(serial));
    stub_copy_text(serial, 16, "KY193-STUB-0042");
    RET("ShamrockGetSerialNumber");
}
unsigned int ShamrockGetGratingInfo(int device, int Grating, float *Lines, char *Blaze, int *Home, int *Offset) {
    stub_log("ShamrockGetGratingInfo device=%d Grating=%d Lines=%s Blaze=%s Home=%s Offset=%s", device, Grating,
             STUB_PTR(Lines), STUB_PTR(Blaze), STUB_PTR(Home), STUB_PTR(Offset));
    if (Lines) *Lines = LINES[(Grating - 1) % 3];
    stub_copy_text(Blaze, 6, "500nm");
    if (Home) *Home = 1000 * Grating;
    if (Offset) *Offset = -Grating;
    RET("ShamrockGetGratingInfo");
}
#endif

unsigned int FN(EepromGetOpticalParams)(int device, float *FocalLength, float *AngularDeviation, float *FocalTilt) {
    stub_log("%s device=%d FocalLength=%s AngularDeviation=%s FocalTilt=%s", NAME(EepromGetOpticalParams), device,
             STUB_PTR(FocalLength), STUB_PTR(AngularDeviation), STUB_PTR(FocalTilt));
    if (FocalLength) *FocalLength = 0.193f;
    if (AngularDeviation) *AngularDeviation = 30.5f;
    if (FocalTilt) *FocalTilt = 1.25f;
    RET(NAME(EepromGetOpticalParams));
}

unsigned int FN(GetNumberGratings)(int device, int *noGratings) {
    stub_log("%s device=%d noGratings=%s", NAME(GetNumberGratings), device, STUB_PTR(noGratings));
    if (noGratings) *noGratings = 3;
    RET(NAME(GetNumberGratings));
}

unsigned int FN(SetGrating)(int device, int g) {
    stub_log("%s device=%d grating=%d", NAME(SetGrating), device, g);
    int rc = stub_ret(NAME(SetGrating), SUCCESS);
    if (rc == SUCCESS) grating = g;
    return (unsigned int)rc;
}

unsigned int FN(GetGrating)(int device, int *g) {
    stub_log("%s device=%d grating=%s", NAME(GetGrating), device, STUB_PTR(g));
    if (g) *g = grating;
    RET(NAME(GetGrating));
}

unsigned int FN(SetWavelength)(int device, float w) {
    stub_log("%s device=%d wavelength=%.17g", NAME(SetWavelength), device, (double)w);
    int rc = stub_ret(NAME(SetWavelength), SUCCESS);
    if (rc == SUCCESS) wavelength = w;
    return (unsigned int)rc;
}

unsigned int FN(GetWavelength)(int device, float *w) {
    stub_log("%s device=%d wavelength=%s", NAME(GetWavelength), device, STUB_PTR(w));
    if (w) *w = wavelength;
    RET(NAME(GetWavelength));
}

unsigned int FN(GetWavelengthLimits)(int device, int Grating, float *Min, float *Max) {
    stub_log("%s device=%d Grating=%d Min=%s Max=%s", NAME(GetWavelengthLimits), device, Grating, STUB_PTR(Min), STUB_PTR(Max));
    if (Min) *Min = 0.0f;
    if (Max) *Max = 12000.0f / (float)Grating;
    RET(NAME(GetWavelengthLimits));
}

unsigned int SLIT_PRESENT(int device, int index, int *present) {
    stub_log("%s device=%d index=%d present=%s", SLIT_PRESENT_NAME, device, index, STUB_PTR(present));
    if (present) *present = (index == 2);
    RET(SLIT_PRESENT_NAME);
}

unsigned int SLIT_SET(int device, int index, float width) {
    stub_log("%s device=%d index=%d width=%.17g", SLIT_SET_NAME, device, index, (double)width);
    int rc = stub_ret(SLIT_SET_NAME, SUCCESS);
    if (rc == SUCCESS) slit_width = width;
    return (unsigned int)rc;
}

unsigned int SLIT_GET(int device, int index, float *width) {
    stub_log("%s device=%d index=%d width=%s", SLIT_GET_NAME, device, index, STUB_PTR(width));
    if (width) *width = slit_width;
    RET(SLIT_GET_NAME);
}

unsigned int FN(ShutterIsPresent)(int device, int *present) {
    stub_log("%s device=%d present=%s", NAME(ShutterIsPresent), device, STUB_PTR(present));
    if (present) *present = 1;
    RET(NAME(ShutterIsPresent));
}

unsigned int FN(SetShutter)(int device, int mode) {
    stub_log("%s device=%d mode=%d", NAME(SetShutter), device, mode);
    shutter = mode;
    RET(NAME(SetShutter));
}

unsigned int FN(GetShutter)(int device, int *mode) {
    stub_log("%s device=%d mode=%s", NAME(GetShutter), device, STUB_PTR(mode));
    if (mode) *mode = shutter;
    RET(NAME(GetShutter));
}

unsigned int FN(SetNumberPixels)(int device, int NumberPixels) {
    stub_log("%s device=%d NumberPixels=%d", NAME(SetNumberPixels), device, NumberPixels);
    number_pixels = NumberPixels;
    RET(NAME(SetNumberPixels));
}

unsigned int FN(GetNumberPixels)(int device, int *NumberPixels) {
    stub_log("%s device=%d NumberPixels=%s", NAME(GetNumberPixels), device, STUB_PTR(NumberPixels));
    if (NumberPixels) *NumberPixels = number_pixels;
    RET(NAME(GetNumberPixels));
}

unsigned int FN(SetPixelWidth)(int device, float Width) {
    stub_log("%s device=%d Width=%.17g", NAME(SetPixelWidth), device, (double)Width);
    pixel_width = Width;
    RET(NAME(SetPixelWidth));
}

unsigned int FN(GetPixelWidth)(int device, float *Width) {
    stub_log("%s device=%d Width=%s", NAME(GetPixelWidth), device, STUB_PTR(Width));
    if (Width) *Width = pixel_width;
    RET(NAME(GetPixelWidth));
}

/* CalibrationValues[i] = wavelength + (i - NumberPixels / 2) * 0.25 nm. */
unsigned int FN(GetCalibration)(int device, float *CalibrationValues, int NumberPixels) {
    stub_log("%s device=%d CalibrationValues=%s NumberPixels=%d", NAME(GetCalibration), device,
             STUB_PTR(CalibrationValues), NumberPixels);
    if (CalibrationValues)
        for (int i = 0; i < NumberPixels; i++) CalibrationValues[i] = wavelength + (float)(i - NumberPixels / 2) * 0.25f;
    RET(NAME(GetCalibration));
}
